"""A task as a timeline for the operator console: submitted, started, each model step and tool call (arguments and
results redacted as the runtime redacts log lines), the agent runs of a multi-agent task, subtasks, and the outcome.

Built from what the task table keeps: the task record, the agent checkpoint (the transcript a long or approval task
saves) and the checkpoint of every agent run. Approval events come from the approvals domain, which the API merges in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from agentrail_runtime.agent.loop import AgentCheckpoint
from agentrail_runtime.agent.timeline import MAX_TEXT_CHARS, TimelineEvent, cut, transcript_events
from agentrail_runtime.models.base import ToolUseBlock
from agentrail_runtime.redaction import redact
from agentrail_runtime.tasks.models import TaskRecord
from agentrail_runtime.tasks.store import TaskStore


class SubtaskOut(BaseModel):
    subtask_id: str = Field(description="The subtask's item in the task table (a subtask is part of its task)")
    index: int
    status: str
    answer: str | None = None
    runs: list[str] = Field(default_factory=list, description="Its attempts' runs: the agent of their timeline events")


def task_events(
    record: TaskRecord,
    *,
    checkpoint: str | None = None,
    runs: Mapping[str, str] | None = None,
    subtasks: Sequence[Mapping[str, Any]] = (),
) -> list[TimelineEvent]:
    """The timeline of ``record`` without its approvals: ``checkpoint`` is the task's stored agent checkpoint,
    ``runs`` the checkpoints of a multi-agent task's runs by run name, ``subtasks`` what the store lists."""
    events = [TimelineEvent(at=record.created_at, kind="submitted", title=cut(redact(record.message), MAX_TEXT_CHARS))]
    if record.started_at is not None:
        events.append(TimelineEvent(at=record.started_at, kind="started", title="Started", status="running"))
    transcripts: dict[str | None, str] = {None: checkpoint} if checkpoint else {}
    transcripts.update(runs or {})
    for agent, stored in transcripts.items():
        events.extend(transcript_events(AgentCheckpoint.model_validate_json(stored), agent=agent))
    if not transcripts and record.result is not None:
        # No transcript kept (a short task that saved no checkpoint): the result still lists the tool calls.
        events.extend(
            TimelineEvent(
                kind="tool_call",
                step=call.step,
                title=call.tool,
                tool=call.tool,
                outcome=call.outcome,
                latency_ms=call.latency_ms,
            )
            for call in record.result.tool_calls
        )
    events.extend(
        TimelineEvent(
            kind="subtask",
            title=cut(redact(str(subtask.get("text", ""))), MAX_TEXT_CHARS),
            subtask_id=TaskStore.subtask_key(record.task_id, int(subtask["index"])),
            status=str(subtask.get("status", "")),
            result=cut(redact(subtask["answer"]), MAX_TEXT_CHARS) if subtask.get("answer") else None,
        )
        for subtask in subtasks
    )
    if record.finished_at is not None:
        answer = record.result.answer if record.result is not None else None
        events.append(
            TimelineEvent(
                at=record.finished_at,
                kind="finished",
                title=record.error.message if record.error is not None else f"Finished: {record.status.value}",
                status=record.status.value,
                result=cut(redact(answer), MAX_TEXT_CHARS) if answer else None,
            )
        )
    return events


def subtasks_out(
    task_id: str, subtasks: Sequence[Mapping[str, Any]], runs_of: Callable[[int], list[str]] = lambda _: []
) -> list[SubtaskOut]:
    """The subtasks as the timeline lists them; ``runs_of(index)``: the runs of the attempts at subtask ``index``."""
    return [
        SubtaskOut(
            subtask_id=TaskStore.subtask_key(task_id, int(s["index"])),
            index=int(s["index"]),
            status=str(s.get("status", "")),
            answer=cut(redact(s["answer"]), MAX_TEXT_CHARS) if s.get("answer") else None,
            runs=runs_of(int(s["index"])),
        )
        for s in subtasks
    ]


def tool_use_ids(checkpoints: Sequence[str]) -> list[str]:
    """Every tool call id of these stored checkpoints, in order (how the approvals of a task are found: their ids
    derive from the task and the tool call)."""
    ids: list[str] = []
    for stored in checkpoints:
        checkpoint = AgentCheckpoint.model_validate_json(stored)
        for message in checkpoint.messages[checkpoint.history_length :]:
            ids.extend(block.id for block in message.content if isinstance(block, ToolUseBlock))
        if checkpoint.pending is not None:
            ids.append(checkpoint.pending.tool_use_id)
    return list(dict.fromkeys(ids))


__all__ = ["SubtaskOut", "subtasks_out", "task_events", "tool_use_ids"]
