"""Settings of the streaming functions (``AGENT_STREAM_*``), validated at cold start."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentrail_runtime.contract import STREAM_ENV_PREFIX

#: API Gateway closes a WebSocket connection after 2 hours; a connection's item outlives that by this margin.
CONNECTION_MAX_SECONDS = 2 * 3600
CONNECTION_TTL_MARGIN_SECONDS = 600


class StreamSettings(BaseSettings):
    """The streaming tables, the ``@connections`` callback URL and the TTLs (``AGENT_STREAM_<FIELD>``, the names in
    ``agentrail_runtime.contract``); see the README's settings table. Each function reads the tables it uses: a
    table left unset is one the function does not touch."""

    model_config = SettingsConfigDict(env_prefix=STREAM_ENV_PREFIX, extra="ignore", frozen=True)

    #: The connect-ticket table (``AGENT_STREAM_TICKET_TABLE``).
    ticket_table: str | None = Field(default=None, min_length=3)
    #: The connections table (``AGENT_STREAM_CONNECTION_TABLE``).
    connection_table: str | None = Field(default=None, min_length=3)
    #: The event log's table (``AGENT_STREAM_EVENT_TABLE``).
    event_table: str | None = Field(default=None, min_length=3)
    #: The WebSocket stage's callback URL, ``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}``.
    connections_url: str | None = Field(default=None, pattern=r"^https?://")
    #: The queue a WebSocket message's turn waits on under the ``reject`` policy (``AGENT_STREAM_QUEUE_URL``).
    queue_url: str | None = Field(default=None, pattern=r"^https?://")
    #: How long a WebSocket message holds its session's turn slot before its worker starts (the worker's timeout
    #: and a margin): a slot whose worker never ran is freed after it.
    turn_lease_seconds: int = Field(default=960, ge=60, le=7200)
    #: How long a connect ticket may be redeemed after it is issued.
    ticket_ttl_seconds: int = Field(default=60, ge=5, le=900)
    #: How long a connection's item is kept: API Gateway's 2-hour limit and a margin.
    connection_ttl_seconds: int = Field(default=CONNECTION_MAX_SECONDS + CONNECTION_TTL_MARGIN_SECONDS, ge=CONNECTION_MAX_SECONDS)
    #: How long a batch of events is kept for a client that reconnects with ``last_event_id``.
    event_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 86_400)
    #: Connect and read timeout of one post to a connection (no retry: a slow client catches up from the event log).
    post_timeout_seconds: float = Field(default=2.0, gt=0, le=10)


@lru_cache(maxsize=1)
def load_stream_settings() -> StreamSettings:
    """The ``AGENT_STREAM_*`` settings, read once per execution environment (tests clear the cache)."""
    return StreamSettings()


def required(value: str | None, variable: str) -> str:
    """``value``, or a ``ValueError`` naming the environment variable a function needs and lacks."""
    if not value:
        raise ValueError(f"{variable} is not set: the construct sets it on the functions that use this table or URL")
    return value


__all__ = [
    "CONNECTION_MAX_SECONDS",
    "CONNECTION_TTL_MARGIN_SECONDS",
    "StreamSettings",
    "load_stream_settings",
    "required",
]
