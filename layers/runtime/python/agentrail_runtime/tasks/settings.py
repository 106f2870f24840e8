"""Settings of the async task handlers (``AGENT_TASK_*``), validated at cold start."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentrail_runtime.contract import BATCH_ENV_PREFIX, BelowMinimum, TaskLane
from agentrail_runtime.tasks.webhook import CallbackPolicy


class WebhookSettings(BaseSettings):
    """What the webhook notifier reads: it needs no table, queue or bus."""

    model_config = SettingsConfigDict(env_prefix="AGENT_TASK_", extra="ignore", frozen=True)

    webhook_secret: str | None = None
    allow_insecure_callbacks: bool = False
    #: A JSON list: callback URLs must name one of these domains or a subdomain. Empty: any public host.
    callback_domains: tuple[str, ...] = ()

    def callback_policy(self) -> CallbackPolicy:
        return CallbackPolicy(allow_insecure=self.allow_insecure_callbacks, allowed_domains=self.callback_domains)


class TaskSettings(WebhookSettings):
    """Set by the AsyncAgent construct; see the README's settings table."""

    table: str = Field(min_length=3)
    bucket: str | None = None
    queue_url: str | None = None
    event_bus: str | None = None
    #: Task type to ``queue`` or to a Step Functions state machine ARN.
    routes: dict[str, str] = Field(default_factory=lambda: {"default": "queue"})
    idempotency_table: str | None = None
    retention_days: int = Field(default=30, ge=1, le=3650)
    max_receive_count: int = Field(default=5, ge=1, le=1000)
    slice_steps: int = Field(default=2, ge=1, le=100)


class BatchLaneSettings(BaseSettings):
    """The batch lane (``AGENT_BATCH_*``), set by ``BatchLaneOptions``: the API reads whether there is one and the
    default lane; the lane's function reads the rest."""

    model_config = SettingsConfigDict(env_prefix=BATCH_ENV_PREFIX, extra="ignore", frozen=True)

    enabled: bool = False
    #: The lane of a task that names none.
    default_lane: TaskLane = "on_demand"
    #: The bucket of the jobs' input and output files, and the role Bedrock assumes to use it.
    bucket: str | None = None
    role_arn: str | None = None
    #: Tasks per job, and the number of waiting tasks that flushes one.
    flush_size: int = Field(default=100, ge=1, le=50_000)
    #: The longest a task waits before its job is flushed, in seconds.
    max_age_seconds: int = Field(default=3600, ge=60)
    #: What becomes of tasks still fewer than the model's minimum records per job at ``max_age``.
    below_minimum: BelowMinimum = "on_demand"


@lru_cache(maxsize=1)
def load_batch_settings() -> BatchLaneSettings:
    return BatchLaneSettings()


@lru_cache(maxsize=1)
def load_task_settings() -> TaskSettings:
    return TaskSettings()  # type: ignore[call-arg]
