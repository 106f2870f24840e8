"""DynamoDB task table (partition key ``task_id``), with S3 for results and checkpoints too large for an item.

Status changes are conditional writes, so a cancelled task is never
overwritten by a late worker, and a finished task never changes again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agentrail_runtime import aws, contract
from agentrail_runtime.aws import S3Payloads
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.metering.feedback import Feedback, FeedbackGiven
from agentrail_runtime.models.base import Usage
from agentrail_runtime.tasks.events import TASK_FINISHED
from agentrail_runtime.tasks.models import (
    CANCELLABLE,
    AgentSpend,
    TaskError,
    TaskRecord,
    TaskResult,
    TaskStatus,
)

#: Inline JSON above this many bytes goes to S3 (DynamoDB items stop at 400 KB).
INLINE_LIMIT = 300_000
_JSON_FIELDS = {"usage": "usage_json", "error": "error_json", "metadata": "metadata_json", "feedback": "feedback_json"}
#: Per-agent spend lives in top-level number attributes ``spend#<agent>#<field>`` so that concurrent agents add to
#: them atomically (UpdateItem ADD), next to the task totals.
SPEND_PREFIX = "spend#"
#: The same roll-up per model (``model#<model>#<field>``): what a task spent on each model it used.
MODEL_SPEND_PREFIX = "model#"
#: The transcript of each agent run of a multi-agent task, ``run#<ms>#<run>`` (a checkpoint's JSON), written with its spend.
RUN_PREFIX = "run#"
#: A run's transcript above this many bytes is not kept on the task (its spend still is): many runs share one item.
RUN_TRANSCRIPT_LIMIT = 32_000
_SPEND_FIELDS = {
    "in": "input_tokens",
    "out": "output_tokens",
    "cr": "cache_read_tokens",
    "cw": "cache_write_tokens",
    "usd": "cost_usd",
    "calls": "calls",
}
#: The token counts of a :class:`Usage`, each kept as ``total_<name>`` on a task.
_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
#: The prompt cache's token counts, by their key in a spend update (kept only for a run that used the cache).
_CACHE_FIELDS = {key: _SPEND_FIELDS[key] for key in ("cr", "cw")}
_NUMBERS = ("created_at", "updated_at", "started_at", "finished_at", "steps", "attempts", "batch_submitted_at")
_STRINGS = (
    "owner",
    "task_type",
    "status",
    "message",
    "model",
    "callback_url",
    "execution_arn",
    "correlation_id",
    "event_pending",
    "agent_version",
    "lane",
    "batch_job",
)
#: A task waiting in the batch lane (``batch_queue``, on the sparse ``by_batch`` index) leaves it once it is batched,
#: finished or cancelled: every such write removes the attribute.
BATCH_QUEUE = contract.TASK_BATCH_ATTRIBUTE


@dataclass(frozen=True)
class Spend:
    """One agent run's tokens, steps and cost, added to a task under its agent (and its model, given one)."""

    agent: str
    usage: Usage
    cost_usd: float | None
    steps: int = 0
    model: str | None = None

    def update(self) -> tuple[list[str], dict[str, str], dict[str, Any]]:
        """The ``ADD`` clauses, attribute names and values that add this spend to the task's per-agent, per-model
        and total attributes."""
        usage = self.usage
        fields: dict[str, float] = {"in": usage.input_tokens, "out": usage.output_tokens, "calls": 1}
        totals = {"total_input_tokens": "in", "total_output_tokens": "out", "total_steps": "steps"}
        values: dict[str, Any] = {
            ":in": {"N": str(usage.input_tokens)},
            ":out": {"N": str(usage.output_tokens)},
            ":calls": {"N": "1"},
            ":steps": {"N": str(self.steps)},
        }
        for key, name in _CACHE_FIELDS.items():  # only a run that used the prompt cache writes these
            tokens = getattr(usage, name)
            if tokens:
                fields[key] = tokens
                totals[f"total_{name}"] = key
                values[f":{key}"] = {"N": str(tokens)}
        if self.cost_usd is not None:
            fields["usd"] = self.cost_usd
            totals["total_cost_usd"] = "usd"
            values[":usd"] = {"N": repr(self.cost_usd)}
        names = {f"#{key}": f"{SPEND_PREFIX}{self.agent}#{key}" for key in fields}
        adds = [f"#{key} :{key}" for key in fields] + [f"{total} :{key}" for total, key in totals.items()]
        if self.model is not None:
            names |= {f"#m{key}": f"{MODEL_SPEND_PREFIX}{self.model}#{key}" for key in fields}
            adds += [f"#m{key} :{key}" for key in fields]
        return adds, names, values


#: Sparse, keys-only indexes of the task table: tasks by ``owner``, and a task's subtasks and run checkpoints by
#: ``parent`` (the task id), which is how erasure finds what a principal's tasks left behind.
OWNER_INDEX = contract.TASK_OWNER_INDEX
PARENT_INDEX = contract.TASK_PARENT_INDEX
#: Tasks by ``owner``, newest first (keys only, sort key ``created_at``): the console's run list and costs.
OWNER_CREATED_INDEX = contract.TASK_OWNER_CREATED_INDEX


@dataclass(frozen=True)
class ErasedTask:
    """What erasing one task deleted: the task item (0 when it was gone already), its child items (subtasks and run
    checkpoints), whether it carried feedback, and its S3 objects (large results and checkpoints)."""

    tasks: int
    children: int
    feedback: int
    objects: int


class TaskNotFound(Exception):
    """No such task for this caller (missing, or another caller's: both look the same)."""


class TaskFinished(Exception):
    """The task already reached a final status; ``record`` is the task when it was read."""

    def __init__(self, status: TaskStatus, record: TaskRecord | None = None) -> None:
        super().__init__(f"task is {status.value}")
        self.status = status
        self.record = record


def _values(values: Iterable[TaskStatus]) -> dict[str, dict[str, str]]:
    return {f":s{i}": {"S": status.value} for i, status in enumerate(values)}


class TaskStore:
    """Parameters
    ----------
    table_name:
        The task table.
    bucket:
        Bucket for large results and checkpoints. Default: none (large ones are refused).
    retention_seconds:
        A finished task's record expires (TTL ``expires_at``) this long after it finished, an unfinished one this
        long after it was created. Default: 30 days.
    """

    def __init__(
        self,
        table_name: str,
        *,
        bucket: str | None = None,
        retention_seconds: int = 30 * 86_400,
        client: Any = None,
        s3_client: Any = None,
        clock: Clock = now,
    ) -> None:
        self.table_name = table_name
        self.payloads = S3Payloads(bucket, client=s3_client) if bucket else None
        self.retention_seconds = retention_seconds
        self.client = client or aws.client("dynamodb")
        self._clock = clock
        self._table: Any = None  # the boto3 Table resource erasure's batch writer needs, built on first use

    def now(self) -> int:
        return int(self._clock())

    # -- reads ------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskRecord | None:
        item = self.client.get_item(TableName=self.table_name, Key={"task_id": {"S": task_id}}, ConsistentRead=True).get("Item")
        return self._record(item) if item else None

    def get_for(self, task_id: str, owner: str) -> TaskRecord:
        record = self.get(task_id)
        if record is None or record.owner != owner:
            raise TaskNotFound
        return record

    # -- writes -----------------------------------------------------------------------

    def create(self, record: TaskRecord, *, batch_queue: str | None = None) -> None:
        """Put a new task. It expires ``retention_seconds`` after creation unless it finishes (which moves the expiry),
        so a task stuck in ``queued`` or ``running`` is not kept forever. ``batch_queue`` puts it in the batch lane's
        queue (``pending#<model>``) in the same write."""
        item = {**self._item(record), "expires_at": {"N": str(self.now() + self.retention_seconds)}}
        if batch_queue is not None:
            item[BATCH_QUEUE] = {"S": batch_queue}
        self.client.put_item(TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(task_id)")

    def mark_running(
        self, task_id: str, *, resumable: Iterable[TaskStatus] = (TaskStatus.QUEUED, TaskStatus.RUNNING)
    ) -> TaskRecord:
        """Move to ``running`` (counting the attempt). Raises :class:`TaskFinished` if cancelled or finished."""
        return self._record(self._mark_running(task_id, resumable))

    def mark_running_checkpointed(self, task_id: str) -> tuple[TaskRecord, str | None]:
        """:meth:`mark_running`, with the checkpoint an earlier attempt left (read in the same write)."""
        item = self._mark_running(task_id, (TaskStatus.QUEUED, TaskStatus.RUNNING))
        return self._record(item), self._checkpoint(item)

    def _mark_running(self, task_id: str, resumable: Iterable[TaskStatus]) -> dict[str, Any]:
        now = self.now()
        allowed = tuple(resumable)
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"task_id": {"S": task_id}},
                UpdateExpression="SET #status = :running, updated_at = :now, started_at = if_not_exists(started_at, :now) ADD attempts :one",
                ConditionExpression=f"attribute_exists(task_id) AND #status IN ({', '.join(_values(allowed))})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":running": {"S": TaskStatus.RUNNING.value},
                    ":now": {"N": str(now)},
                    ":one": {"N": "1"},
                    **_values(allowed),
                },
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise self._not_runnable(task_id) from None
        return dict(response["Attributes"])

    def set_status(self, task_id: str, status: TaskStatus, *, expected: Iterable[TaskStatus]) -> bool:
        """Conditionally change a live task's status (e.g. ``waiting_approval``); False if it was not in ``expected``."""
        allowed = tuple(expected)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"task_id": {"S": task_id}},
                UpdateExpression="SET #status = :new, updated_at = :now",
                ConditionExpression=f"#status IN ({', '.join(_values(allowed))})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":new": {"S": status.value}, ":now": {"N": str(self.now())}, **_values(allowed)},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def finish(
        self,
        task_id: str,
        *,
        status: TaskStatus,
        result: TaskResult | None = None,
        error: TaskError | None = None,
        expected: Iterable[TaskStatus] = (TaskStatus.RUNNING, TaskStatus.WAITING_APPROVAL),
        agent_version: str | None = None,
        spend: Spend | None = None,
        checkpoint: str | None = None,
    ) -> TaskRecord | None:
        """Record the outcome once and return the finished record; ``None`` when the task was cancelled or
        finished meanwhile (nothing written). Tokens, steps and cost are the totals :meth:`add_spend` kept, plus
        ``spend``, added in the same write (so an outcome and its spend are recorded together or not at all);
        ``agent_version`` is the version of the agent that finished it (an ``agent_version`` attribute);
        ``checkpoint`` replaces the stored checkpoint with the run's whole transcript (what the console shows).

        The same write puts ``Task Finished`` in the outbox (``event_pending``) until :meth:`event_published`, and
        takes the task out of the batch lane's queue."""
        now = self.now()
        allowed = tuple(expected)
        names = {"#status": "status", "#queue": BATCH_QUEUE}
        values: dict[str, Any] = {
            ":status": {"S": status.value},
            ":now": {"N": str(now)},
            ":expires": {"N": str(now + self.retention_seconds)},
            ":event": {"S": TASK_FINISHED},
            **_values(allowed),
        }
        sets = [
            "#status = :status",
            "updated_at = :now",
            "finished_at = :now",
            "expires_at = :expires",
            "event_pending = :event",
        ]
        if agent_version:
            sets.append("agent_version = :version")
            values[":version"] = {"S": agent_version}
        if error is not None:
            sets.append("error_json = :error")
            values[":error"] = {"S": error.model_dump_json()}
        if result is not None:
            payload = result.model_dump_json()
            if len(payload.encode()) > INLINE_LIMIT:
                sets.append("result_s3_key = :key")
                values[":key"] = {"S": self._offload(f"results/{task_id}.json", payload)}
            else:
                sets.append("result_json = :result")
                values[":result"] = {"S": payload}
        removes = ["#queue"]
        if checkpoint is not None:
            if len(checkpoint.encode()) > INLINE_LIMIT:
                sets.append("checkpoint_s3_key = :cpkey")
                values[":cpkey"] = {"S": self._offload(f"checkpoints/{task_id}.json", checkpoint)}
                removes.append("checkpoint_json")
            else:
                sets.append("checkpoint_json = :cp")
                values[":cp"] = {"S": checkpoint}
                removes.append("checkpoint_s3_key")
        update = "SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes)
        if spend is not None:
            adds, spend_names, spend_values = spend.update()
            update += " ADD " + ", ".join(adds)
            names |= spend_names
            values |= spend_values
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"task_id": {"S": task_id}},
                UpdateExpression=update,
                ConditionExpression=f"#status IN ({', '.join(_values(allowed))})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return self._record(response["Attributes"])

    def add_spend(
        self,
        task_id: str,
        agent: str,
        usage: Usage,
        cost_usd: float | None,
        *,
        steps: int = 0,
        limit_reached: bool = False,
        transcript: tuple[str, str] | None = None,
        model: str | None = None,
        returning: bool = False,
    ) -> TaskRecord | None:
        """Add one agent run's tokens, steps and cost (when its price is known) to the task, atomically, under the
        agent and, given its ``model``, under the model too (:attr:`TaskRecord.spend_by_model`).

        The totals (``total_*``) are what :class:`TaskRecord` reports as the task's usage, steps and cost;
        ``limit_reached`` sets :attr:`TaskRecord.spend_limit_reached` in the same write. ``transcript`` is the run's
        name and its transcript (a checkpoint's JSON, kept as ``run#<milliseconds>#<name>`` when it fits in
        :data:`RUN_TRANSCRIPT_LIMIT` bytes): what the console's timeline shows of a multi-agent run, at no extra write.

        With ``returning``, the task as this write left it (its status and new totals; a result kept in S3 is not
        fetched), read in the same write, or ``None`` when the task is gone; without it, ``None``, and a missing
        task raises ``ConditionalCheckFailedException``.
        """
        adds, names, values = Spend(agent, usage, cost_usd, steps, model).update()
        update = "ADD " + ", ".join(adds)
        sets = []
        if limit_reached:
            sets.append("spend_limit_reached = :reached")
            values[":reached"] = {"BOOL": True}
        if transcript is not None and len(transcript[1].encode()) <= RUN_TRANSCRIPT_LIMIT:
            sets.append("#transcript = :transcript")
            # run#<milliseconds>#<run>: the runs of a task sort in the order they were recorded.
            names["#transcript"] = f"{RUN_PREFIX}{int(self._clock() * 1000):015d}#{transcript[0]}"
            values[":transcript"] = {"S": transcript[1]}
        if sets:
            update += " SET " + ", ".join(sets)
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"task_id": {"S": task_id}},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(task_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **({"ReturnValues": "ALL_NEW"} if returning else {}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            if returning:
                return None
            raise
        return self._record(response["Attributes"], with_payloads=False) if returning else None

    def cancel(self, task_id: str, *, owner: str) -> TaskRecord:
        """Cancel a task that has not finished. Raises :class:`TaskNotFound` or :class:`TaskFinished`."""
        now = self.now()
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"task_id": {"S": task_id}},
                UpdateExpression=(
                    "SET #status = :cancelled, updated_at = :now, finished_at = :now, expires_at = :expires,"
                    " event_pending = :event REMOVE #queue"
                ),
                ConditionExpression=f"#owner = :owner AND #status IN ({', '.join(_values(CANCELLABLE))})",
                ExpressionAttributeNames={"#status": "status", "#owner": "owner", "#queue": BATCH_QUEUE},
                ExpressionAttributeValues={
                    ":cancelled": {"S": TaskStatus.CANCELLED.value},
                    ":now": {"N": str(now)},
                    ":expires": {"N": str(now + self.retention_seconds)},
                    ":owner": {"S": owner},
                    ":event": {"S": TASK_FINISHED},
                    **_values(CANCELLABLE),
                },
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            record = self.get_for(task_id, owner)
            raise TaskFinished(record.status) from None
        return self._record(response["Attributes"])

    def give_feedback(self, task_id: str, *, owner: str, feedback: Feedback) -> None:
        """Store the owner's feedback on the task (one conditional UpdateItem): the first feedback stands.

        Raises
        ------
        TaskNotFound
            No such task for ``owner``.
        FeedbackGiven
            The task already has feedback.
        """
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"task_id": {"S": task_id}},
                UpdateExpression="SET feedback_json = :feedback",
                ConditionExpression="#owner = :owner AND attribute_not_exists(feedback_json)",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":feedback": {"S": feedback.model_dump_json(exclude_none=True)},
                    ":owner": {"S": owner},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            self.get_for(task_id, owner)
            raise FeedbackGiven from None

    def replace_message(self, task_id: str, message: str) -> None:
        """Keep ``message`` (the task's message, redacted) instead of the one submitted."""
        self.client.update_item(
            TableName=self.table_name,
            Key={"task_id": {"S": task_id}},
            UpdateExpression="SET message = :message",
            ConditionExpression="attribute_exists(task_id)",
            ExpressionAttributeValues={":message": {"S": message}},
        )

    def event_published(self, task_id: str) -> bool:
        """Empty the outbox once its event is published; False when another delivery emptied it first."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"task_id": {"S": task_id}},
                UpdateExpression="REMOVE event_pending",
                ConditionExpression="attribute_exists(event_pending)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def requeue(self, task_id: str) -> bool:
        """A dead-lettered task goes back to ``queued`` before it is redriven."""
        return self.set_status(task_id, TaskStatus.QUEUED, expected=(TaskStatus.FAILED, TaskStatus.RUNNING, TaskStatus.QUEUED))

    def note_attempt_failure(self, task_id: str, error: TaskError) -> None:
        """Remember why the last attempt failed (what ``agentrail dlq list`` shows)."""
        self.client.update_item(
            TableName=self.table_name,
            Key={"task_id": {"S": task_id}},
            UpdateExpression="SET last_error_json = :error, updated_at = :now",
            ConditionExpression="attribute_exists(task_id)",
            ExpressionAttributeValues={":error": {"S": error.model_dump_json()}, ":now": {"N": str(self.now())}},
        )

    def last_error(self, task_id: str) -> TaskError | None:
        item = (
            self.client.get_item(
                TableName=self.table_name, Key={"task_id": {"S": task_id}}, ProjectionExpression="last_error_json, error_json"
            ).get("Item")
            or {}
        )
        raw = item.get("last_error_json") or item.get("error_json")
        return TaskError.model_validate_json(raw["S"]) if raw else None

    def set_execution(self, task_id: str, execution_arn: str) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key={"task_id": {"S": task_id}},
            UpdateExpression="SET execution_arn = :arn",
            ExpressionAttributeValues={":arn": {"S": execution_arn}},
        )

    # -- subtasks (hierarchical agents) --------------------------------------------------

    @staticmethod
    def subtask_key(task_id: str, index: int) -> str:
        return f"{task_id}.{index:03d}"

    @staticmethod
    def subtask_run(index: int, attempt: int) -> str:
        """The run of attempt ``attempt`` at subtask ``index`` (its checkpoint item, and its transcript on the task)."""
        return f"work{index}-{attempt}"

    @staticmethod
    def runs_of_subtask(runs: Iterable[str], index: int) -> list[str]:
        """The names among ``runs`` of the attempts at subtask ``index``, in their order."""
        return [run for run in runs if run.startswith(f"work{index}-")]

    def put_subtasks(self, task_id: str, texts: list[str]) -> None:
        """One item per subtask (``<task_id>.<NNN>``), so parallel workers never write the same item."""
        now = str(self.now())
        for index, text in enumerate(texts):
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "task_id": {"S": self.subtask_key(task_id, index)},
                    "parent": {"S": task_id},
                    "text": {"S": text},
                    "status": {"S": "pending"},
                    "attempts": {"N": "0"},
                    "updated_at": {"N": now},
                    "expires_at": {"N": str(self.now() + self.retention_seconds)},
                },
            )
        self.client.update_item(
            TableName=self.table_name,
            Key={"task_id": {"S": task_id}},
            UpdateExpression="SET subtask_count = :n",
            ExpressionAttributeValues={":n": {"N": str(len(texts))}},
        )

    def record_subtask(self, task_id: str, index: int, *, status: str, answer: str | None, attempt: int) -> None:
        values: dict[str, Any] = {":status": {"S": status}, ":attempt": {"N": str(attempt)}, ":now": {"N": str(self.now())}}
        update = "SET #status = :status, attempts = :attempt, updated_at = :now"
        if answer is not None:
            update += ", answer = :answer"
            values[":answer"] = {"S": answer}
        self.client.update_item(
            TableName=self.table_name,
            Key={"task_id": {"S": self.subtask_key(task_id, index)}},
            UpdateExpression=update,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )

    def subtasks(self, task_id: str) -> list[dict[str, Any]]:
        """Every subtask of ``task_id`` in order: index, text, status, answer, attempts."""
        parent = (
            self.client.get_item(
                TableName=self.table_name,
                Key={"task_id": {"S": task_id}},
                ProjectionExpression="subtask_count",
                ConsistentRead=True,
            ).get("Item")
            or {}
        )
        count = int(parent.get("subtask_count", {"N": "0"})["N"])
        found = {}
        for index in range(count):  # a plan has a handful of subtasks: plain consistent reads
            key = self.subtask_key(task_id, index)
            item = self.client.get_item(TableName=self.table_name, Key={"task_id": {"S": key}}, ConsistentRead=True).get("Item")
            if item:
                found[key] = item
        subtasks = []
        for index in range(count):
            item = found.get(self.subtask_key(task_id, index), {})
            subtasks.append(
                {
                    "index": index,
                    "text": item.get("text", {}).get("S", ""),
                    "status": item.get("status", {}).get("S", "missing"),
                    "answer": item.get("answer", {}).get("S"),
                    "attempts": int(item.get("attempts", {"N": "0"})["N"]),
                }
            )
        return subtasks

    # -- checkpoints (long tasks) --------------------------------------------------------

    def save_checkpoint(self, task_id: str, checkpoint: str, *, steps: int, usage: Usage) -> None:
        """Keep a long task's agent state between workflow steps (in the item, or in S3 when large)."""
        values: dict[str, Any] = {
            ":now": {"N": str(self.now())},
            ":steps": {"N": str(steps)},
            ":usage": {"S": usage.model_dump_json()},
        }
        if len(checkpoint.encode()) > INLINE_LIMIT:
            update = "SET checkpoint_s3_key = :key, updated_at = :now, steps = :steps, usage_json = :usage REMOVE checkpoint_json"
            values[":key"] = {"S": self._offload(f"checkpoints/{task_id}.json", checkpoint)}
        else:
            update = "SET checkpoint_json = :cp, updated_at = :now, steps = :steps, usage_json = :usage REMOVE checkpoint_s3_key"
            values[":cp"] = {"S": checkpoint}
        self.client.update_item(
            TableName=self.table_name, Key={"task_id": {"S": task_id}}, UpdateExpression=update, ExpressionAttributeValues=values
        )

    @staticmethod
    def run_key(task_id: str, run: str) -> str:
        """The item of one agent run's checkpoint within a task (``<task_id>~<run>``): parallel runs never share one."""
        return f"{task_id}~{run}"

    def save_run_checkpoint(self, task_id: str, run: str, checkpoint: str, *, first: bool = False) -> bool:
        """Keep the checkpoint of one agent run of a multi-agent task (in its own item, or in S3 when large); it
        expires with the task's retention.

        With ``first`` (an attempt's first save of a run it did not read first), nothing is written when the run
        already has a checkpoint (an earlier attempt's): returns False, and the caller continues from that one.
        """
        key = self.run_key(task_id, run)
        if first and len(checkpoint.encode()) > INLINE_LIMIT and self._exists(key):
            return False  # checked before the upload: it would overwrite the earlier attempt's checkpoint in S3
        now = self.now()
        values: dict[str, Any] = {
            ":now": {"N": str(now)},
            ":expires": {"N": str(now + self.retention_seconds)},
            ":parent": {"S": task_id},
        }
        sets = "updated_at = :now, expires_at = :expires, parent = :parent"
        if len(checkpoint.encode()) > INLINE_LIMIT:
            update = f"SET checkpoint_s3_key = :key, {sets} REMOVE checkpoint_json"
            values[":key"] = {"S": self._offload(f"checkpoints/{task_id}/{run}.json", checkpoint)}
        else:
            update = f"SET checkpoint_json = :cp, {sets} REMOVE checkpoint_s3_key"
            values[":cp"] = {"S": checkpoint}
        condition = {"ConditionExpression": "attribute_not_exists(task_id)"} if first else {}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"task_id": {"S": key}},
                UpdateExpression=update,
                ExpressionAttributeValues=values,
                **condition,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _exists(self, key: str) -> bool:
        item = self.client.get_item(
            TableName=self.table_name, Key={"task_id": {"S": key}}, ProjectionExpression="task_id", ConsistentRead=True
        ).get("Item")
        return item is not None

    def run_checkpoint(self, task_id: str, run: str) -> str | None:
        """The last checkpoint :meth:`save_run_checkpoint` kept for this run, if any (one consistent read)."""
        item = self.client.get_item(
            TableName=self.table_name, Key={"task_id": {"S": self.run_key(task_id, run)}}, ConsistentRead=True
        ).get("Item")
        return self._checkpoint(item) if item else None

    def get_with_runs(self, task_id: str) -> tuple[TaskRecord | None, str | None, dict[str, str]]:
        """The task, its checkpoint and the transcripts of its agent runs by run name, in one consistent read."""
        item = self.client.get_item(TableName=self.table_name, Key={"task_id": {"S": task_id}}, ConsistentRead=True).get("Item")
        if not item:
            return None, None, {}
        runs = {name.split("#", 2)[2]: item[name]["S"] for name in sorted(item) if name.startswith(RUN_PREFIX)}
        return self._record(item), self._checkpoint(item), runs

    def get_checkpointed(self, task_id: str) -> tuple[TaskRecord | None, str | None]:
        """The task and its checkpoint in one consistent read (the checkpoint from S3 when it was offloaded)."""
        item = self.client.get_item(TableName=self.table_name, Key={"task_id": {"S": task_id}}, ConsistentRead=True).get("Item")
        if not item:
            return None, None
        return self._record(item), self._checkpoint(item)

    def _checkpoint(self, item: dict[str, Any]) -> str | None:
        if "checkpoint_json" in item:
            return str(item["checkpoint_json"]["S"])
        if "checkpoint_s3_key" in item:
            return self._fetch(item["checkpoint_s3_key"]["S"])
        return None

    # -- reads of the operator console ---------------------------------------------------

    def recent_owned(self, owner: str, *, limit: int, since: int | None = None) -> list[str]:
        """The ids of ``owner``'s newest tasks, newest first: up to ``limit``, created at ``since`` or later
        (epoch seconds) when given (Queries of the ``by_owner_created`` index)."""
        condition = "#owner = :owner" + (" AND created_at >= :since" if since is not None else "")
        values: dict[str, Any] = {":owner": {"S": owner}}
        if since is not None:
            values[":since"] = {"N": str(since)}
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=OWNER_CREATED_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            PaginationConfig={"MaxItems": limit, "PageSize": min(limit, 1000)},
        )
        return [item["task_id"]["S"] for page in pages for item in page.get("Items", [])][:limit]

    def get_many(self, task_ids: Sequence[str], *, with_payloads: bool = False, consistent: bool = False) -> list[TaskRecord]:
        """The tasks of ``task_ids`` that exist, in that order (BatchGetItem, 100 keys a call; strongly consistent
        when ``consistent``). A result that was offloaded to S3 is read only ``with_payloads``: a list shows
        summaries."""
        items = aws.batch_get(self.client, self.table_name, "task_id", task_ids, consistent=consistent)
        return [self._record(items[task_id], with_payloads=with_payloads) for task_id in task_ids if task_id in items]

    def run_checkpoints(self, task_id: str) -> dict[str, str]:
        """The checkpoint of every agent run of a multi-agent task by run name, in the order they last saved (``by_parent``,
        then BatchGetItem)."""
        keys = [key for key in self._index_keys(PARENT_INDEX, "parent", task_id) if key.startswith(f"{task_id}~")]
        found = []
        for key, item in aws.batch_get(self.client, self.table_name, "task_id", keys).items():
            checkpoint = self._checkpoint(item)
            if checkpoint is not None:
                found.append((int(item.get("updated_at", {"N": "0"})["N"]), key.split("~", 1)[1], checkpoint))
        return {run: checkpoint for _, run, checkpoint in sorted(found)}

    # -- erasure ------------------------------------------------------------------------

    def owned_tasks(self, owner: str) -> Iterator[str]:
        """The ids of every task ``owner`` submitted (a paged Query of the ``by_owner`` index)."""
        yield from self._index_keys(OWNER_INDEX, "owner", owner)

    def erase_task(self, task_id: str, *, owner: str) -> ErasedTask:
        """Delete ``owner``'s task: its subtasks and run checkpoints, its S3 objects, then the task item (last, so that
        an erasure that stops halfway finds the task again through the owner index when it is retried).

        Idempotent: a task already gone counts zero.
        """
        children = 0
        if self._table is None:
            self._table = aws.resource("dynamodb").Table(self.table_name)
        with self._table.batch_writer() as batch:  # batch_writer re-sends unprocessed items itself
            for child in list(self._index_keys(PARENT_INDEX, "parent", task_id)):
                batch.delete_item(Key={"task_id": child})
                children += 1
        objects = 0
        if self.payloads is not None:
            objects += self.payloads.delete_prefix(f"results/{task_id}.json")
            objects += self.payloads.delete_prefix(f"checkpoints/{task_id}.json")
            objects += self.payloads.delete_prefix(f"checkpoints/{task_id}/")
        response = self.client.delete_item(
            TableName=self.table_name,
            Key={"task_id": {"S": task_id}},
            ConditionExpression="attribute_not_exists(task_id) OR #owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": {"S": owner}},
            ReturnValues="ALL_OLD",
        )
        old = response.get("Attributes", {})
        return ErasedTask(tasks=int(bool(old)), children=children, feedback=int("feedback_json" in old), objects=objects)

    def _index_keys(self, index: str, attribute: str, value: str) -> Iterator[str]:
        for item in aws.query_index(self.client, self.table_name, index, attribute, value):
            yield item["task_id"]["S"]

    # -- mapping ------------------------------------------------------------------------

    def _offload(self, key: str, payload: str) -> str:
        if self.payloads is None:
            raise ValueError("this payload is too large for an item and no results bucket is configured")
        return self.payloads.put(key, payload)

    def _fetch(self, key: str) -> str:
        if self.payloads is None:
            raise ValueError("no results bucket is configured")
        return self.payloads.get(key)

    def _item(self, record: TaskRecord) -> dict[str, Any]:
        item: dict[str, Any] = {"task_id": {"S": record.task_id}}
        for name in _STRINGS:
            value = getattr(record, name)
            if value is not None:
                item[name] = {"S": str(value.value if isinstance(value, TaskStatus) else value)}
        for name in _NUMBERS:
            value = getattr(record, name)
            if value is not None:
                item[name] = {"N": str(value)}
        for name, attribute in _JSON_FIELDS.items():
            value = getattr(record, name)
            if value:
                item[attribute] = {"S": json.dumps(_dump(value))}
        return item

    def _record(self, item: dict[str, Any], *, with_payloads: bool = True) -> TaskRecord:
        data: dict[str, Any] = {"task_id": item["task_id"]["S"]}
        for name in _STRINGS:
            if name in item:
                data[name] = item[name]["S"]
        for name in _NUMBERS:
            if name in item:
                data[name] = int(item[name]["N"])
        for name, attribute in _JSON_FIELDS.items():
            if attribute in item:
                data[name] = json.loads(item[attribute]["S"])
        if "spend_limit_reached" in item:
            data["spend_limit_reached"] = bool(item["spend_limit_reached"]["BOOL"])
        if "total_cost_usd" in item:
            data["cost_usd"] = round(float(item["total_cost_usd"]["N"]), 8)
        spend: dict[str, dict[str, dict[str, float]]] = {"spend": {}, "spend_by_model": {}}
        for attribute, value in item.items():
            if attribute.startswith((SPEND_PREFIX, MODEL_SPEND_PREFIX)):
                by = "spend" if attribute.startswith(SPEND_PREFIX) else "spend_by_model"
                owner, key = attribute.split("#", 1)[1].rsplit("#", 1)
                spend[by].setdefault(owner, {})[_SPEND_FIELDS[key]] = float(value["N"])
        for by, owners in spend.items():
            if owners:
                data[by] = {
                    owner: AgentSpend(
                        usage=Usage(**{name: int(v.get(name, 0)) for name in _USAGE_FIELDS}),
                        cost_usd=round(v.get("cost_usd", 0.0), 8),
                        calls=int(v.get("calls", 0)),
                    )
                    for owner, v in owners.items()
                }
        if "total_input_tokens" in item:
            # The sum over every agent that worked on the task.
            data["usage"] = Usage(**{name: int(item[f"total_{name}"]["N"]) for name in _USAGE_FIELDS if f"total_{name}" in item})
            data["steps"] = int(item.get("total_steps", {"N": "0"})["N"])
        if "result_json" in item:
            data["result"] = json.loads(item["result_json"]["S"])
        elif "result_s3_key" in item and with_payloads:
            data["result"] = json.loads(self._fetch(item["result_s3_key"]["S"]))
        return TaskRecord.model_validate(data)

    def _not_runnable(self, task_id: str) -> Exception:
        record = self.get(task_id)
        if record is None:
            return TaskNotFound()
        return TaskFinished(record.status, record)


def _dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value
