"""Settings of the session handlers (``AGENT_SESSION_*``), validated at cold start."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SessionSettings(BaseSettings):
    """Set by the StatefulAgent construct; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="AGENT_SESSION_", extra="ignore", frozen=True)

    table: str = Field(min_length=3)
    ttl_seconds: int = Field(default=86_400, ge=60, le=365 * 86_400)
    window_turns: int = Field(default=20, ge=1, le=200)
    window_tokens: int = Field(default=8_000, ge=100)
    truncation: Literal["truncate", "summary"] = "truncate"
    history_detail: Literal["compact", "full"] = "compact"
    offload_bucket: str | None = None
    concurrency: Literal["reject", "enqueue"] = "reject"
    queue_url: str | None = None
    max_conflict_retries: int = Field(default=3, ge=0, le=10)

    @model_validator(mode="after")
    def _enqueue_needs_queue(self) -> SessionSettings:
        if self.concurrency == "enqueue" and not self.queue_url:
            raise ValueError("AGENT_SESSION_CONCURRENCY=enqueue needs AGENT_SESSION_QUEUE_URL (the FIFO queue)")
        return self


@lru_cache(maxsize=1)
def load_session_settings() -> SessionSettings:
    return SessionSettings()  # type: ignore[call-arg]
