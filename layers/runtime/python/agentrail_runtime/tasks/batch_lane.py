"""The batch lane: tasks answered by Bedrock batch inference jobs, at about half the on-demand price, within a day.

A task submitted with ``"lane": "batch"`` is created ``queued`` with ``batch_queue = pending#<model>``, on the task
table's sparse keys-only ``by_batch`` index, sorted by ``created_at``. A schedule invokes :meth:`BatchLane.tick`
every few minutes; each tick first collects the jobs it started, then flushes waiting tasks into new jobs:

- **Flush.** For each model, when ``flush_size`` tasks wait or the oldest has waited ``max_age``, the oldest tasks
  (at most ``flush_size``) become one job. Its item in the task table (``batchjob#<name>``, ``batch_queue = jobs``)
  is written first, with the task ids, so a crash anywhere later is resumed by the next tick. Then the input file
  is written to S3, the job submitted (its name is its client request token: submitting again starts no second job),
  and each task marked ``batched`` with the job's ARN (a conditional write: a task cancelled meanwhile stays
  cancelled). Below the model's minimum records per job at ``max_age``, the tasks run on demand (sent to the task
  queue) or fail, as ``below_minimum`` says. A task is never left waiting.
- **Collect.** A job that ended is read back (:func:`~agentrail_runtime.batch.records.read_output`): each task
  finishes once (a conditional write from ``batched``, with its result and spend in the same write), its event is
  published and its webhook fires. A record without an answer fails its task with the cause. A job that failed is
  submitted once more, under a new name; failing again, it fails its tasks with Bedrock's message. The job's item
  leaves the index only once every task finished, so a tick that crashes mid-way is finished by the next.

With the local model, local mode's job runs on it at submit (:class:`~agentrail_runtime.batch.jobs.LocalBatchJobs`),
over the same files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from agentrail_runtime import aws, contract
from agentrail_runtime.agent.loop import AgentResult, AgentStatus
from agentrail_runtime.batch.files import BatchFiles, JobLocation
from agentrail_runtime.batch.jobs import BatchJobError, BatchJobs, JobState, LocalBatchJobs
from agentrail_runtime.batch.records import converse_record, input_jsonl, read_output
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.config import load_settings
from agentrail_runtime.guardrails import GuardBlocked
from agentrail_runtime.metering.metrics import emit_batch_lane
from agentrail_runtime.models.base import ModelResponse
from agentrail_runtime.observability import logger, metrics
from agentrail_runtime.tasks.models import TaskError, TaskRecord, TaskStatus
from agentrail_runtime.tasks.service import BATCH_PENDING_PREFIX, TaskService, task_result
from agentrail_runtime.tasks.settings import BatchLaneSettings, load_batch_settings, load_task_settings
from agentrail_runtime.tasks.store import BATCH_QUEUE, Spend

__all__ = ["BatchLane", "BatchLaneError", "TickReport"]

#: The task table's item of one job: ``batchjob#<name of its first submission>``.
JOB_KEY_PREFIX = "batchjob#"
#: The ``batch_queue`` of a job that has not finished all its tasks.
OPEN_JOBS = "jobs"
#: Jobs one tick starts per model at most (the function's timeout bounds a tick; the next tick goes on).
MAX_JOBS_PER_TICK = 10


class JobRunner(Protocol):
    def submit(self, job_name: str, model_id: str, location: JobLocation) -> str: ...

    def state(self, job_arn: str) -> JobState: ...


class BatchLaneError(RuntimeError):
    """Some jobs could not be submitted or described this tick (the others went on); the next tick tries again."""


@dataclass
class TickReport:
    """What one tick did: tasks answered, failed, batched and sent on demand; jobs submitted and still running."""

    answered: int = 0
    failed: int = 0
    batched: int = 0
    on_demand: int = 0
    jobs_submitted: int = 0
    jobs_running: int = 0
    jobs_resubmitted: int = 0
    #: After the tick: the tasks still waiting for a job, the age of the oldest (0 when none), the jobs not collected.
    waiting: int = 0
    oldest_age_seconds: int = 0
    jobs_open: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Job:
    """A job's item: its first name (the item's key), its current name and ARN, its model and tasks."""

    first_name: str
    name: str
    model: str
    task_ids: list[str]
    created_at: int
    attempt: int = 0
    job_arn: str | None = None
    submitted_at: int | None = None

    @property
    def key(self) -> str:
        return f"{JOB_KEY_PREFIX}{self.first_name}"


def job_name(task_ids: Sequence[str], created_at: int) -> str:
    """A job's name, the same for the same tasks: Bedrock's pattern, at most 63 characters."""
    digest = hashlib.sha256("\n".join(sorted(task_ids)).encode()).hexdigest()[:20]
    return f"agentrail-{created_at}-{digest}"


class BatchLane:
    """Flushes waiting tasks into batch jobs and finishes them from the jobs' output (see the module's docstring).

    Parameters
    ----------
    tasks:
        The task service of the agent the lane answers for (its store, events, queue, prices and guards).
    files:
        The lane's bucket.
    settings:
        ``flush_size``, ``max_age_seconds``, ``below_minimum`` and the role Bedrock assumes.
    jobs:
        Runs Bedrock jobs. Default: :class:`~agentrail_runtime.batch.jobs.BatchJobs` with ``settings.role_arn``; a
        ``local`` model's jobs always run on it (:class:`~agentrail_runtime.batch.jobs.LocalBatchJobs`).
    """

    sqs = aws.LazyClient("sqs")

    def __init__(
        self,
        *,
        tasks: TaskService,
        files: BatchFiles,
        settings: BatchLaneSettings,
        jobs: JobRunner | None = None,
        sqs_client: Any = None,
        clock: Clock = now,
    ) -> None:
        self.tasks = tasks
        self.store = tasks.store
        self.files = files
        self.settings = settings
        self._jobs = jobs
        self.sqs = sqs_client
        self._clock = clock

    @classmethod
    def from_environment(cls) -> BatchLane:
        settings = load_batch_settings()
        if not settings.bucket:
            raise ValueError("the batch lane's function needs AGENT_BATCH_BUCKET (set by BatchLaneOptions)")
        return cls(
            tasks=TaskService.from_settings(load_task_settings(), load_settings()),
            files=BatchFiles(settings.bucket),
            settings=settings,
        )

    def now(self) -> int:
        return int(self._clock())

    def runner(self, model: str) -> JobRunner:
        """Who runs ``model``'s jobs: Bedrock, or the local model itself."""
        if model.partition(":")[0] == "local":
            return LocalBatchJobs(self.files, self.tasks.agents.model(model))
        if self._jobs is None:
            if not self.settings.role_arn:
                raise BatchJobError("the batch lane has no role for Bedrock (AGENT_BATCH_ROLE_ARN)")
            self._jobs = BatchJobs(self.settings.role_arn)
        return self._jobs

    # -- the tick ----------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Collect the jobs that ended, then flush what waits.

        Raises
        ------
        BatchLaneError
            After doing all it could, when a job could not be submitted or described (retried next tick).
        """
        report = TickReport()
        for key in self._index_keys(OPEN_JOBS):
            self._collect(key, report)
        models = [model for model in self.tasks.agents.models if contract.batch_model(model) is not None]
        for model in models:
            self._flush(model, report)
        self._measure(models, report)
        logger.info("batch lane tick", extra={"event": "batch_lane_tick", **report.as_dict()})
        if report.errors:
            raise BatchLaneError("; ".join(report.errors[:5]))
        return report

    def _measure(self, models: Sequence[str], report: TickReport) -> None:
        """What waits after the tick, as metrics (an alarm fires when the oldest task waits past ``max_age`` and two
        more ticks: the lane is not flushing)."""
        waiting = [created for model in models for _, created in self._index_keys(f"{BATCH_PENDING_PREFIX}{model}")]
        report.waiting = len(waiting)
        report.oldest_age_seconds = max(0, self.now() - min(waiting)) if waiting else 0
        report.jobs_open = len(self._index_keys(OPEN_JOBS))
        emit_batch_lane(metrics, waiting=report.waiting, oldest_age_seconds=report.oldest_age_seconds, jobs_open=report.jobs_open)

    def _index_keys(self, queue: str, limit: int | None = None) -> list[tuple[str, int]]:
        """(task id, created_at) of the items under ``queue`` on the ``by_batch`` index, oldest first."""
        found: list[tuple[str, int]] = []
        paginator = self.store.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.store.table_name,
            IndexName=contract.TASK_BATCH_INDEX,
            KeyConditionExpression="#queue = :queue",
            ExpressionAttributeNames={"#queue": BATCH_QUEUE},
            ExpressionAttributeValues={":queue": {"S": queue}},
            ScanIndexForward=True,
            PaginationConfig={"MaxItems": limit, "PageSize": min(limit or 1000, 1000)},
        )
        for page in pages:
            found.extend((item["task_id"]["S"], int(item["created_at"]["N"])) for item in page.get("Items", []))
        return found[:limit] if limit else found

    # -- flush -------------------------------------------------------------------------

    def _flush(self, model: str, report: TickReport) -> None:
        support = contract.batch_model(model)
        assert support is not None
        size = min(self.settings.flush_size, support.max_records)
        for _ in range(MAX_JOBS_PER_TICK):
            waiting = self._index_keys(f"{BATCH_PENDING_PREFIX}{model}", size)
            # The index is eventually consistent: read the tasks themselves, and keep those still waiting.
            records = [r for r in self.store.get_many([t for t, _ in waiting], consistent=True) if self._waits(r)]
            if not records:
                return
            aged = self.now() - records[0].created_at >= self.settings.max_age_seconds
            if len(records) < size and not aged:
                return
            if len(records) < support.min_records:
                if aged:
                    self._below_minimum(model, records, support.min_records, report)
                return
            job = Job(
                first_name=job_name([r.task_id for r in records], records[0].created_at),
                name="",
                model=model,
                task_ids=[r.task_id for r in records],
                created_at=self.now(),
            )
            job.name = job.first_name
            self._put_job(job)
            self._write_input(job, records)
            self._submit(job, report)

    @staticmethod
    def _waits(record: TaskRecord) -> bool:
        return record.status == TaskStatus.QUEUED and record.lane == "batch"

    def _below_minimum(self, model: str, records: list[TaskRecord], minimum: int, report: TickReport) -> None:
        """``max_age`` passed with fewer tasks than a job may hold: run them on demand, or fail them."""
        if self.settings.below_minimum == "on_demand" and self.tasks.queue_url:
            for record in records:
                # Sent first: a crash before the task leaves the lane's queue sends it again, and the worker runs a
                # task once whatever the deliveries.
                self.sqs.send_message(QueueUrl=self.tasks.queue_url, MessageBody=json.dumps({"task_id": record.task_id}))
                self._leave_lane(record.task_id)
                report.on_demand += 1
            return
        for record in records:
            error = TaskError(
                code="batch_below_minimum",
                message=(
                    f"Only {len(records)} batch-lane tasks waited {self.settings.max_age_seconds} s for {model}, fewer "
                    f"than the {minimum} records Bedrock runs in a job, and the lane fails them (below_minimum=fail)."
                ),
            )
            if self.tasks.finish(record.task_id, TaskStatus.FAILED, error=error, expected=(TaskStatus.QUEUED,)):
                self.tasks.agents.emit_failed(record.model)
                report.failed += 1

    def _leave_lane(self, task_id: str) -> None:
        """The task now runs on demand: out of the lane's queue."""
        self.store.client.update_item(
            TableName=self.store.table_name,
            Key={"task_id": {"S": task_id}},
            UpdateExpression="SET lane = :lane REMOVE #queue",
            ConditionExpression="attribute_exists(task_id)",
            ExpressionAttributeNames={"#queue": BATCH_QUEUE},
            ExpressionAttributeValues={":lane": {"S": "on_demand"}},
        )

    def _put_job(self, job: Job) -> None:
        """The job's item, before anything else of it: what a later tick resumes from."""
        item = {
            "task_id": {"S": job.key},
            BATCH_QUEUE: {"S": OPEN_JOBS},
            "created_at": {"N": str(job.created_at)},
            "job_name": {"S": job.name},
            "model": {"S": job.model},
            "task_ids": {"S": json.dumps(job.task_ids)},
            "attempt": {"N": "0"},
            "expires_at": {"N": str(job.created_at + self.store.retention_seconds)},
        }
        # The same tasks made the same job in an earlier tick: go on with it.
        with contextlib.suppress(self.store.client.exceptions.ConditionalCheckFailedException):
            self.store.client.put_item(
                TableName=self.store.table_name, Item=item, ConditionExpression="attribute_not_exists(task_id)"
            )

    def _write_input(self, job: Job, records: list[TaskRecord]) -> None:
        """The job's input file: one Converse request per task (the agent's system prompt, the task's message)."""
        agents = self.tasks.agents
        max_tokens = agents.settings.max_output_tokens
        requests = [
            (record.task_id, converse_record(system=agents.system_prompt, message=record.message, max_tokens=max_tokens))
            for record in records
        ]
        self.files.write_input(job.name, input_jsonl(requests))

    def _submit(self, job: Job, report: TickReport) -> None:
        """Start the job over its input (again: the same job), mark its tasks batched, then note its ARN on its item
        (until then, the next tick resumes here)."""
        location = self.files.location(job.name)
        try:
            job_arn = self.runner(job.model).submit(job.name, job.model.partition(":")[2], location)
        except BatchJobError as error:
            report.errors.append(str(error))
            return
        submitted_at = self.now()
        for task_id in job.task_ids:
            if self._mark(task_id, job_arn, submitted_at, expected=TaskStatus.QUEUED):
                report.batched += 1
        self.store.client.update_item(
            TableName=self.store.table_name,
            Key={"task_id": {"S": job.key}},
            UpdateExpression="SET job_arn = :arn, submitted_at = :at",
            ExpressionAttributeValues={":arn": {"S": job_arn}, ":at": {"N": str(submitted_at)}},
        )
        report.jobs_submitted += 1
        logger.info(
            "batch job submitted",
            extra={"event": "batch_job_submitted", "job": job.name, "model": job.model, "tasks": len(job.task_ids)},
        )

    def _mark(self, task_id: str, job_arn: str, submitted_at: int, *, expected: TaskStatus) -> bool:
        """Mark the task ``batched`` in ``job_arn``, out of the lane's queue; False when it was not ``expected``."""
        client = self.store.client
        try:
            client.update_item(
                TableName=self.store.table_name,
                Key={"task_id": {"S": task_id}},
                UpdateExpression="SET #status = :batched, updated_at = :now, batch_job = :job, batch_submitted_at = :at REMOVE #queue",
                # A task cancelled (or already marked) meanwhile keeps its status.
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames={"#status": "status", "#queue": BATCH_QUEUE},
                ExpressionAttributeValues={
                    ":batched": {"S": TaskStatus.BATCHED.value},
                    ":expected": {"S": expected.value},
                    ":now": {"N": str(self.now())},
                    ":job": {"S": job_arn},
                    ":at": {"N": str(submitted_at)},
                },
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- collect -----------------------------------------------------------------------

    def _load_job(self, key: str) -> Job | None:
        item = self.store.client.get_item(TableName=self.store.table_name, Key={"task_id": {"S": key}}, ConsistentRead=True).get(
            "Item"
        )
        if not item or BATCH_QUEUE not in item:
            return None
        return Job(
            first_name=key.removeprefix(JOB_KEY_PREFIX),
            name=item["job_name"]["S"],
            model=item["model"]["S"],
            task_ids=json.loads(item["task_ids"]["S"]),
            created_at=int(item["created_at"]["N"]),
            attempt=int(item["attempt"]["N"]),
            job_arn=item["job_arn"]["S"] if "job_arn" in item else None,
            submitted_at=int(item["submitted_at"]["N"]) if "submitted_at" in item else None,
        )

    def _collect(self, index_key: tuple[str, int], report: TickReport) -> None:
        job = self._load_job(index_key[0])
        if job is None:
            return
        if job.job_arn is None:
            # A tick stopped after the job's item was written: finish submitting it (the same job if it started).
            if not self.files.has_input(self.files.location(job.name)):
                records = [r for r in self.store.get_many(job.task_ids, with_payloads=True, consistent=True) if self._waits(r)]
                if not records:
                    self._close(job)  # every task was cancelled meanwhile
                    return
                self._write_input(job, records)
            self._submit(job, report)
            return
        try:
            state = self.runner(job.model).state(job.job_arn)
        except BatchJobError as error:
            report.errors.append(str(error))
            return
        if state.phase == "running":
            report.jobs_running += 1
        elif state.phase == "done":
            self._finish_job(job, report)
        elif job.attempt == 0:
            self._resubmit(job, state, report)
        else:
            self._fail_job(job, state, report)

    def _finish_job(self, job: Job, report: TickReport) -> None:
        output = read_output(self.files.output_lines(self.files.location(job.name)), job.task_ids, model=job.model)
        if output.malformed or output.unexpected or output.repeated:
            logger.warning(
                "batch job output had lines it could not use",
                extra={
                    "event": "batch_output_skipped",
                    "job": job.name,
                    "malformed": output.malformed,
                    "unexpected": output.unexpected,
                    "repeated": output.repeated,
                },
            )
        records = {r.task_id: r for r in self.store.get_many(job.task_ids, with_payloads=True, consistent=True)}
        for task_id, outcome in output.outcomes.items():
            record = records.get(task_id)
            if record is None:
                continue  # erased meanwhile
            if record.status != TaskStatus.BATCHED:
                self.tasks.announce(record)  # finished by an earlier tick that stopped before publishing, or cancelled
                continue
            if outcome.response is not None:
                self._answer(record, outcome.response, report)
            else:
                self._fail(record, TaskError(code="batch_record_failed", message=outcome.cause or "no answer"), report)
        self._close(job)

    def _answer(self, record: TaskRecord, response: ModelResponse, report: TickReport) -> None:
        """Finish the task with the job's answer, once: its result and its spend (at the batch price) in one write."""
        agents = self.tasks.agents
        try:
            text = agents.guards.output.enforce(response.message.text).text
        except GuardBlocked as blocked:
            agents.emit_guard_block("output", response.model)
            self._fail(record, TaskError(code="output_blocked", message=blocked.reason), report)
            return
        price = agents.prices.cost(response.model, response.usage)
        cost = None if price is None else round(price * contract.BATCH_PRICE_FACTOR, 8)
        result = AgentResult(
            status=AgentStatus.COMPLETED,
            answer=text,
            model=response.model,
            steps=1,
            usage=response.usage,
            cost_usd=cost,
            tool_calls=[],
            new_messages=[response.message],
        )
        spend = Spend(agents.definition.name, response.usage, cost, steps=1, model=response.model)
        finished = self.tasks.finish(
            record.task_id, TaskStatus.SUCCEEDED, result=task_result(result), expected=(TaskStatus.BATCHED,), spend=spend
        )
        if finished is None:
            return
        report.answered += 1
        agents.emit_metrics(result, task_latency_ms=self.tasks.latency_ms(record))
        guard = agents.budget_guard(record.owner)
        if guard is not None:
            guard.charge(response.usage, cost)

    def _fail(self, record: TaskRecord, error: TaskError, report: TickReport) -> None:
        if self.tasks.finish(record.task_id, TaskStatus.FAILED, error=error, expected=(TaskStatus.BATCHED,)):
            self.tasks.agents.emit_failed(record.model)
            report.failed += 1

    def _resubmit(self, job: Job, state: JobState, report: TickReport) -> None:
        """The job failed: run its input once more, as a new job (its own folder), and point its tasks at it."""
        assert job.job_arn is not None
        retry = f"{job.first_name}-r1"
        location = self.files.write_input(retry, self.files.read_input(self.files.location(job.name)))
        try:
            job_arn = self.runner(job.model).submit(retry, job.model.partition(":")[2], location)
        except BatchJobError as error:
            report.errors.append(str(error))
            return
        submitted_at = self.now()
        self.store.client.update_item(
            TableName=self.store.table_name,
            Key={"task_id": {"S": job.key}},
            UpdateExpression="SET job_name = :name, job_arn = :arn, submitted_at = :at, attempt = :one",
            ExpressionAttributeValues={
                ":name": {"S": retry},
                ":arn": {"S": job_arn},
                ":at": {"N": str(submitted_at)},
                ":one": {"N": "1"},
            },
        )
        for record in self.store.get_many(job.task_ids, consistent=True):
            if record.status == TaskStatus.BATCHED:
                self._mark(record.task_id, job_arn, submitted_at, expected=TaskStatus.BATCHED)
        report.jobs_resubmitted += 1
        logger.warning(
            "batch job failed; submitted again",
            extra={"event": "batch_job_resubmitted", "job": job.name, "status": state.status, "retry": retry},
        )

    def _fail_job(self, job: Job, state: JobState, report: TickReport) -> None:
        detail = f": {state.message[:300]}" if state.message else ""
        error = TaskError(code="batch_job_failed", message=f"The batch job ended {state.status} twice (last {job.name}){detail}.")
        for record in self.store.get_many(job.task_ids, consistent=True):
            if record.status == TaskStatus.BATCHED:
                self._fail(record, error, report)
            else:
                self.tasks.announce(record)
        self._close(job)

    def _close(self, job: Job) -> None:
        """Every task of the job finished: its files go (the tasks keep what they need), then the job leaves the
        index (its item expires with the tasks')."""
        for name in dict.fromkeys((job.first_name, job.name)):
            self.files.delete_job(name)
        self.store.client.update_item(
            TableName=self.store.table_name,
            Key={"task_id": {"S": job.key}},
            UpdateExpression="SET closed_at = :now REMOVE #queue",
            ExpressionAttributeNames={"#queue": BATCH_QUEUE},
            ExpressionAttributeValues={":now": {"N": str(self.now())}},
        )
