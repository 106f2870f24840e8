"""Response models shared by every agent API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agentrail.agent.loop import AgentResult, AgentStatus
from agentrail.models.base import Usage


class UsageOut(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, usage: Usage) -> UsageOut:
        return cls(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, total_tokens=usage.total_tokens)


class ToolCallOut(BaseModel):
    step: int
    tool: str
    outcome: str
    latency_ms: float


class AgentRunOut(BaseModel):
    """The outcome of one agent task: status, answer, tokens and cost."""

    status: AgentStatus = Field(description="completed, max_steps_exceeded, token_budget_exceeded or awaiting_approval")
    answer: str | None
    model: str
    steps: int
    usage: UsageOut
    cost_usd: float | None = Field(description="USD from the price table; null when the model has no price")
    tool_calls: list[ToolCallOut]

    @classmethod
    def from_result(cls, result: AgentResult) -> AgentRunOut:
        return cls(
            status=result.status,
            answer=result.answer,
            model=result.model,
            steps=result.steps,
            usage=UsageOut.of(result.usage),
            cost_usd=result.cost_usd,
            tool_calls=[ToolCallOut(step=c.step, tool=c.tool, outcome=c.outcome, latency_ms=c.latency_ms) for c in result.tool_calls],
        )
