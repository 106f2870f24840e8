"""Reads the CDK context of ``app.py`` (``cdk deploy -c patterns=stateless -c model=...``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from aws_cdk import App, Duration, Environment, Stage
from constructs import Construct

from agentrail_constructs.api import API_KINDS, AgentApiOptions, ApiAuth
from agentrail_constructs.approvals import ApprovalOptions
from agentrail_constructs.batch_lane import BatchLaneOptions
from agentrail_constructs.budgets import Budget, BudgetOptions
from agentrail_constructs.contract import contract
from agentrail_constructs.deployment import STRATEGIES, strategy_named
from agentrail_constructs.function import AgentFunctionOptions, LogLevel
from agentrail_constructs.guardrails import GuardrailOptions
from agentrail_constructs.multiagent import MultiAgentOptions
from agentrail_constructs.pipeline import (
    PROMOTIONS,
    PipelineOptions,
    plain_context,
    validate_connection_arn,
    validate_repository,
)
from agentrail_constructs.security import SecurityBaselineOptions
from agentrail_constructs.sessions import SessionOptions
from agentrail_constructs.shadow import ShadowOptions
from agentrail_constructs.stacks import PATTERN_STACKS
from agentrail_constructs.stacks.pattern import CONSOLE_PATTERNS, SECURITY_PROFILES, PatternStack
from agentrail_constructs.streaming import StreamingOptions
from agentrail_constructs.tasks import AsyncOptions

EGRESS_MODES = ("endpoints", "nat")
#: ``-c pipeline=off``: the app's stacks, no pipeline, even when cdk.json configures one.
PIPELINE_OFF = "off"
#: The context keys of the pipeline besides ``pipeline`` (the repository, which turns the pipeline on).
PIPELINE_KEYS = ("pipeline_connection_arn", "pipeline_branch", "pipeline_promotion")
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)


@dataclass(frozen=True)
class PipelineSettings:
    """What ``-c pipeline=owner/name -c pipeline_connection_arn=...`` asks for: the app becomes one pipeline stack
    that deploys the selected patterns to a staging stage, then production."""

    repository: str
    connection_arn: str
    options: PipelineOptions


@dataclass(frozen=True)
class AppConfig:
    """Context keys: ``patterns`` (comma-separated), ``stack_prefix``, ``model``, ``api`` (rest or http: a REST API or
    an HTTP API in front of every pattern), ``auth`` (iam or api_key, a REST API's only),
    ``api_clients`` (comma-separated: one API key per client, with ``auth=api_key``), ``single_tenant`` (true: one
    shared API key instead), ``session_concurrency`` (reject or enqueue), ``approvers`` (comma-separated principal patterns of the
    ``approvers`` group, e.g. ``iam:arn:aws:iam::111122223333:role/Approver*``), ``approval_timeout`` (seconds),
    ``approval_webhook_groups`` (comma-separated groups whose decisions may also arrive by signed webhook: serves
    ``POST /approvals/{id}/webhook``), ``security`` (standard or hardened), ``egress`` (endpoints or nat, hardened
    only), ``webhooks`` (true or false), ``budget_tenant_daily_tokens``, ``budget_tenant_daily_usd``,
    ``budget_agent_daily_tokens`` and ``budget_agent_daily_usd`` (daily budgets per tenant and per agent), ``canary``
    (canary, linear, all-at-once or off: how new versions reach the ``live`` aliases), ``pipeline`` (``owner/name`` of
    the repository: the app becomes a delivery pipeline), ``pipeline_connection_arn`` (its CodeConnections
    connection), ``pipeline_branch`` (default main), ``pipeline_promotion`` (manual or automatic), and
    ``shadow_percent`` (above 0, at most 100: run each new version of the stateless agent and the sessions API in
    shadow on that share of live requests), and ``bedrock_guardrail`` (true: each agent function gets a Bedrock
    guardrail with the defaults of ``GuardrailOptions``), ``log_level`` (DEBUG, INFO, WARN or ERROR: every agent
    function's application log level) and ``store_redacted`` (true: session history, task records and shadow comparisons are stored
    with personal and secret data redacted), ``prompt_caching`` (false: no cache points are sent to Bedrock),
    ``step_models`` (``kind=model`` pairs, comma-separated: a model of their own for routing, planning and review), ``asgi_app`` and ``asgi_code`` (the ``asgi`` pattern's app, as
    ``module:attribute``, and its folder; default: the FastAPI example agent in ``examples/fastapi_agent``), and
    ``streaming`` (true: the stateful pattern streams its turns over a WebSocket API) and ``streaming_auth`` (ticket or
    iam: how its ``$connect`` is authorized), and ``console`` (true: the async, multiagent and hierarchical stacks
    serve the operator console, their API authenticated by an operators' Cognito user pool), and ``batch_lane``
    (``true``, or ``key=value`` pairs, comma-separated: ``flush_size``, ``max_age_minutes``, ``check_every_minutes``,
    ``below_minimum``, ``default_lane``: the async pattern's batch lane, see :func:`batch_lane_options`)."""

    patterns: tuple[str, ...]
    stack_prefix: str
    model: str
    auth: str
    session_concurrency: str = "reject"
    approvers: tuple[str, ...] = ()
    approval_timeout_seconds: int | None = None
    approval_webhook_groups: tuple[str, ...] = ()
    api_clients: tuple[str, ...] = ()
    single_tenant: bool = False
    security: str = "standard"
    egress: str | None = None
    webhooks: bool = True
    api: str = "rest"
    budgets: tuple[Budget, ...] = ()
    canary: str = "canary"
    pipeline: PipelineSettings | None = None
    shadow_percent: float | None = None
    bedrock_guardrail: bool = False
    log_level: LogLevel = "INFO"
    store_redacted: bool = False
    prompt_caching: bool = True
    step_models: tuple[tuple[str, str], ...] = ()
    asgi_app: str | None = None
    asgi_code: str | None = None
    streaming: bool = False
    streaming_auth: str = "ticket"
    console: bool = False
    batch_lane: BatchLaneOptions | None = None

    @classmethod
    def from_context(cls, app: App, known_patterns: tuple[str, ...]) -> AppConfig:
        raw = app.node.try_get_context("patterns") or "stateless"
        patterns = tuple(p.strip() for p in str(raw).split(",") if p.strip())
        unknown = [p for p in patterns if p not in known_patterns]
        if unknown:
            raise ValueError(f"unknown pattern(s) {', '.join(unknown)}; choose from {', '.join(known_patterns)}")
        auth = str(app.node.try_get_context("auth") or "iam")
        if auth not in ("iam", "api_key"):
            raise ValueError(
                "context 'auth' must be 'iam' or 'api_key' (Cognito needs a user pool: compose StatelessAgent yourself)"
            )
        api_clients = tuple(c.strip() for c in str(app.node.try_get_context("api_clients") or "").split(",") if c.strip())
        single_tenant = str(app.node.try_get_context("single_tenant") or "false").lower()
        if single_tenant not in ("true", "false"):
            raise ValueError("context 'single_tenant' must be 'true' or 'false'")
        if auth == "api_key" and not api_clients and single_tenant != "true":
            raise ValueError(
                "context auth=api_key gives every holder of a key the same identity, so they can read each other's "
                "sessions and tasks: add -c api_clients=acme,globex (one API key and usage plan per client), or "
                "-c single_tenant=true if every caller is one tenant"
            )
        api = str(app.node.try_get_context("api") or "rest")
        _one_of("api", api, API_KINDS, meaning=" (a REST API or an HTTP API)")
        if api == "http" and auth == "api_key":
            raise ValueError(
                "context auth=api_key needs a REST API (API keys and usage plans are a REST API feature): "
                "drop -c api=http, or use -c auth=iam with the HTTP API"
            )
        security = str(app.node.try_get_context("security") or "standard")
        _one_of("security", security, SECURITY_PROFILES)
        egress = app.node.try_get_context("egress")
        if egress is not None:
            egress = str(egress)
            _one_of("egress", egress, EGRESS_MODES)
            if security != "hardened":
                raise ValueError("context 'egress' configures the hardened profile's network: add -c security=hardened")
        pipeline = _pipeline(app)
        console = _console(app, patterns=patterns, auth=auth, api=api, pipeline=pipeline)
        return cls(
            patterns=patterns,
            stack_prefix=str(app.node.try_get_context("stack_prefix") or "Agentrail"),
            model=str(app.node.try_get_context("model") or "local"),
            auth=auth,
            session_concurrency=str(app.node.try_get_context("session_concurrency") or "reject"),
            approvers=tuple(p.strip() for p in str(app.node.try_get_context("approvers") or "").split(",") if p.strip()),
            approval_timeout_seconds=_positive_int(app.node.try_get_context("approval_timeout"), "approval_timeout"),
            approval_webhook_groups=_names(app.node.try_get_context("approval_webhook_groups")),
            api_clients=api_clients,
            single_tenant=single_tenant == "true",
            security=security,
            egress=egress,
            webhooks=_boolean(app.node.try_get_context("webhooks"), "webhooks", default=True),
            canary=_canary(app.node.try_get_context("canary")),
            shadow_percent=_shadow_percent(app.node.try_get_context("shadow_percent")),
            bedrock_guardrail=_boolean(app.node.try_get_context("bedrock_guardrail"), "bedrock_guardrail", default=False),
            log_level=_log_level(app.node.try_get_context("log_level")),
            store_redacted=_boolean(app.node.try_get_context("store_redacted"), "store_redacted", default=False),
            prompt_caching=_boolean(app.node.try_get_context("prompt_caching"), "prompt_caching", default=True),
            step_models=_step_models(app.node.try_get_context("step_models")),
            api=api,
            asgi_app=str(app.node.try_get_context("asgi_app") or "") or None,
            asgi_code=str(app.node.try_get_context("asgi_code") or "") or None,
            streaming=_boolean(app.node.try_get_context("streaming"), "streaming", default=False),
            streaming_auth=_streaming_auth(app),
            budgets=_budgets(app),
            pipeline=pipeline,
            console=console,
            batch_lane=_batch_lane(app, patterns),
        )

    def stack_name(self, pattern: str) -> str:
        return f"{self.stack_prefix}-{pattern.capitalize()}"

    @property
    def pipeline_stack_name(self) -> str:
        return f"{self.stack_prefix}-Pipeline"

    def add_stacks(self, scope: Construct) -> dict[str, PatternStack]:
        """One stack per selected pattern in ``scope`` (the app, or a pipeline's stage): pattern -> stack."""
        return {
            pattern: PATTERN_STACKS[pattern](scope, self.stack_name(pattern), **self.stack_options(pattern))
            for pattern in self.patterns
        }

    def stage(self, scope: Construct, stage_id: str) -> Stage:
        """A ``Stage`` of the selected patterns' stacks (what a pipeline deploys as staging and production)."""
        stage = Stage(scope, stage_id)
        self.add_stacks(stage)
        return stage

    def stack_options(self, pattern: str) -> dict[str, Any]:
        """Keyword arguments of the pattern's stack."""
        options: dict[str, Any] = {
            "function_options": self.function_options(),
            "api_options": self.api_options(),
            "env": self.env,
        }
        if self.security != "standard":
            options["security"] = self.security
            if self.egress is not None:
                options["security_options"] = SecurityBaselineOptions(egress=self.egress)  # type: ignore[arg-type]
        if self.canary != "canary":
            options["deployment_options"] = strategy_named(self.canary)
        if self.shadow_percent is not None:
            options["shadow_options"] = ShadowOptions(percent=self.shadow_percent)
        if self.budgets:
            options["budget_options"] = BudgetOptions(budgets=list(self.budgets))
        if pattern == "async" and (not self.webhooks or self.batch_lane is not None):
            options["options"] = AsyncOptions(webhooks=self.webhooks, batch_lane=self.batch_lane)
        if not self.webhooks:
            if pattern == "multiagent":
                options["options"] = MultiAgentOptions(webhooks=False)
            elif pattern == "hierarchical":
                options["task_options"] = AsyncOptions(webhooks=False)
        if pattern == "stateful":
            if self.session_concurrency not in ("reject", "enqueue"):
                raise ValueError("context 'session_concurrency' must be 'reject' or 'enqueue'")
            options["session_options"] = SessionOptions(concurrency=self.session_concurrency)  # type: ignore[arg-type]
            if self.streaming:
                options["streaming_options"] = StreamingOptions(auth=self.streaming_auth)  # type: ignore[arg-type]
        if self.console and pattern in CONSOLE_PATTERNS:
            options["console"] = True
        if pattern == "asgi":
            if self.asgi_app is not None:
                options["app"] = self.asgi_app
            if self.asgi_code is not None:
                options["code"] = self.asgi_code
        if pattern == "async":
            approvals: dict[str, Any] = {"groups": {"approvers": list(self.approvers)}}
            if self.approval_timeout_seconds:
                approvals["decision_timeout"] = Duration.seconds(self.approval_timeout_seconds)
            if self.approval_webhook_groups:
                approvals["webhook_groups"] = list(self.approval_webhook_groups)
            options["approval_options"] = ApprovalOptions(**approvals)
        return options

    def function_options(self) -> AgentFunctionOptions:
        return AgentFunctionOptions(
            model=self.model,
            guardrail_options=GuardrailOptions() if self.bedrock_guardrail else None,
            log_level=self.log_level,
            store_redacted=self.store_redacted,
            prompt_caching=self.prompt_caching,
            step_models=dict(self.step_models),
        )

    def api_options(self) -> AgentApiOptions:
        kind: Literal["rest", "http"] = "http" if self.api == "http" else "rest"
        if self.auth == "api_key":
            return AgentApiOptions(kind=kind, auth=ApiAuth.api_key(clients=self.api_clients, single_tenant=not self.api_clients))
        return AgentApiOptions(kind=kind, auth=ApiAuth.iam())

    @property
    def env(self) -> Environment:
        """The CLI's account and Region when it knows them; otherwise an environment-agnostic stack."""
        return Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))


def _streaming_auth(app: App) -> str:
    auth = str(app.node.try_get_context("streaming_auth") or "ticket")
    _one_of("streaming_auth", auth, ("ticket", "iam"), meaning=" (connect tickets, or SigV4-signed $connect)")
    if app.node.try_get_context("streaming_auth") and not _boolean(
        app.node.try_get_context("streaming"), "streaming", default=False
    ):
        raise ValueError("context 'streaming_auth' configures the streaming API: add -c streaming=true")
    return auth


def _console(app: App, *, patterns: tuple[str, ...], auth: str, api: str, pipeline: PipelineSettings | None) -> bool:
    """``-c console=true``: the operator console of the selected task patterns, refused where it cannot work."""
    console = _boolean(app.node.try_get_context("console"), "console", default=False)
    if not console:
        return False
    if auth == "api_key":
        raise ValueError(
            "context console=true authenticates the API with the operators' Cognito user pool, not API keys: drop -c auth=api_key"
        )
    if api == "http":
        raise ValueError(
            "context console=true needs a REST API (an HTTP API's JWT authorizer accepts only the app clients it was "
            "created with, and the console's is created after it): drop -c api=http"
        )
    if not any(pattern in CONSOLE_PATTERNS for pattern in patterns):
        raise ValueError(
            f"context console=true serves the operator console of the {', '.join(CONSOLE_PATTERNS)} patterns, and "
            f"-c patterns={','.join(patterns)} has none of them: add one to patterns, or drop -c console=true"
        )
    if pipeline is not None:
        raise ValueError(
            "context console=true cannot be deployed by the pipeline: its staging smoke tests sign their calls with "
            "SigV4, which the console's Cognito-authenticated API refuses; deploy the console without -c pipeline"
        )
    return True


#: ``-c batch_lane=...`` keys: key -> (BatchLaneOptions field, how the value is read).
_BATCH_LANE_KEYS: dict[str, tuple[str, Callable[[str], object]]] = {
    "flush_size": ("flush_size", int),
    "max_age_minutes": ("max_age", lambda value: Duration.minutes(int(value))),
    "check_every_minutes": ("check_every", lambda value: Duration.minutes(int(value))),
    "below_minimum": ("below_minimum", str),
    "default_lane": ("default_lane", str),
}


def _batch_lane(app: App, patterns: tuple[str, ...]) -> BatchLaneOptions | None:
    """``-c batch_lane=true`` (every default) or ``-c batch_lane=flush_size=20,max_age_minutes=60,...``: the async
    pattern's batch lane, checked as ``BatchLaneOptions`` checks itself; ``false`` or nothing: none."""
    value = app.node.try_get_context("batch_lane")
    text = str(value if value is not None else "").strip()
    if text.lower() in ("", "false"):
        return None
    if "async" not in patterns:
        raise ValueError(
            f"context 'batch_lane' configures the async pattern's batch lane, and -c patterns={','.join(patterns)} has "
            "no async: add async to patterns, or drop -c batch_lane"
        )
    fields: dict[str, object] = {}
    if text.lower() != "true":
        for item in _names(text):
            key, sep, raw = (part.strip() for part in item.partition("="))
            if not sep or key not in _BATCH_LANE_KEYS:
                raise ValueError(
                    f"context 'batch_lane' takes true or key=value pairs, comma-separated, with keys "
                    f"{', '.join(_BATCH_LANE_KEYS)}; got {item!r}"
                )
            name, read = _BATCH_LANE_KEYS[key]
            try:
                fields[name] = read(raw)
            except ValueError:
                raise ValueError(f"context 'batch_lane': {key} must be a whole number, got {raw!r}") from None
    options = BatchLaneOptions(**fields)  # type: ignore[arg-type]
    _checked("batch_lane", options.validate, "for example -c batch_lane=flush_size=100,max_age_minutes=60")
    return options


def _budgets(app: App) -> tuple[Budget, ...]:
    """``-c budget_tenant_daily_usd=5 -c budget_agent_daily_tokens=2000000``: one Budget per ``per`` given."""
    budgets = []
    for per in ("tenant", "agent"):
        limits: dict[str, Any] = {}
        for unit, kind in (("tokens", int), ("usd", float)):
            key = f"budget_{per}_daily_{unit}"
            value = app.node.try_get_context(key)
            if value in (None, ""):
                continue
            try:
                limits[f"daily_{unit}"] = kind(str(value))
            except ValueError:
                raise ValueError(f"context {key!r} must be a number above zero, got {value!r}") from None
        if limits:
            budget = Budget(per=per, **limits)
            budget.limits()  # a zero or negative limit fails here, naming the context key's budget
            budgets.append(budget)
    return tuple(budgets)


def _pipeline(app: App) -> PipelineSettings | None:
    """``-c pipeline=owner/name`` and its keys; None without ``pipeline``, or with ``pipeline=off`` (what local mode
    passes: it runs the app's stacks, whatever pipeline settings cdk.json holds)."""
    repository = app.node.try_get_context("pipeline")
    if repository == PIPELINE_OFF:
        return None
    given = [key for key in PIPELINE_KEYS if app.node.try_get_context(key) not in (None, "")]
    if repository in (None, ""):
        if given:
            raise ValueError(
                f"context {', '.join(given)} configure the delivery pipeline: add -c pipeline=owner/name (the repository "
                "the pipeline builds), or drop them"
            )
        return None
    repository = str(repository)
    connection_arn = str(app.node.try_get_context("pipeline_connection_arn") or "")
    options = PipelineOptions(
        branch=str(app.node.try_get_context("pipeline_branch") or "main"),
        promotion=str(app.node.try_get_context("pipeline_promotion") or "manual"),  # type: ignore[arg-type]
        synth_context=plain_context(app),
    )
    # The construct's own checks, each failure named by its context key and the fix on the command line.
    _checked("pipeline", lambda: validate_repository(repository), "e.g. -c pipeline=acme/agents")
    _checked(
        "pipeline_connection_arn",
        lambda: validate_connection_arn(connection_arn),
        "add -c pipeline_connection_arn=arn:aws:codeconnections:<region>:<account>:connection/<id>",
    )
    _checked("pipeline_promotion", options.validate_promotion, f"e.g. -c pipeline_promotion={PROMOTIONS[0]}")
    _checked("pipeline_branch", options.validate, "e.g. -c pipeline_branch=main")
    return PipelineSettings(repository=repository, connection_arn=connection_arn, options=options)


def _canary(value: object) -> str:
    name = str(value or "canary")
    _one_of("canary", name, (*STRATEGIES, "off"))
    return name


def _shadow_percent(value: object) -> float | None:
    if value in (None, ""):
        return None
    try:
        percent = float(str(value))
    except ValueError:
        raise ValueError(f"context 'shadow_percent' must be a number above 0 and at most 100, got {value!r}") from None
    _checked("shadow_percent", ShadowOptions(percent=percent).validate, "e.g. -c shadow_percent=5")
    return percent


def _one_of(key: str, value: str, choices: Iterable[str], *, meaning: str = "", given: object = None) -> None:
    """Fail naming context ``key``, its ``choices`` and what was ``given`` (Default: ``value``) unless ``value`` is one."""
    choices = tuple(choices)
    if value not in choices:
        shown = value if given is None else given
        raise ValueError(f"context {key!r} must be one of {', '.join(choices)}{meaning}, got {shown!r}")


def _checked(key: str, check: Callable[[], None], fix: str) -> None:
    """Run a construct's own validation of what context ``key`` gave; its failure names the key and ``fix``."""
    try:
        check()
    except ValueError as error:
        raise ValueError(f"context {key!r}: {error} ({fix})") from None


def _log_level(value: object) -> LogLevel:
    level = str(value or "INFO").upper()
    _one_of("log_level", level, LOG_LEVELS, given=value)
    return cast(LogLevel, level)


def _step_models(value: object) -> tuple[tuple[str, str], ...]:
    """``routing=bedrock:amazon.nova-micro-v1:0,planning=...`` as (kind, model) pairs, checked as the constructs check
    ``step_models``."""
    pairs: list[tuple[str, str]] = []
    for item in _names(value):
        kind, sep, spec = item.partition("=")
        if not sep:
            raise ValueError(f"context 'step_models' takes kind=model pairs, comma-separated; got {item!r}")
        pairs.append((kind.strip(), spec.strip()))
    problem = contract.step_models_problem(dict(pairs))
    if problem is not None:
        raise ValueError(f"context {problem}")
    return tuple(pairs)


def _names(value: object) -> tuple[str, ...]:
    return tuple(name.strip() for name in str(value or "").split(",") if name.strip())


def _positive_int(value: object, key: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise ValueError(f"context {key!r} must be a whole number of seconds") from None
    if number < 1:
        raise ValueError(f"context {key!r} must be at least 1")
    return number


def _boolean(value: object, key: str, *, default: bool) -> bool:
    if value in (None, ""):
        return default
    text = str(value).lower()
    if text not in ("true", "false"):
        raise ValueError(f"context {key!r} must be 'true' or 'false'")
    return text == "true"
