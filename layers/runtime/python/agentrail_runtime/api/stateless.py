"""The stateless agent API: ``POST /invoke``, ``POST /erase``, ``GET /health`` and ``GET /openapi.json``."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from agentrail_runtime.agent.results import MAX_MESSAGE_CHARS, AgentRunOut
from agentrail_runtime.api.erasure import add_erasure_route
from agentrail_runtime.api.errors import AgentResolver, add_operational_routes, error_responses
from agentrail_runtime.config import RuntimeSettings, load_settings
from agentrail_runtime.erasure import PrincipalEraser, load_erasure_settings
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


def create_stateless_app(
    service: AgentService | None = None,
    settings: RuntimeSettings | None = None,
    shadow: ShadowSampler | None = None,
    eraser: PrincipalEraser | None = None,
) -> AgentResolver:
    """Build the resolver. Dependencies are arguments so tests can pass their own; ``shadow`` copies a sample of
    requests and their answers to the shadow queue (default: as ``AGENT_SHADOW_*`` says, off without it);
    ``eraser`` serves ``POST /erase`` (default: the caller's budget counters and shadow comparisons, where kept)."""
    settings = settings or load_settings()
    service = service or AgentService.from_settings(settings)
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
        result = service.run(request.message, model=request.model, tenant=tenant)
        request_id = app.current_event.request_context.request_id
        shadow.offer_run(
            request_id, result, message=request.message, model=request.model, agent_version=service.version, owner=app.caller()
        )
        run = AgentRunOut.from_result(result)
        return InvokeResponse(request_id=request_id, **run.model_dump())

    eraser = eraser or PrincipalEraser(
        budgets=service.budgets, shadow=erasable_comparisons(shadow_settings), settings=load_erasure_settings()
    )
    add_erasure_route(app, eraser, app.principal)
    add_operational_routes(app, checks=lambda: service.health_checks, title=API_TITLE, version=API_VERSION)
    return app
