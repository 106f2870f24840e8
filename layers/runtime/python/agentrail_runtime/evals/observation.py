"""What an eval target reports of one run: the answer and the evidence the scorers read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from agentrail_runtime.agent.loop import AgentResult


class ObservedToolCall(BaseModel):
    """A tool call the agent made; ``arguments`` is ``None`` when the target does not report them (an HTTP API)."""

    name: str
    arguments: dict[str, Any] | None = None
    outcome: str | None = None


class Observation(BaseModel):
    """One run of one case, as a target saw it."""

    answer: str | None
    status: str
    steps: int
    cost_usd: float | None = None
    tool_calls: list[ObservedToolCall] = Field(default_factory=list)
    model: str | None = None
    latency_ms: float = 0.0

    @classmethod
    def of_result(cls, result: AgentResult, *, latency_ms: float = 0.0) -> Observation:
        """From an in-process run: every tool call with the arguments the model gave it."""
        outcomes = {record.tool_use_id: record.outcome for record in result.tool_calls}
        calls = [
            ObservedToolCall(name=use.name, arguments=dict(use.input), outcome=outcomes.get(use.id))
            for message in result.new_messages
            for use in message.tool_uses
        ]
        return cls(
            answer=result.answer,
            status=str(result.status),
            steps=result.steps,
            cost_usd=result.cost_usd,
            tool_calls=calls,
            model=result.model,
            latency_ms=latency_ms,
        )

    @classmethod
    def of_api(cls, body: Mapping[str, Any], *, latency_ms: float = 0.0) -> Observation:
        """From an agent API's answer (``AgentRunOut``: ``POST /invoke``, a finished task): tool names, no arguments."""
        return cls(
            answer=body.get("answer"),
            status=str(body.get("status", "")),
            steps=int(body.get("steps", 0)),
            cost_usd=body.get("cost_usd"),
            tool_calls=[ObservedToolCall(name=c["tool"], outcome=c.get("outcome")) for c in body.get("tool_calls", [])],
            model=body.get("model"),
            latency_ms=latency_ms,
        )


__all__ = ["Observation", "ObservedToolCall"]
