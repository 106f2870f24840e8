"""What an eval target reports of one run: the answer and the evidence the scorers read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from agentrail_runtime.agent.loop import AgentResult, AgentStatus


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
    #: ``None`` when the target does not report tool calls at all (a multi-agent task's result).
    tool_calls: list[ObservedToolCall] | None = Field(default_factory=list)
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

    @classmethod
    def of_task(cls, body: Mapping[str, Any], *, latency_ms: float = 0.0) -> Observation:
        """From a task the tasks API reports (``GET /tasks/{id}``): its result's answer, agent status and tool names.

        A task without an agent's run status in its result reads ``awaiting_approval`` while it waits for approval,
        ``completed`` when it succeeded, and its task status otherwise (``failed``, ``cancelled``, ``budget_exceeded``).
        """
        result = body.get("result") or {}
        task_status = str(body.get("status", ""))
        status = result.get("agent_status")
        if status not in RUN_STATUSES:  # a routed task's outcome ("answer") is not a run status: read the task's
            status = _TASK_STATUSES.get(task_status, task_status)
        calls = result.get("tool_calls")
        return cls(
            answer=result.get("answer"),
            status=status,
            steps=int(body.get("steps", 0)),
            cost_usd=body.get("cost_usd"),
            tool_calls=None if calls is None else [ObservedToolCall(name=c["tool"], outcome=c.get("outcome")) for c in calls],
            model=result.get("model"),
            latency_ms=latency_ms,
        )


RUN_STATUSES = frozenset(status.value for status in AgentStatus)
#: A task's status as the run status the ``status`` scorer compares with, when the task's result names none.
_TASK_STATUSES = {"waiting_approval": "awaiting_approval", "succeeded": "completed"}

__all__ = ["Observation", "ObservedToolCall"]
