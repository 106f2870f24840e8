"""The stateless agent API: ``POST /invoke``, ``POST /erase``, ``GET /health`` and ``GET /openapi.json``."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from agentrail_runtime.agent.results import MAX_MESSAGE_CHARS, AgentRunOut, UsageOut
from agentrail_runtime.api.erasure import add_erasure_route
from agentrail_runtime.api.errors import AgentResolver, add_operational_routes, error_responses
from agentrail_runtime.config import RuntimeSettings, load_settings
from agentrail_runtime.erasure import PrincipalEraser, load_erasure_settings
from agentrail_runtime.metering.metrics import emit_cache_lookup
from agentrail_runtime.models.base import Usage
from agentrail_runtime.observability import logger, metrics
from agentrail_runtime.response_cache import ResponseCache
from agentrail_runtime.service import AgentService
from agentrail_runtime.shadow import ShadowSampler, ShadowSettings, erasable_comparisons

API_TITLE = "agentrail stateless agent"
API_VERSION = "1.0.0"


class InvokeRequest(BaseModel):
    """One request to the agent. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=r"\S", description="What the user asks the agent.")
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="One of the function's configured models; default: AGENT_MODEL.",
    )


class InvokeResponse(AgentRunOut):
    request_id: str = Field(description="API Gateway request id, also the correlation id in logs and traces.")
    cache: Literal["hit", "miss"] | None = Field(
        default=None,
        description="With a response cache: hit (served from it: no model call, zero tokens and cost) or miss (run, "
        "and stored when it completed); null without one.",
    )


def response_cache_of(service: AgentService, settings: RuntimeSettings) -> ResponseCache | None:
    """The stateless agent's response cache, when ``AGENT_RESPONSE_CACHE_TABLE`` names one.

    Raises
    ------
    ResponseCacheRefused
        The agent is not cacheable (a tool is not ``cacheable=True``): the function refuses to start.
    """
    if not settings.response_cache_table:
        return None
    return ResponseCache.for_agent(
        service.definition, settings.response_cache_table, ttl_seconds=settings.response_cache_ttl_seconds
    )


def create_stateless_app(
    service: AgentService | None = None,
    settings: RuntimeSettings | None = None,
    shadow: ShadowSampler | None = None,
    eraser: PrincipalEraser | None = None,
    cache: ResponseCache | None = None,
) -> AgentResolver:
    """Build the resolver. Dependencies are arguments so tests can pass their own; ``shadow`` copies a sample of
    requests and their answers to the shadow queue (default: as ``AGENT_SHADOW_*`` says, off without it);
    ``eraser`` serves ``POST /erase`` (default: the caller's budget counters, shadow comparisons and cached answers,
    where kept);
    ``cache`` answers repeated questions (default: as ``AGENT_RESPONSE_CACHE_*`` says, off without it).

    Raises
    ------
    ResponseCacheRefused
        A response cache is configured and the agent is not cacheable (see :func:`response_cache_of`).
    """
    settings = settings or load_settings()
    service = service or AgentService.from_settings(settings)
    cache = cache or response_cache_of(service, settings)
    shadow_settings = ShadowSettings()  # read once: the sampler's queue and share, and the table erasure deletes from
    shadow = shadow or ShadowSampler.from_settings(shadow_settings)
    app = AgentResolver(
        max_request_bytes=settings.max_request_bytes,
        iam_identity=settings.iam_identity,
        api=settings.api_kind,
        models=settings.models,
        agent_version=service.version,
    )

    @app.post(
        "/invoke",
        summary="Run the agent on one message",
        responses={
            200: {"description": "The task ran; see status for limits reached."},
            **error_responses(
                "unknown_model",
                "input_blocked",
                "budget_exceeded",
                "model_error",
                "model_rejected_request",
                "model_unavailable",
                "model_throttled",
            ),
        },
    )
    def invoke(request: Annotated[InvokeRequest, Body()]) -> InvokeResponse:
        tenant = app.principal() if service.budgets_per_tenant else None
        request_id = app.current_event.request_context.request_id
        key = None
        if cache is not None:
            # The key holds what the model would see: the message as the input guards leave it, asked of a budget
            # that is not spent yet (a hit spends nothing, but a spent budget refuses it as it refuses a run).
            model = service.model(request.model).name
            guarded = service.check_input(request.message)
            service.check_budget(tenant)
            key = cache.key(
                agent_version=service.version,
                model=model,
                message=guarded,
                principal=app.principal() if cache.per_caller else None,
            )
            cached = cache.get(key)
            emit_cache_lookup(
                metrics,
                "hit" if cached is not None else "miss",
                agent_name=service.definition.name,
                model=model,
                agent_version=service.version,
            )
            if cached is not None:
                logger.info(
                    "response cache hit",
                    extra={
                        "event": "response_cache_hit",
                        "model": model,
                        "cached_at": cached.cached_at,
                        "saved_tokens": cached.usage.total_tokens,
                        "saved_usd": cached.cost_usd,
                    },
                )
                return InvokeResponse(
                    request_id=request_id,
                    status=cached.status,
                    answer=cached.answer,
                    model=cached.model,
                    steps=0,
                    usage=UsageOut.of(Usage()),
                    cost_usd=0.0,
                    tool_calls=[],
                    cache="hit",
                )
        result = service.run(request.message, model=request.model, tenant=tenant)
        shadow.offer_run(
            request_id, result, message=request.message, model=request.model, agent_version=service.version, owner=app.caller()
        )
        if cache is not None and key is not None:
            cache.put(key, result, agent_version=service.version, principal=app.principal() if cache.per_caller else None)
        run = AgentRunOut.from_result(result)
        # The run's fields as they are (models, not dumps): validated once, not dumped and validated again.
        return InvokeResponse(request_id=request_id, cache="miss" if cache is not None else None, **dict(run))

    eraser = eraser or PrincipalEraser(
        budgets=service.budgets,
        shadow=erasable_comparisons(shadow_settings),
        response_cache=cache,
        settings=load_erasure_settings(),
    )
    add_erasure_route(app, eraser, app.principal)
    add_operational_routes(app, checks=lambda: service.health_checks, title=API_TITLE, version=API_VERSION)
    return app
