"""Settings of the multi-agent handlers (``AGENT_MULTI_*``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentrail_runtime.multiagent.models import SpecialistSpec, SpendLimit
from agentrail_runtime.multiagent.routing import AgentTeam
from agentrail_runtime.tasks.service import TaskService


class MultiAgentSettings(BaseSettings):
    """Set by the MultiAgentSystem and HierarchicalAgents constructs."""

    model_config = SettingsConfigDict(env_prefix="AGENT_MULTI_", extra="ignore", frozen=True)

    agent_name: str = "agent"
    specialists: tuple[SpecialistSpec, ...] = ()
    #: Specialists this agent may hand off to (router: all of ``specialists``).
    handoffs: tuple[str, ...] = ()
    fallback: str | None = None
    orchestrator_queue_url: str | None = None
    max_hops: int = Field(default=4, ge=1, le=20)
    max_task_tokens: int | None = Field(default=None, ge=1)
    max_task_usd: float | None = Field(default=None, gt=0)
    max_review_rounds: int = Field(default=1, ge=0, le=5)
    tolerated_failure_percentage: float = Field(default=50.0, ge=0, le=100)

    @model_validator(mode="after")
    def _fallback_is_a_specialist(self) -> MultiAgentSettings:
        names = {s.name for s in self.specialists}
        if self.fallback and self.fallback not in names:
            raise ValueError("AGENT_MULTI_FALLBACK must name one of AGENT_MULTI_SPECIALISTS")
        return self


@lru_cache(maxsize=1)
def load_multi_settings() -> MultiAgentSettings:
    return MultiAgentSettings()


def team_from_settings(settings: MultiAgentSettings, tasks: TaskService) -> AgentTeam:
    """The AgentTeam a handler of a multi-agent system belongs to."""
    return AgentTeam(
        tasks=tasks,
        specialists=settings.specialists,
        orchestrator_queue_url=settings.orchestrator_queue_url,
        spend_limit=SpendLimit(max_tokens=settings.max_task_tokens, max_usd=settings.max_task_usd),
        max_hops=settings.max_hops,
    )
