"""Runtime settings, read from the environment once and validated with pydantic.

A misconfigured function fails at cold start with a message naming the
setting, instead of failing on its first request.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from agentrail_runtime.aws import ToolSecretSettings
from agentrail_runtime.contract import (
    BUDGET_COUNTER_RETENTION_DAYS,
    RESPONSE_CACHE_DEFAULT_TTL_SECONDS,
    RESPONSE_CACHE_MAX_TTL_SECONDS,
    RESPONSE_CACHE_MIN_TTL_SECONDS,
    BudgetLimit,
    HealthCheckKind,
    StepKind,
    budgets_from_env,
    step_models_problem,
)
from agentrail_runtime.metering.pricing import ModelPrice
from agentrail_runtime.models.base import ModelConfigError
from agentrail_runtime.models.registry import parse_model_spec
from agentrail_runtime.observability import LogSettings

#: The API in front of a function that serves HTTP: API Gateway REST API or HTTP API (``AGENT_API_KIND``).
ApiKind = Literal["rest", "http"]


class DependencyCheck(BaseModel):
    """An AWS dependency that ``GET /health`` proves reachable, with the cheapest read it allows."""

    kind: HealthCheckKind
    name: str


class RuntimeSettings(LogSettings, ToolSecretSettings):
    """Every ``AGENT_*`` variable the runtime reads. See the README's settings table.

    ``log_redaction`` (:class:`~agentrail_runtime.observability.LogSettings`) and ``tool_secrets``
    (:class:`~agentrail_runtime.aws.ToolSecretSettings`) are declared where they are read, without the
    rest: validated here at cold start with every other setting."""

    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore", frozen=True, protected_namespaces=())

    model: str = "local"
    allowed_models: Annotated[tuple[str, ...], NoDecode] = ()
    definition: str = "agentrail_runtime.demo:definition"
    system_prompt: str | None = None
    max_steps: int = Field(default=8, ge=1, le=100)
    token_budget: int = Field(default=20_000, ge=1)
    max_output_tokens: int = Field(default=1024, ge=1, le=64_000)
    max_tool_result_bytes: int = Field(default=16_384, ge=256, le=6_000_000)
    max_request_bytes: int = Field(default=16_384, ge=256, le=6_000_000)
    price_table: dict[str, ModelPrice] = Field(default_factory=dict)
    model_max_attempts: int = Field(default=4, ge=1, le=10)
    model_timeout_seconds: float = Field(default=60.0, gt=0, le=900)
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key_secret: str | None = None
    health_checks: tuple[DependencyCheck, ...] = ()
    #: Who an IAM caller that assumed a role is: the role (default), or the session, whose name the caller chooses.
    iam_identity: Literal["role", "session"] = "role"
    #: The API in front of the function: a REST API (payload 1.0 events) or an HTTP API (payload 2.0 events).
    api_kind: ApiKind = "rest"
    #: Daily budgets per tenant and per agent (``AGENT_BUDGETS``, the JSON that ``contract.budgets_to_env`` writes).
    budgets: Annotated[tuple[BudgetLimit, ...], NoDecode] = ()
    #: The DynamoDB table of the budgets' daily counters; required with ``budgets``.
    budget_table: str | None = None
    #: Days a budget counter outlives its day (TTL; ``BudgetOptions.counter_retention_days``), which erasure needs too.
    budget_retention_days: int = Field(default=BUDGET_COUNTER_RETENTION_DAYS, ge=1, le=366)
    #: A Bedrock guardrail (id or ARN) that ``bedrock:`` models apply through Converse's ``guardrailConfig``, and
    #: that ``BedrockGuardrailGuard`` applies by default; empty: none (local mode writes it empty).
    bedrock_guardrail_id: str = ""
    #: Its version (a number, or ``DRAFT``).
    bedrock_guardrail_version: str = "DRAFT"
    #: Store session history, task records and shadow comparisons redacted (``[REDACTED:<kind>]``); the run itself
    #: sees the text as written.
    store_redacted: bool = False
    #: ``bedrock:`` models send cache points where the model caches prompts (system prompt, tools, stable history),
    #: and the local model simulates a prompt cache; cache-read and cache-write tokens are metered and priced apart.
    prompt_caching: bool = True
    #: A model of their own for some kinds of step (``AGENT_STEP_MODELS``, JSON ``{"routing": "bedrock:..."}``): a
    #: cheaper one for routing, planning and review; every other step runs on ``model``.
    step_models: dict[StepKind, str] = Field(default_factory=dict)
    #: The DynamoDB table of the stateless agent's response cache (``ResponseCacheOptions``); unset: no cache. The
    #: agent must be cacheable (every tool ``cacheable=True``), or the function refuses to start.
    response_cache_table: str | None = None
    #: How long a cached answer is served (its TTL), in seconds.
    response_cache_ttl_seconds: int = Field(
        default=RESPONSE_CACHE_DEFAULT_TTL_SECONDS, ge=RESPONSE_CACHE_MIN_TTL_SECONDS, le=RESPONSE_CACHE_MAX_TTL_SECONDS
    )

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return budgets_from_env(value)
            except ValueError as error:
                raise ValueError(f"AGENT_BUDGETS: {error}") from None
        return value

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("step_models", mode="before")
    @classmethod
    def _step_models(cls, value: object) -> object:
        if isinstance(value, dict):
            problem = step_models_problem({str(k): str(v) for k, v in value.items()})
            if problem is not None:
                raise ValueError(f"AGENT_STEP_MODELS: {problem}")
        return value

    @model_validator(mode="after")
    def _models_are_known(self) -> RuntimeSettings:
        named = [("AGENT_MODEL", self.model), *(("AGENT_ALLOWED_MODELS", spec) for spec in self.allowed_models)]
        named += [(f"AGENT_STEP_MODELS[{kind}]", spec) for kind, spec in self.step_models.items()]
        for setting, spec in named:
            try:
                parsed = parse_model_spec(spec)
            except ModelConfigError as error:
                raise ValueError(f"{setting}: {error}") from None
            if parsed.provider == "openai" and not self.openai_api_key_secret:
                raise ValueError("openai models need AGENT_OPENAI_API_KEY_SECRET (a Secrets Manager name or ARN)")
        if self.budgets and not self.budget_table:
            raise ValueError("AGENT_BUDGETS needs AGENT_BUDGET_TABLE (the counters table)")
        return self

    @property
    def bedrock_guardrail(self) -> tuple[str, str] | None:
        """The guardrail's id and version, or None when no guardrail is configured."""
        identifier = self.bedrock_guardrail_id.strip()
        return (identifier, self.bedrock_guardrail_version.strip() or "DRAFT") if identifier else None

    @property
    def models(self) -> tuple[str, ...]:
        """Models a request may choose, the configured default first, in canonical form."""
        seen: dict[str, None] = {}
        for spec in (self.model, *self.allowed_models):
            seen[parse_model_spec(spec).canonical] = None
        return tuple(seen)


@lru_cache(maxsize=1)
def load_settings() -> RuntimeSettings:
    return RuntimeSettings()
