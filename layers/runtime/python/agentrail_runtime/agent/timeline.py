"""An agent run as a timeline: each model step and tool call of a transcript, with the tool calls' arguments and
results redacted as the runtime redacts log lines. The operator console shows tasks (``tasks.timeline``) and session
turns (``api.sessions``) with these events."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentrail_runtime.agent.loop import AgentCheckpoint, ToolCallRecord
from agentrail_runtime.models.base import Message, TextBlock, ToolResultBlock, ToolUseBlock
from agentrail_runtime.redaction import redact, redact_data

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


def transcript_events(checkpoint: AgentCheckpoint, *, agent: str | None) -> Iterator[TimelineEvent]:
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
        title = cut(redact(text), MAX_TEXT_CHARS) if text else f"Model step {step}: {', '.join(u.name for u in uses)}"
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
                arguments=redacted_value(use.input),
                result=redacted_value(result.content) if result is not None else None,
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


def redacted_value(value: Any) -> Any:
    """``value`` redacted, or its JSON cut to :data:`MAX_VALUE_CHARS` when longer."""
    redacted = redact_data(value)
    text = json.dumps(redacted, default=str)
    return redacted if len(text) <= MAX_VALUE_CHARS else cut(text, MAX_VALUE_CHARS)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["MAX_TEXT_CHARS", "MAX_VALUE_CHARS", "EventKind", "TimelineEvent", "cut", "redacted_value", "transcript_events"]
