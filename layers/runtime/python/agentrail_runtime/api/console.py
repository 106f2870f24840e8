"""The operator console's reads, mounted on the task API: ``GET /tasks`` (the caller's runs, newest first),
``GET /tasks/{id}/timeline`` (a run's steps, tool calls, approvals and subtasks) and ``GET /costs`` (tokens and USD
per agent and per day, from the caller's task records).

The owner rule holds: a caller sees their own tasks. An approver also sees the timeline of a task whose approval is
visible to them, by naming that approval (``?approval_id=``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, Field

from agentrail_runtime.agent.timeline import TimelineEvent
from agentrail_runtime.api.approvals import APPROVAL_ID_PATTERN
from agentrail_runtime.api.errors import AgentResolver, error_responses
from agentrail_runtime.approvals.models import ApprovalRecord, ApprovalStatus
from agentrail_runtime.approvals.service import ApprovalService, approval_ids_of
from agentrail_runtime.approvals.store import ApprovalNotFound
from agentrail_runtime.redaction import redact, redact_data
from agentrail_runtime.tasks.models import TaskRecord
from agentrail_runtime.tasks.service import TASK_ID_PATTERN, TaskService
from agentrail_runtime.tasks.store import TaskNotFound, TaskStore
from agentrail_runtime.tasks.timeline import SubtaskOut, subtasks_out, task_events, tool_use_ids

#: The most runs ``GET /tasks`` lists, and the most tasks ``GET /costs`` adds up.
MAX_LISTED_TASKS = 200
MAX_COSTED_TASKS = 1_000
#: The longest window of ``GET /costs``, in days.
MAX_COST_DAYS = 90
#: How much of a task's message a list shows.
MESSAGE_PREVIEW_CHARS = 200
_DAY = 86_400


class TaskSummary(BaseModel):
    """A run as a list shows it."""

    task_id: str
    task_type: str
    status: str
    created_at: int
    started_at: int | None
    finished_at: int | None
    updated_at: int
    steps: int
    usage: dict[str, int]
    cost_usd: float | None
    message: str = Field(description=f"The first {MESSAGE_PREVIEW_CHARS} characters of the task's message, redacted")

    @classmethod
    def of(cls, record: TaskRecord) -> TaskSummary:
        return cls(
            task_id=record.task_id,
            task_type=record.task_type,
            status=record.status.value,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            updated_at=record.updated_at,
            steps=record.steps,
            usage={**record.usage.model_dump(), "total_tokens": record.usage.total_tokens},
            cost_usd=record.cost_usd,
            message=redact(record.message)[:MESSAGE_PREVIEW_CHARS],
        )


class TaskList(BaseModel):
    tasks: list[TaskSummary]


class TimelineTask(TaskSummary):
    """The run a timeline is of: the summary, with its spend per agent, error and result."""

    spend: dict[str, Any]
    error: dict[str, str] | None
    result: dict[str, Any] | None


class Timeline(BaseModel):
    task: TimelineTask
    events: list[TimelineEvent]
    subtasks: list[SubtaskOut]


class CostRow(BaseModel):
    day: str = Field(description="UTC day the tasks were submitted, YYYY-MM-DD")
    agent: str
    tasks: int
    input_tokens: int = Field(description="Every input token, read from or written to the prompt cache or not")
    output_tokens: int
    cost_usd: float


class Costs(BaseModel):
    currency: str = "USD"
    source: str = Field(default="task records", description="Where the figures come from")
    days: list[CostRow]


def add_console_routes(
    app: AgentResolver,
    tasks: TaskService,
    approvals: ApprovalService | None,
    owner: Callable[[], str],
    groups: Callable[[], list[str]],
) -> None:
    """Register the console's read routes on ``app``."""

    @app.get(
        "/tasks",
        summary="Your tasks, newest first",
        responses={200: {"description": "Success"}},
    )
    def list_tasks(limit: Annotated[int, Query(ge=1, le=MAX_LISTED_TASKS)] = 50) -> TaskList:
        records = tasks.store.get_many(tasks.store.recent_owned(owner(), limit=limit))
        return TaskList(tasks=[TaskSummary.of(record) for record in records])

    @app.get(
        "/tasks/<task_id>/timeline",
        summary="A task's steps, tool calls, approvals and subtasks (its owner, or an approver naming its approval)",
        responses={200: {"description": "Success"}, **error_responses("task_not_found")},
    )
    def timeline(
        task_id: Annotated[str, Path(pattern=TASK_ID_PATTERN, description="32 lowercase hex characters")],
        approval_id: Annotated[
            str | None, Query(pattern=APPROVAL_ID_PATTERN, description="An approval of this task that you may see")
        ] = None,
    ) -> Timeline:
        caller, caller_groups = owner(), groups()
        record, checkpoint, transcripts = tasks.store.get_with_runs(task_id)
        if record is None or not (record.owner == caller or _approves(approvals, approval_id, task_id, caller, caller_groups)):
            raise TaskNotFound
        # A finished run's transcript is written after its last checkpoint; a run still going has its checkpoint only.
        runs = transcripts | {run: cp for run, cp in tasks.store.run_checkpoints(task_id).items() if run not in transcripts}
        subtasks = tasks.store.subtasks(task_id)
        events = task_events(record, checkpoint=checkpoint, runs=runs, subtasks=subtasks)
        if approvals is not None:
            stored = ([checkpoint] if checkpoint else []) + list(runs.values())
            events = _with_approvals(events, _approval_events(approvals, task_id, tool_use_ids(stored)))
        summary = TaskSummary.of(record)
        return Timeline(
            task=TimelineTask(
                **summary.model_dump(),
                spend={name: spend.model_dump(mode="json") for name, spend in record.spend.items()},
                error=record.error.model_dump() if record.error else None,
                result=redact_data(record.result.model_dump(mode="json"), keep=("model", "agent_status", "tool"))
                if record.result
                else None,
            ),
            events=events,
            subtasks=subtasks_out(task_id, subtasks, lambda index: TaskStore.runs_of_subtask(runs, index)),
        )

    @app.get(
        "/costs",
        summary="Tokens and USD of your tasks, per agent and per UTC day",
        responses={200: {"description": "Success"}},
    )
    def costs(days: Annotated[int, Query(ge=1, le=MAX_COST_DAYS)] = 14) -> Costs:
        now = tasks.store.now()
        since = (now // _DAY - (days - 1)) * _DAY
        records = tasks.store.get_many(tasks.store.recent_owned(owner(), limit=MAX_COSTED_TASKS, since=since))
        return Costs(days=cost_rows(records))


def cost_rows(records: list[TaskRecord]) -> list[CostRow]:
    """Tokens and USD per UTC day of submission and per agent, oldest day first."""
    rows: dict[tuple[str, str], CostRow] = {}
    for record in records:
        day = datetime.fromtimestamp(record.created_at, UTC).date().isoformat()
        for agent, spend in record.spend.items():
            row = rows.setdefault(
                (day, agent), CostRow(day=day, agent=agent, tasks=0, input_tokens=0, output_tokens=0, cost_usd=0)
            )
            row.tasks += 1
            row.input_tokens += spend.usage.all_input_tokens
            row.output_tokens += spend.usage.output_tokens
            row.cost_usd = round(row.cost_usd + spend.cost_usd, 8)
    return [rows[key] for key in sorted(rows)]


def _approves(
    approvals: ApprovalService | None, approval_id: str | None, task_id: str, caller: str, caller_groups: list[str]
) -> bool:
    """Whether ``approval_id`` names an approval of ``task_id`` that the caller may see."""
    if approvals is None or approval_id is None:
        return False
    try:
        record = approvals.get_visible(approval_id, caller, caller_groups)
    except ApprovalNotFound:
        return False
    return record.task_id == task_id


def _approval_events(approvals: ApprovalService, task_id: str, tool_use_ids: list[str]) -> dict[str, list[TimelineEvent]]:
    """The request and the decision of each approval of the task's tool calls, by tool call id (approval ids derive
    from the task, the tool call and the level: one BatchGetItem)."""
    candidates = approval_ids_of(task_id, tool_use_ids)
    events: dict[str, list[TimelineEvent]] = {}
    for record in approvals.approvals.get_many(list(candidates)):
        found = events.setdefault(candidates[record.approval_id], [])
        found.append(_requested(record))
        if record.decided_at is not None and record.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED):
            found.append(
                TimelineEvent(
                    at=record.decided_at,
                    kind="approval_decided",
                    title=f"{record.tool} {record.status.value}",
                    tool=record.tool,
                    approval_id=record.approval_id,
                    decision="approved" if record.status == ApprovalStatus.APPROVED else "rejected",
                    actor=record.decided_by,
                    comment=record.comment,
                    status=record.status.value,
                )
            )
    return events


def _with_approvals(events: list[TimelineEvent], approvals: dict[str, list[TimelineEvent]]) -> list[TimelineEvent]:
    """``events`` with the approval events of each tool call right after that call (before the outcome when the
    transcript no longer names the call)."""
    merged: list[TimelineEvent] = []
    for event in events:
        if event.kind == "finished":
            merged.extend(e for call in list(approvals) for e in approvals.pop(call))
        merged.append(event)
        if event.kind == "tool_call" and event.call_id in approvals:
            merged.extend(approvals.pop(event.call_id))
    merged.extend(e for found in approvals.values() for e in found)
    return merged


def _requested(record: ApprovalRecord) -> TimelineEvent:
    return TimelineEvent(
        at=record.requested_at,
        kind="approval_requested",
        title=record.summary,
        tool=record.tool,
        arguments=redact_data(record.arguments),
        approval_id=record.approval_id,
        actor=record.requester,
        status=record.status.value,
    )


__all__ = ["Costs", "TaskList", "TaskSummary", "Timeline", "add_console_routes", "cost_rows"]
