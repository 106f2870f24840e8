"""A task as a timeline for the operator console: submitted, started, each model step and tool call (arguments and
results redacted as the runtime redacts log lines), the agent runs of a multi-agent task, subtasks, and the outcome.

Built from what the task table keeps: the task record, the agent checkpoint (the transcript a long or approval task
saves) and the checkpoint of every agent run. Approval events come from the approvals domain, which the API merges in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentrail_runtime.agent.loop import AgentCheckpoint, ToolCallRecord
from agentrail_runtime.models.base import Message, TextBlock, ToolResultBlock, ToolUseBlock
from agentrail_runtime.redaction import redact, redact_data
from agentrail_runtime.tasks.models import TaskRecord
from agentrail_runtime.tasks.store import TaskStore

EventKind = Literal["submitted", "started", "model", "tool_call", "approval_requested", "approval_decided", "subtask", "finished"]
#: A tool's arguments or result longer than this (as JSON) is cut to this many characters, ending in "…".
MAX_VALUE_CHARS = 4_000
#: A model step's text longer than this is cut likewise.
MAX_TEXT_CHARS = 1_000


class TimelineEvent(BaseModel):
    """One entry of a task's timeline. ``at`` is epoch seconds when the store knows it (the task's own changes and
    approvals); model steps and tool calls are in order, with the tool call's latency."""

    at: int | None = None
    kind: EventKind
    agent: str | None = Field(default=None, description="The agent run of a multi-agent task")
    step: int | None = None
    title: str
    tool: str | None = None
    call_id: str | None = Field(default=None, description="The tool call's id")
    arguments: Any = None
    result: Any = None
    outcome: str | None = None
    latency_ms: float | None = None
    approval_id: str | None = None
    decision: Literal["approved", "rejected"] | None = None
    actor: str | None = None
    comment: str | None = None
    subtask_id: str | None = None
    status: str | None = None


class SubtaskOut(BaseModel):
    task_id: str | None = Field(default=None, description="The subtask's own task, when it has one")
    index: int
    status: str
    answer: str | None = None


def task_events(
    record: TaskRecord,
    *,
    checkpoint: str | None = None,
    runs: Mapping[str, str] | None = None,
    subtasks: Sequence[Mapping[str, Any]] = (),
) -> list[TimelineEvent]:
    """The timeline of ``record`` without its approvals: ``checkpoint`` is the task's stored agent checkpoint,
    ``runs`` the checkpoints of a multi-agent task's runs by run name, ``subtasks`` what the store lists."""
    events = [TimelineEvent(at=record.created_at, kind="submitted", title=_cut(redact(record.message), MAX_TEXT_CHARS))]
    if record.started_at is not None:
        events.append(TimelineEvent(at=record.started_at, kind="started", title="Started", status="running"))
    transcripts: dict[str | None, str] = {None: checkpoint} if checkpoint else {}
    transcripts.update(runs or {})
    for agent, stored in transcripts.items():
        events.extend(_transcript_events(AgentCheckpoint.model_validate_json(stored), agent=agent))
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
            title=_cut(redact(str(subtask.get("text", ""))), MAX_TEXT_CHARS),
            subtask_id=TaskStore.subtask_key(record.task_id, int(subtask["index"])),
            status=str(subtask.get("status", "")),
            result=_cut(redact(subtask["answer"]), MAX_TEXT_CHARS) if subtask.get("answer") else None,
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
                result=_cut(redact(answer), MAX_TEXT_CHARS) if answer else None,
            )
        )
    return events


def subtasks_out(task_id: str, subtasks: Sequence[Mapping[str, Any]]) -> list[SubtaskOut]:
    return [
        SubtaskOut(
            task_id=TaskStore.subtask_key(task_id, int(s["index"])),
            index=int(s["index"]),
            status=str(s.get("status", "")),
            answer=_cut(redact(s["answer"]), MAX_TEXT_CHARS) if s.get("answer") else None,
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


def _transcript_events(checkpoint: AgentCheckpoint, *, agent: str | None) -> Iterator[TimelineEvent]:
    calls: dict[str, ToolCallRecord] = {call.tool_use_id: call for call in checkpoint.tool_calls}
    messages = checkpoint.messages[checkpoint.history_length :]
    # A checkpoint saved within a turn holds that turn's results so far beside the messages.
    results = _results(messages) | {r.tool_use_id: r for r in (checkpoint.turn.results if checkpoint.turn else [])}
    step = 0
    for message in messages:
        if message.role != "assistant":
            continue
        step += 1
        text = " ".join(block.text for block in message.content if isinstance(block, TextBlock)).strip()
        uses = [block for block in message.content if isinstance(block, ToolUseBlock)]
        title = _cut(redact(text), MAX_TEXT_CHARS) if text else f"Model step {step}: {', '.join(u.name for u in uses)}"
        yield TimelineEvent(kind="model", agent=agent, step=step, title=title)
        for use in uses:
            call = calls.get(use.id)
            result = results.get(use.id)
            pending = checkpoint.pending is not None and checkpoint.pending.tool_use_id == use.id
            yield TimelineEvent(
                kind="tool_call",
                agent=agent,
                step=step,
                title=use.name,
                tool=use.name,
                call_id=use.id,
                arguments=_value(use.input),
                result=_value(result.content) if result is not None else None,
                outcome="pending_approval" if pending else (call.outcome if call is not None else None),
                latency_ms=call.latency_ms if call is not None else None,
            )


def _results(messages: Sequence[Message]) -> dict[str, ToolResultBlock]:
    return {
        block.tool_use_id: block
        for message in messages
        if message.role == "user"
        for block in message.content
        if isinstance(block, ToolResultBlock)
    }


def _value(value: Any) -> Any:
    """``value`` redacted, or its JSON cut to :data:`MAX_VALUE_CHARS` when longer."""
    redacted = redact_data(value)
    text = json.dumps(redacted, default=str)
    return redacted if len(text) <= MAX_VALUE_CHARS else _cut(text, MAX_VALUE_CHARS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["MAX_TEXT_CHARS", "MAX_VALUE_CHARS", "SubtaskOut", "TimelineEvent", "subtasks_out", "task_events", "tool_use_ids"]
