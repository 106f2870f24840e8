"""Submitting, running, finishing and cancelling tasks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import WithJsonSchema

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.loop import (
    Agent,
    AgentCheckpoint,
    AgentResult,
    AgentStatus,
    ApprovalDecision,
    CheckpointSink,
)
from agentrail_runtime.agent.results import MAX_MESSAGE_CHARS, ToolCallOut
from agentrail_runtime.aws import LazyClient
from agentrail_runtime.budgets import BudgetGuard
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.contract import BATCH_WINDOW_HOURS, TASK_LANES, TaskLane, batch_model_problem
from agentrail_runtime.guardrails import GuardBlocked
from agentrail_runtime.models.base import ModelError, ModelRequestError, Usage
from agentrail_runtime.observability import correlate, logger, sqs_trace_attributes, step_functions_trace_fields
from agentrail_runtime.redaction import redact
from agentrail_runtime.redaction.models import RedactedMessages, redacted_model
from agentrail_runtime.service import AgentService
from agentrail_runtime.tasks.events import TaskEvents
from agentrail_runtime.tasks.models import TaskError, TaskRecord, TaskResult, TaskStatus
from agentrail_runtime.tasks.settings import BatchLaneSettings, TaskSettings, load_batch_settings
from agentrail_runtime.tasks.store import Spend, TaskFinished, TaskStore
from agentrail_runtime.tasks.webhook import CallbackPolicy

QUEUE_ROUTE = "queue"
TASK_ID_PATTERN = r"^[0-9a-f]{32}$"


class TaskSubmission(BaseModel):
    """The body of ``POST /tasks``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=r"\S", description="What the agent should do.")
    task_type: str = Field(
        default="default", pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="Routes the task (queue or workflow)."
    )
    model: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")
    callback_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+",
        description="An absolute http(s) URL (https unless allowed otherwise); receives a signed POST when the task finishes.",
    )
    metadata: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, max_length=16, description="Echoed in the task record (at most 16 values of 256 characters)."
    )
    # Not nullable: the field is absent (the default lane) or names a lane, as API Gateway's model says.
    lane: Annotated[TaskLane | None, WithJsonSchema({"type": "string", "enum": list(TASK_LANES)})] = Field(
        default=None,
        description=(
            "on_demand runs the task now; batch answers it in a Bedrock batch inference job at about half the price, "
            f"within {BATCH_WINDOW_HOURS} hours (one model call, no tools). Default: the deployment's default lane."
        ),
    )

    @field_validator("lane", mode="before")
    @classmethod
    def _lane_given(cls, value: object) -> object:
        if value is None:
            raise ValueError("Input should be 'on_demand' or 'batch'")
        return value


class BatchLaneRefused(ValueError):
    """A task the batch lane cannot take; the message is one sentence saying why and what to do."""


#: A batch-lane task waits under ``pending#<model>`` on the ``by_batch`` index until its job is flushed.
BATCH_PENDING_PREFIX = "pending#"


class UnknownTaskType(ValueError):
    def __init__(self, known: list[str]) -> None:
        super().__init__("unknown task type")
        self.known = known


def _status_for(result: AgentResult) -> tuple[TaskStatus, TaskError | None]:
    if result.status == AgentStatus.COMPLETED:
        return TaskStatus.SUCCEEDED, None
    if result.status == AgentStatus.BUDGET_EXCEEDED and result.budget is not None:
        return TaskStatus.BUDGET_EXCEEDED, TaskError(code="budget_exceeded", message=result.budget.sentence)
    if result.status == AgentStatus.AWAITING_APPROVAL:
        return TaskStatus.FAILED, TaskError(
            code="approval_required", message="A tool needs approval but this task type has no approval workflow."
        )
    return TaskStatus.FAILED, TaskError(code=result.status.value, message=f"The agent stopped: {result.status.value}.")


def task_result(result: AgentResult) -> TaskResult:
    return TaskResult(
        answer=result.answer,
        agent_status=result.status.value,
        model=result.model,
        tool_calls=[ToolCallOut.of(c) for c in result.tool_calls],
    )


def transcript_of(result: AgentResult) -> AgentCheckpoint:
    """What a finished run keeps for the console's timeline: its messages, steps, usage and tool calls."""
    return AgentCheckpoint(
        messages=result.new_messages,
        steps=result.steps,
        usage=result.usage,
        tool_calls=result.tool_calls,
        guard_events=result.guard_events,
    )


def short_cause(error: BaseException | Mapping[str, Any]) -> TaskError:
    """A task error safe to store and show: the error type and a bounded message, never a stack trace."""
    if isinstance(error, Mapping):
        code = str(error.get("Error") or "Error")
        cause = error.get("Cause") or ""
        try:
            parsed = json.loads(cause)
            message = str(parsed.get("errorMessage") or parsed.get("errorType") or code)
        except (TypeError, ValueError, AttributeError):
            message = str(cause).splitlines()[0] if cause else code
        return TaskError(code=code[:100], message=message[:500])
    return TaskError(code=type(error).__name__, message=str(error)[:500] or type(error).__name__)


class _EarlierAttempt(Exception):
    """A run's first save found the checkpoint an earlier attempt left (see :meth:`TaskService.run_agent`); ``usage``
    is what this attempt had spent so far."""

    def __init__(self, usage: Usage) -> None:
        super().__init__("an earlier attempt left a checkpoint of this run")
        self.usage = usage


class TaskService:
    """The async pattern's logic; handlers only adapt events to it.

    Parameters
    ----------
    store:
        The task table.
    agents:
        Runs and meters the agent.
    events:
        Publishes ``Task Finished``.
    routes:
        Task type to ``queue`` or a state machine ARN.
    queue_url:
        The task queue (required when a route is ``queue``).
    store_redacted:
        Store the task's checkpoints, result and error with personal and secret data redacted
        (``[REDACTED:<kind>]``), and its message once it finished (the worker reads the message as submitted; the
        agent sees it as written). Default: ``False``.
    """

    sqs = LazyClient("sqs")
    sfn = LazyClient("stepfunctions")

    def __init__(
        self,
        *,
        store: TaskStore,
        agents: AgentService,
        events: TaskEvents,
        routes: Mapping[str, str],
        queue_url: str | None = None,
        sqs_client: Any = None,
        sfn_client: Any = None,
        allow_insecure_callbacks: bool = False,
        callbacks: CallbackPolicy | None = None,
        store_redacted: bool = False,
        batch: BatchLaneSettings | None = None,
        clock: Clock = now,
    ) -> None:
        self.store = store
        self.batch = batch or BatchLaneSettings()
        self.agents = agents
        self.events = events
        self.routes = dict(routes)
        self.queue_url = queue_url
        self.sqs = sqs_client
        self.sfn = sfn_client
        self.callbacks = callbacks or CallbackPolicy(allow_insecure=allow_insecure_callbacks)
        self.store_redacted = store_redacted
        self._clock = clock

    # -- API side -----------------------------------------------------------------------

    def validate(self, submission: TaskSubmission) -> tuple[TaskLane, str]:
        """Refuse what would fail later: unknown task type, model or callback URL, or a task the batch lane cannot
        take (nothing is queued). Returns the task's lane and its model's canonical spec."""
        if submission.task_type not in self.routes:
            raise UnknownTaskType(sorted(self.routes))
        model = self.agents.model_spec(submission.model)
        if submission.callback_url is not None:
            self.callbacks.vet(submission.callback_url)
        lane = self.lane_of(submission)
        if lane == "batch":
            self.check_batch(submission, model)
        return lane, model

    def lane_of(self, submission: TaskSubmission) -> TaskLane:
        """The lane the task asks for, else the deployment's default lane for a task type served by the queue."""
        if submission.lane is not None:
            return submission.lane
        if self.batch.enabled and self.routes.get(submission.task_type) == QUEUE_ROUTE:
            return self.batch.default_lane
        return "on_demand"

    def check_batch(self, submission: TaskSubmission, model: str) -> None:
        """Raises :class:`BatchLaneRefused` with one sentence when the batch lane cannot answer the task."""
        if not self.batch.enabled:
            raise BatchLaneRefused(
                'This deployment has no batch lane: submit with "lane": "on_demand", or deploy one (AsyncOptions batch_lane).'
            )
        if self.routes[submission.task_type] != QUEUE_ROUTE:
            raise BatchLaneRefused(
                f"Task type {submission.task_type} runs as a workflow; the batch lane takes task types served by the queue."
            )
        tools = [tool.name for tool in self.agents.definition.tools]
        if tools:
            raise BatchLaneRefused(
                f"The agent {self.agents.definition.name} has tools ({', '.join(tools)}) and Bedrock batch inference runs "
                'none: submit with "lane": "on_demand".'
            )
        problem = batch_model_problem(model)
        if problem is not None:
            raise BatchLaneRefused(problem)

    def submit(self, submission: TaskSubmission, *, owner: str, correlation_id: str | None = None) -> TaskRecord:
        """Create the task and hand it to its queue or workflow. The task id is new each call.

        A dispatch failure marks the task failed, so it never waits forever.
        """
        lane, model = self.validate(submission)
        now = int(self._clock())
        record = TaskRecord(
            task_id=uuid.uuid4().hex,
            owner=owner,
            task_type=submission.task_type,
            message=submission.message,
            model=submission.model,
            created_at=now,
            updated_at=now,
            callback_url=submission.callback_url,
            correlation_id=correlation_id,
            metadata=submission.metadata,
            lane="batch" if lane == "batch" else None,
        )
        if lane == "batch":
            # It waits in the table until the lane's schedule flushes it into a job: nothing to dispatch now.
            self.store.create(record, batch_queue=f"{BATCH_PENDING_PREFIX}{model}")
            logger.info("task submitted", extra={"event": "task_submitted", "task_id": record.task_id, "lane": lane})
            return record
        self.store.create(record)
        route = self.routes[submission.task_type]
        try:
            if route == QUEUE_ROUTE:
                self.sqs.send_message(
                    QueueUrl=self.queue_url, MessageBody=json.dumps({"task_id": record.task_id}), **sqs_trace_attributes()
                )
            else:
                execution = self.sfn.start_execution(
                    stateMachineArn=route,
                    name=record.task_id,
                    input=json.dumps({"task_id": record.task_id, "correlation_id": correlation_id}),
                    **step_functions_trace_fields(),
                )
                self.store.set_execution(record.task_id, execution["executionArn"])
                record.execution_arn = execution["executionArn"]
        except Exception as error:
            self.store.finish(
                record.task_id,
                status=TaskStatus.FAILED,
                error=TaskError(code="dispatch_failed", message="The task could not be queued."),
                expected=(TaskStatus.QUEUED,),
            )
            logger.exception("task dispatch failed", extra={"event": "task_dispatch_failed", "task_id": record.task_id})
            raise error
        logger.info("task submitted", extra={"event": "task_submitted", "task_id": record.task_id, "task_type": record.task_type})
        return record

    def cancel(self, task_id: str, *, owner: str) -> TaskRecord:
        """Raises TaskNotFound or TaskFinished."""
        record = self.store.cancel(task_id, owner=owner)
        if record.execution_arn:
            self.sfn.stop_execution(executionArn=record.execution_arn, error="Cancelled", cause="cancelled by its owner")
        self.announce(record)
        return record

    def announce(self, record: TaskRecord, *, empty_outbox: bool = True) -> None:
        """Publish the event in the task's outbox (``event_pending``), then empty it.

        The outbox is written with the final status, so an event is never lost: when ``PutEvents`` fails,
        ``TaskEventNotPublished`` propagates, the delivery is retried (the queue redelivers the message; Step
        Functions retries the workflow step, ``MarkFailed`` included, by the error's name), and the retry finds the
        task finished with its event still pending and publishes it. A crash between ``PutEvents`` and emptying
        the outbox publishes it twice: subscribers dedupe on ``task_id`` and ``status``.

        With ``empty_outbox=False`` nothing is written after ``PutEvents``: the caller's delivery record says the
        event went out (the queue worker's idempotency record completes only after this returns, and a duplicate
        delivery returns that record's outcome without running). Only a delivery that outlives that record (past
        its expiry) can find the event still pending, and publishes it again, which subscribers dedupe as above.
        """
        if record.event_pending is None:
            return
        self.events.publish(record.event_pending, record)
        if empty_outbox:
            self.store.event_published(record.task_id)

    # -- worker side ----------------------------------------------------------------------

    def run(self, task_id: str, *, final_attempt: bool = False) -> TaskRecord | None:
        """Run a queued task once and record its outcome.

        Returns ``None`` when the task was cancelled or already finished.
        Raises what should be retried (throttling, provider outages, bugs);
        on the ``final_attempt`` the task is first marked failed with the cause.
        """
        try:
            record, checkpoint = self.store.mark_running_checkpointed(task_id)
        except TaskFinished as finished:
            logger.info("task not run", extra={"event": "task_skipped", "task_id": task_id, "status": finished.status.value})
            if finished.record is not None:
                self.announce(finished.record)  # an earlier delivery finished it but could not publish
            return None
        correlate(record.correlation_id, task_id=task_id)
        try:
            with self.attempt(task_id, final_attempt=final_attempt):
                # A redelivery continues from the checkpoint an earlier attempt left: recorded tool calls never rerun.
                resumed = AgentCheckpoint.model_validate_json(checkpoint) if checkpoint else None
                result = self.advance(record, resumed)
                self.agents.emit_metrics(result, task_latency_ms=self.latency_ms(record))
        except ModelRequestError as error:
            # The model will refuse this request again: retrying only costs money.
            return self.fail(task_id, TaskError(code=error.error_code, message=str(error)))
        except GuardBlocked as blocked:
            # Accepted before the agent's input guards changed: they will block it on every delivery too.
            return self.fail(task_id, TaskError(code="input_blocked", message=blocked.reason))
        # Under the queue's idempotency record, which completes once this returns: the outbox needs no second write.
        return self.complete(task_id, result, empty_outbox=False)

    def advance(
        self,
        record: TaskRecord,
        checkpoint: AgentCheckpoint | None,
        *,
        max_steps: int | None = None,
        decision: ApprovalDecision | None = None,
    ) -> AgentResult:
        """Continue the task's agent from ``checkpoint`` (from the start when ``None``), checkpointing every tool
        call on the task; tools get the task id for their idempotency key."""
        agent = self.agents.agent(record.model)
        if checkpoint is None:
            checkpoint = agent.start(record.message)
        context = ToolContext(
            task_id=record.task_id,
            principal=record.owner,
            correlation_id=record.correlation_id,
            state=dict(checkpoint.state),
        )
        return agent.advance(
            checkpoint,
            max_steps=max_steps,
            decision=decision,
            context=context,
            on_checkpoint=self.checkpointer(record.task_id),
            # Only calls of tools with side effects are stored (before and after they run): a continuation runs the
            # read-only calls after the last stored one again, which is harmless and saves a write per call.
            checkpoint_every_call=False,
            budget=self.agents.budget_guard(record.owner),
        )

    def checkpointer(self, task_id: str) -> CheckpointSink:
        """Stores the agent's checkpoints on the task (in the item, or in S3 when large)."""

        messages = RedactedMessages()

        def save(checkpoint: AgentCheckpoint) -> None:
            self.store.save_checkpoint(
                task_id, self.stored_checkpoint(checkpoint, messages=messages), steps=checkpoint.steps, usage=checkpoint.usage
            )

        return save

    def stored_checkpoint(self, checkpoint: AgentCheckpoint, *, messages: RedactedMessages) -> str:
        """``checkpoint``'s JSON as the store keeps it (redacted with ``store_redacted``: a resumed run continues
        from the redacted messages); ``messages`` keeps the run's messages redacted by its earlier checkpoints."""
        return messages.json_of(checkpoint) if self.store_redacted else checkpoint.model_dump_json()

    def run_agent(
        self,
        agent: Agent,
        task_id: str,
        run: str,
        prompt: str,
        *,
        correlation_id: str | None = None,
        state: dict[str, Any] | None = None,
        budget: BudgetGuard | None = None,
        read_checkpoint: bool = True,
    ) -> AgentResult:
        """One agent run within a multi-agent task, continued from its last checkpoint when a retry or redelivery
        repeats it.

        ``run`` names the run within the task (the router, a specialist's hop, a worker's subtask attempt). Calls of
        tools with side effects are checkpointed before and after they run (``<task_id>~<run>``), so a repeated run
        never runs one twice; one that crashed mid-call ends ``outcome_unknown``. Tools get ``<task_id>#<tool-use
        id>`` as their idempotency key.

        With ``read_checkpoint`` the checkpoint is read before the run starts (one GetItem). Without it, nothing is
        read up front: the run's first save (before its first call of a tool with side effects, so before that tool
        runs) is conditional on the run having no checkpoint, and when an earlier attempt left one, the run
        continues from that checkpoint instead (with the tokens this attempt spent until then added to its usage). A
        run that calls no tool with side effects then costs no call at all, whichever delivery it is.
        """
        stored = self.store.run_checkpoint(task_id, run) if read_checkpoint else None
        checkpoint = AgentCheckpoint.model_validate_json(stored) if stored else agent.start(prompt, state=state)
        try:
            return self._advance_run(
                agent, task_id, run, checkpoint, correlation_id=correlation_id, budget=budget, first=not read_checkpoint
            )
        except _EarlierAttempt as earlier:
            stored = self.store.run_checkpoint(task_id, run)
            if stored is None:  # erased meanwhile: nothing to continue from
                raise RuntimeError(f"the checkpoint of run {run} disappeared") from None
            resumed = AgentCheckpoint.model_validate_json(stored)
            resumed.usage = resumed.usage + earlier.usage
            logger.info("run continued from an earlier attempt's checkpoint", extra={"event": "run_resumed", "run": run})
            return self._advance_run(agent, task_id, run, resumed, correlation_id=correlation_id, budget=budget, first=False)

    def _advance_run(
        self,
        agent: Agent,
        task_id: str,
        run: str,
        checkpoint: AgentCheckpoint,
        *,
        correlation_id: str | None,
        budget: BudgetGuard | None,
        first: bool,
    ) -> AgentResult:
        """Advance ``run`` from ``checkpoint``; with ``first``, its first save raises :class:`_EarlierAttempt` when the
        run already has a checkpoint (nothing is written)."""
        context = ToolContext(task_id=task_id, correlation_id=correlation_id, state=dict(checkpoint.state))
        messages = RedactedMessages()

        def save(progress: AgentCheckpoint) -> None:
            nonlocal first
            stored = self.stored_checkpoint(progress, messages=messages)
            if not first:
                self.store.save_run_checkpoint(task_id, run, stored)
            elif self.store.save_run_checkpoint(task_id, run, stored, first=True):
                first = False
            else:
                raise _EarlierAttempt(progress.usage)

        return agent.advance(checkpoint, context=context, on_checkpoint=save, checkpoint_every_call=False, budget=budget)

    def record_spend(
        self,
        task_id: str,
        agent: str,
        result: AgentResult,
        *,
        bound_by_task: bool = False,
        run: str | None = None,
        returning: bool = False,
    ) -> TaskRecord | None:
        """Add one agent run to the task's per-agent spend and totals.

        With ``bound_by_task`` (the run's token budget was what the task had left), a run that stopped
        ``token_budget_exceeded`` marks the task's spend limit reached: its next model call would not have fit.
        With ``run`` (a run of a multi-agent task), the same write keeps the run's transcript (redacted under
        ``store_redacted``) for the console's timeline. With ``returning``, returns the task as the write left it
        (``None`` when it is gone; see :meth:`TaskStore.add_spend`).
        """
        limit_reached = bound_by_task and result.status == AgentStatus.TOKEN_BUDGET_EXCEEDED
        transcript = None
        if run is not None:
            transcript = (run, self.stored_checkpoint(transcript_of(result), messages=RedactedMessages()))
        return self.store.add_spend(
            task_id,
            agent,
            result.usage,
            result.cost_usd,
            steps=result.steps,
            limit_reached=limit_reached,
            transcript=transcript,
            model=result.model,
            returning=returning,
        )

    def record_agent_run(
        self,
        task_id: str,
        agent: str,
        result: AgentResult,
        *,
        run: str,
        bound_by_task: bool = False,
        agents: AgentService | None = None,
        returning: bool = False,
    ) -> TaskRecord | None:
        """Run ``run`` of ``agent`` within a multi-agent task: its spend and transcript on the task, and its metrics
        (under ``agent``, with the version of ``agents``, the service that ran it; default: this task service's).
        With ``returning``, the task as the spend's write left it (see :meth:`record_spend`)."""
        (agents or self.agents).emit_metrics(result, agent_name=agent)
        return self.record_spend(task_id, agent, result, bound_by_task=bound_by_task, run=run, returning=returning)

    @contextmanager
    def attempt(self, task_id: str, *, final_attempt: bool) -> Iterator[None]:
        """One delivery's work on a task: a failure is noted on the task (what ``agentrail dlq list`` shows) and
        re-raised for SQS to retry; on the final delivery the task is marked failed first, so a message that ends
        in a dead-letter queue never leaves its task waiting forever."""
        try:
            yield
        except (ModelRequestError, GuardBlocked):
            raise
        except Exception as error:
            cause = short_cause(error)
            if self.store_redacted:
                cause = cause.model_copy(update={"message": redact(cause.message)})
            self.store.note_attempt_failure(task_id, cause)
            if final_attempt or (isinstance(error, ModelError) and not error.retryable):
                self.fail(task_id, cause)
            raise

    def finish(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        result: TaskResult | None = None,
        error: TaskError | None = None,
        expected: Iterable[TaskStatus] = (TaskStatus.RUNNING, TaskStatus.WAITING_APPROVAL),
        spend: Spend | None = None,
        empty_outbox: bool = True,
        transcript: AgentCheckpoint | None = None,
    ) -> TaskRecord | None:
        """Record a task's outcome once (with ``spend``, in the same write) and announce it (``Task Finished``; see
        :meth:`announce` for ``empty_outbox``); ``transcript`` (the run's messages and tool calls) replaces the task's
        checkpoint in the same write. ``None`` when it had already finished or was cancelled: nothing is written or
        announced."""
        if self.store_redacted:
            result = redacted_model(result) if result else None
            error = error.model_copy(update={"message": redact(error.message)}) if error else None
        record = self.store.finish(
            task_id,
            status=status,
            result=result,
            error=error,
            expected=expected,
            agent_version=self.agents.version,
            spend=spend,
            checkpoint=self.stored_checkpoint(transcript, messages=RedactedMessages()) if transcript else None,
        )
        if record is None:
            logger.info(
                "task outcome discarded: finished or cancelled meanwhile",
                extra={"event": "task_result_discarded", "task_id": task_id},
            )
            earlier = self.store.get(task_id)
            if earlier is not None:
                self.announce(earlier)  # the outcome that won may still wait in the outbox
            return None
        if self.store_redacted and (message := redact(record.message)) != record.message:
            self.store.replace_message(task_id, message)
            record = record.model_copy(update={"message": message})
        self.announce(record, empty_outbox=empty_outbox)
        log = logger.info if status == TaskStatus.SUCCEEDED else logger.warning
        log(
            "task finished",
            extra={"event": "task_finished", "task_id": task_id, "status": status.value, "error": error.code if error else None},
        )
        return record

    def complete(
        self, task_id: str, result: AgentResult, *, agent: str | None = None, empty_outbox: bool = True
    ) -> TaskRecord | None:
        """Record a finished agent run once, with its spend under ``agent`` and its transcript (the checkpoint only
        calls of tools with side effects saved along the way), in one write; then announce it (see :meth:`announce`
        for ``empty_outbox``)."""
        status, error = _status_for(result)
        spend = Spend(
            agent=agent or self.agents.definition.name,
            usage=result.usage,
            cost_usd=result.cost_usd,
            steps=result.steps,
            model=result.model,
        )
        finished = self.finish(
            task_id,
            status,
            result=task_result(result),
            error=error,
            spend=spend,
            empty_outbox=empty_outbox,
            # A run that called no tool has nothing for the timeline beyond its result: no transcript is kept.
            transcript=transcript_of(result) if result.tool_calls else None,
        )
        if finished is None:
            # Cancelled (or finished) meanwhile: the outcome is discarded, but the run's tokens were spent.
            self.store.add_spend(task_id, spend.agent, spend.usage, spend.cost_usd, steps=spend.steps, model=spend.model)
        return finished

    def fail(self, task_id: str, error: TaskError) -> TaskRecord | None:
        """Mark the task failed once, announce it, and count it (``Tasks_failed``); ``None`` when it had finished."""
        failed = self.finish(
            task_id, TaskStatus.FAILED, error=error, expected=(TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING_APPROVAL)
        )
        if failed is not None:
            self.agents.emit_failed(failed.model)
        return failed

    def latency_ms(self, record: TaskRecord) -> float:
        """The task's wall time so far: from its submission to now, in milliseconds."""
        return max(0.0, (self._clock() - record.created_at) * 1000)

    @classmethod
    def from_settings(
        cls, settings: TaskSettings, runtime_settings: RuntimeSettings, *, agents: AgentService | None = None
    ) -> TaskService:
        """The service a handler serves; ``agents`` when the handler's agent is not the configured definition."""
        return cls(
            store=TaskStore(settings.table, bucket=settings.bucket, retention_seconds=settings.retention_days * 86_400),
            agents=agents or AgentService.from_settings(runtime_settings),
            events=TaskEvents(settings.event_bus),
            routes=settings.routes,
            queue_url=settings.queue_url,
            callbacks=settings.callback_policy(),
            store_redacted=runtime_settings.store_redacted,
            batch=load_batch_settings(),
        )
