"""An agent run in the API-neutral shapes that every API answers with and every task record stores."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agentrail_runtime.agent.loop import AgentResult, AgentStatus, ToolCallRecord
from agentrail_runtime.models.base import Usage

#: The longest message any agent API accepts (API Gateway's request models say the same).
MAX_MESSAGE_CHARS = 8000


class UsageOut(BaseModel):
    input_tokens: int = Field(description="Input tokens neither read from nor written to the prompt cache.")
    output_tokens: int
    cache_read_tokens: int = Field(default=0, description="Input tokens read from the prompt cache (at a discount).")
    cache_write_tokens: int = Field(default=0, description="Input tokens written to the prompt cache.")
    total_tokens: int = Field(description="Every input token, cached or not, and every output token.")

    @classmethod
    def of(cls, usage: Usage) -> UsageOut:
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            total_tokens=usage.total_tokens,
        )


class ToolCallOut(BaseModel):
    step: int
    tool: str
    outcome: str
    latency_ms: float

    @classmethod
    def of(cls, call: ToolCallRecord) -> ToolCallOut:
        return cls(step=call.step, tool=call.tool, outcome=call.outcome, latency_ms=call.latency_ms)


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
            tool_calls=[ToolCallOut.of(c) for c in result.tool_calls],
        )


__all__ = ["MAX_MESSAGE_CHARS", "AgentRunOut", "ToolCallOut", "UsageOut"]
