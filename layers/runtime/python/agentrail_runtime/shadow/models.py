"""What a shadow message carries, and what each side's run is summarised as."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # types only: the shadow worker reads summaries and never loads the agent loop
    from agentrail_runtime.agent.loop import AgentResult
    from agentrail_runtime.agent.tools import DryRunCall

#: The key of the event the shadow worker invokes the candidate with (API Gateway never sends it).
SHADOW_EVENT_KEY = "agentrail_shadow"


def is_shadow_event(event: Any) -> bool:
    """Whether a handler's ``event`` is the shadow worker's (a direct invocation), not an API or queue event."""
    return isinstance(event, Mapping) and SHADOW_EVENT_KEY in event


class RunSummary(BaseModel):
    """One side of a comparison: the answer and what it cost."""

    answer: str | None
    status: str
    model: str
    agent_version: str
    #: Every input token of the run, cached or not (the prompt cache must not make one side look cheaper).
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    steps: int = 0
    #: The run's own time: its model calls' latencies plus its tool calls' (the same span on both sides).
    latency_ms: float = 0.0
    tools: list[str] = Field(default_factory=list)
    #: The calls of tools with side effects that the run answered with their dry-run result (the candidate's only).
    dry_run_calls: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def of(
        cls,
        result: AgentResult,
        *,
        agent_version: str,
        dry_run_calls: list[DryRunCall] = (),  # type: ignore[assignment]
    ) -> RunSummary:
        """``result`` summarised. Its latency is the run's model and tool time, read from the result: the live route
        and the candidate report the same span, whatever each does around the run (budgets, metering, storage)."""
        latency_ms = sum(result.step_latencies_ms) + sum(call.latency_ms for call in result.tool_calls)
        return cls(
            answer=result.answer,
            status=str(result.status),
            model=result.model,
            agent_version=agent_version,
            input_tokens=result.usage.all_input_tokens,
            output_tokens=result.usage.output_tokens,
            cost_usd=result.cost_usd,
            steps=result.steps,
            latency_ms=round(latency_ms, 3),
            tools=[call.tool for call in result.tool_calls],
            dry_run_calls=[{"tool": c.tool, "arguments": c.arguments, "result": c.result} for c in dry_run_calls],
        )


class ShadowRequest(BaseModel):
    """A live request, sampled for the shadow: its input and the live answer.

    ``request_id`` (API Gateway's) identifies it: the comparison table holds one item per request id, so a
    redelivered message writes nothing more. ``owner`` is who sent it (the caller as the API names it), so that
    erasing that principal deletes its comparisons. For a session turn, ``session_id``, ``owner`` (the session's)
    and ``turn`` (the live turn's number) let the candidate read the history that turn saw; it never writes the
    session.
    """

    request_id: str = Field(min_length=1, max_length=200)
    kind: Literal["invoke", "session_turn"] = "invoke"
    message: str
    model: str | None = None
    session_id: str | None = None
    owner: str | None = None
    turn: int | None = None
    live: RunSummary


__all__ = ["SHADOW_EVENT_KEY", "RunSummary", "ShadowRequest", "is_shadow_event"]
