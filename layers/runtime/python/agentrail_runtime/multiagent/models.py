"""Messages between agents, specialists as data, and the per-task spend limit."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentrail_runtime.tasks.models import TaskRecord

AGENT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class SpecialistSpec(BaseModel):
    """A specialist as the router knows it: a name, what it is for, and where its queue is."""

    model_config = ConfigDict(frozen=True)
    name: str
    description: str = Field(min_length=10, max_length=500)
    queue_url: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not AGENT_NAME.match(value):
            raise ValueError("agent names are 1-32 characters of a-z, 0-9, _ and -, starting with a letter")
        return value


class SpentSoFar(BaseModel):
    """What a task had spent when it was handed on: its tokens, its USD and whether an agent hit its spend limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tokens: int = Field(default=0, ge=0)
    usd: float = Field(default=0.0, ge=0)
    limit_reached: bool = False

    @classmethod
    def of(cls, record: TaskRecord) -> SpentSoFar:
        return cls(tokens=record.usage.total_tokens, usd=record.cost_usd or 0.0, limit_reached=record.spend_limit_reached)


class RoutedMessage(BaseModel):
    """A request travelling between agents. ``hop`` counts hand-offs; at ``max_hops`` routing stops.

    ``owner`` and ``spent`` are the task as its sender's spend write returned it: the receiving specialist checks
    the spend limit and the owner's budgets against them without reading the task (only agents of the chain add
    spend to it, one at a time). A message without them, from an older router, makes the specialist read the task.
    """

    model_config = ConfigDict(extra="forbid")
    task_id: str
    correlation_id: str | None = None
    message: str
    hop: int = Field(ge=0)
    sender: str
    trail: list[str] = Field(default_factory=list)
    owner: str | None = None
    spent: SpentSoFar | None = None


class AgentOutcome(BaseModel):
    """What a specialist sends the orchestrator: an answer, or why there is none."""

    model_config = ConfigDict(extra="forbid")
    task_id: str
    correlation_id: str | None = None
    agent: str
    kind: Literal["answer", "routing_loop", "budget_exceeded", "failed"]
    answer: str | None = None
    detail: str | None = None
    hop: int = 0
    trail: list[str] = Field(default_factory=list)


class SpendLimit(BaseModel):
    """A cap on tokens and/or USD across every agent of one task."""

    max_tokens: int | None = Field(default=None, ge=1)
    max_usd: float | None = Field(default=None, gt=0)

    def exceeded(self, total_tokens: int, total_usd: float) -> bool:
        return (self.max_tokens is not None and total_tokens >= self.max_tokens) or (
            self.max_usd is not None and total_usd >= self.max_usd
        )

    def remaining_tokens(self, total_tokens: int) -> int | None:
        return None if self.max_tokens is None else max(0, self.max_tokens - total_tokens)

    def check(self, record: TaskRecord) -> tuple[bool, int | None]:
        """Whether ``record``'s task has reached the limit, and how many tokens it may still spend."""
        return self.check_spent(SpentSoFar.of(record))

    def check_spent(self, spent: SpentSoFar) -> tuple[bool, int | None]:
        """Whether a task that has spent ``spent`` has reached the limit, and how many tokens it may still spend."""
        reached = spent.limit_reached or self.exceeded(spent.tokens, spent.usd)
        return reached, self.remaining_tokens(spent.tokens)
