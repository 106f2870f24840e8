"""One error shape for every API: ``{"error", "message", "request_id", "details"}``.

Rules: a clear, short 4xx for bad input; never a stack trace; never the
caller's input echoed back; every failure logged with the correlation id.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from agentrail_runtime.aws import role_of_session
from agentrail_runtime.health import HealthCheck, HealthReport, run_checks
from agentrail_runtime.models.base import ModelError
from agentrail_runtime.observability import logger, tracer
from agentrail_runtime.service import UnknownModelError

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent


class ErrorField(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    """Every error of every agent API has this shape."""

    error: str = Field(description="A stable code, e.g. invalid_request, payload_too_large, model_throttled")
    message: str = Field(description="A short explanation; it never repeats the request")
    request_id: str | None = Field(description="The API Gateway request id, also the correlation id in logs")
    details: list[ErrorField] | None = None


_STANDARD_ERRORS = {
    400: "Invalid JSON, a missing or mistyped field, or an unknown field",
    401: "No authenticated principal",
    404: "No such route or resource (for this caller)",
    409: "A conflicting write was refused",
    413: "The body is over the limit",
    422: "The request cannot be processed as sent",
    500: "An unexpected error; the request id identifies it",
    502: "The model rejected the request or failed",
    503: "The model kept throttling; retry after Retry-After seconds",
}


def error_responses(*codes: int, **descriptions: str) -> dict[int, OpenAPIResponse]:
    """OpenAPI ``responses`` entries with :class:`ErrorBody` for ``codes`` (override a text with ``e409="..."``)."""
    return {
        code: {
            "description": descriptions.get(f"e{code}", _STANDARD_ERRORS.get(code, "Error")),
            "content": {"application/json": {"model": ErrorBody}},
        }
        for code in codes
    }


class ApiError(Exception):
    """Raise from a route to answer with ``status`` and a stable ``code``."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _request_id(app: APIGatewayRestResolver) -> str | None:
    try:
        return app.current_event.request_context.request_id
    except (AttributeError, KeyError, TypeError):
        return None


def error_response(
    app: APIGatewayRestResolver,
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"error": code, "message": message, "request_id": _request_id(app)}
    if details:
        body["details"] = details
    log = logger.warning if status < 500 else logger.error
    log("request failed", extra={"event": "request_error", "status": status, "error": code})
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers or {})


def principal_of(request_context: dict[str, Any], *, iam_identity: Literal["role", "session"] = "role") -> str | None:
    """The authenticated caller: Cognito ``sub``, IAM ARN, or API key id (in that order).

    A caller that assumed a role is the role (``iam:arn:aws:iam::ACCOUNT:role/ROLE``): whoever may assume it
    chooses the session name, so the session is the identity only with ``iam_identity="session"``.
    """
    claims = (request_context.get("authorizer") or {}).get("claims") or {}
    if claims.get("sub"):
        return f"cognito:{claims['sub']}"
    identity = request_context.get("identity") or {}
    if identity.get("userArn"):
        arn = str(identity["userArn"])
        role = role_of_session(arn) if iam_identity == "role" else None
        return f"iam:{role or arn}"
    if identity.get("apiKeyId"):
        return f"apikey:{identity['apiKeyId']}"
    return None


class AgentRestResolver(APIGatewayRestResolver):
    """A REST resolver with validation on, the shared error handlers, a body size limit and ``X-Correlation-Id``.

    The size limit is checked before anything parses the body, so an oversized
    request always gets 413, whatever else is wrong with it.

    Parameters
    ----------
    max_request_bytes:
        Largest accepted body, after base64 decoding.
    iam_identity:
        Who a caller that assumed a role is (see :func:`principal_of`). Default: ``role``.
    """

    def __init__(self, *, max_request_bytes: int, iam_identity: Literal["role", "session"] = "role", **kwargs: Any) -> None:
        super().__init__(enable_validation=True, **kwargs)
        self.max_request_bytes = max_request_bytes
        self.iam_identity: Literal["role", "session"] = iam_identity
        install_error_handlers(self)

    def answer(
        self,
        error: type[Exception],
        status: int,
        code: str,
        message: str | Callable[[Any], str],
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``error``, raised by any route, with ``status``, a stable ``code`` and ``message`` (or ``message(error)``)."""

        def handle(raised: Exception) -> Response:
            return error_response(self, status, code, message(raised) if callable(message) else message, headers=headers)

        self.exception_handler(error)(handle)

    def principal(self) -> str:
        """The authenticated caller of the current request (Cognito sub, IAM ARN or API key id).

        Raises
        ------
        ApiError
            401 when the request carries none (a gateway without authentication in front).
        """
        principal = principal_of(self.current_event.raw_event.get("requestContext") or {}, iam_identity=self.iam_identity)
        if principal is None:
            raise ApiError(401, "unauthenticated", "The request carries no authenticated principal.")
        return principal

    def _resolve(self) -> ResponseBuilder:
        if body_size(self) > self.max_request_bytes:
            message = f"The request body exceeds the limit of {self.max_request_bytes} bytes."
            builder: ResponseBuilder[APIGatewayProxyEvent] = ResponseBuilder(
                error_response(self, 413, "payload_too_large", message)
            )
        else:
            builder = super()._resolve()
        request_id = _request_id(self)
        if request_id:
            builder.response.headers["X-Correlation-Id"] = request_id
        if builder.response.status_code in (204, 304):
            builder.response.body = ""  # response serialization would send "null"; these statuses have no body
        return builder

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        request_id = (event.get("requestContext") or {}).get("requestId") if isinstance(event, dict) else None
        if request_id:
            tracer.put_annotation(key="correlation_id", value=request_id)
        return super().resolve(event, context)


def _validation_details(error: RequestValidationError) -> list[dict[str, str]]:
    details = []
    for item in error.errors():
        if item.get("type") == "extra_forbidden":
            # The name of an unknown field is the caller's input: don't echo it.
            details.append({"field": "(unknown field)", "problem": "Unknown fields are not allowed."})
            continue
        location = [str(part) for part in item.get("loc", ()) if part != "body" and not isinstance(part, int)]
        details.append({"field": ".".join(location) or "(body)", "problem": str(item.get("msg", "invalid"))})
    return details


def body_size(app: APIGatewayRestResolver) -> int:
    body = app.current_event.body or ""
    if app.current_event.is_base64_encoded:
        return len(base64.b64decode(body, validate=False))
    return len(body.encode())


def install_error_handlers(app: AgentRestResolver) -> None:
    """Register the shared error handlers on ``app``."""

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        if any(item.get("type") == "json_invalid" for item in error.errors()):
            return error_response(app, 400, "invalid_json", "The request body is not valid JSON.")
        return error_response(
            app, 400, "invalid_request", "The request does not match the schema.", details=_validation_details(error)
        )

    @app.exception_handler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(app, error.status, error.code, error.message, headers=error.headers)

    app.answer(
        UnknownModelError, 400, "unknown_model", lambda error: f"Choose one of the configured models: {', '.join(error.allowed)}."
    )

    @app.exception_handler(ModelError)
    def _model_error(error: ModelError) -> Response:
        headers = {}
        retry_after = getattr(error, "retry_after_seconds", None)
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        return error_response(app, error.status_code, error.error_code, str(error), headers=headers)

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        return error_response(app, 404, "not_found", "No route matches this method and path.")

    @app.exception_handler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        return error_response(app, error.status_code, "request_error", "The request could not be served.")

    @app.exception_handler(Exception)
    def _unexpected(_: Exception) -> Response:
        logger.exception("unhandled error", extra={"event": "unhandled_error"})
        return error_response(app, 500, "internal_error", "Something went wrong on our side; the request id identifies it.")


def add_operational_routes(
    app: APIGatewayRestResolver, *, checks: Callable[[], Sequence[HealthCheck]], title: str, version: str
) -> None:
    """``GET /health`` (200, or 503 when a check fails) and ``GET /openapi.json``, shared by every agent API."""

    @app.get(
        "/health",
        summary="Reachability of the model provider and each AWS dependency",
        responses={
            200: {"description": "Every check passed", "content": {"application/json": {"model": HealthReport}}},
            503: {"description": "A check failed; the report names it", "content": {"application/json": {"model": HealthReport}}},
        },
    )
    def health() -> Response[HealthReport]:
        report = run_checks(checks())
        return Response(status_code=200 if report.status == "ok" else 503, content_type="application/json", body=report)

    @app.get("/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
    def openapi() -> Response[str]:
        return Response(
            status_code=200, content_type="application/json", body=app.get_openapi_json_schema(title=title, version=version)
        )
