"""One error shape for every API: ``{"error", "message", "request_id", "details"}``.

Rules: a clear, short 4xx for bad input; never a stack trace; never the
caller's input echoed back; every failure logged with the correlation id.
Every ``(status, error)`` pair answered is one of the contract's
(:data:`agentrail_runtime.contract.API_ERRORS`), and the OpenAPI document lists,
per route, every status it can answer, from the same list.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import ProxyEventType, ResponseBuilder
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType, RequestValidationError
from pydantic import BaseModel, Field

from agentrail_runtime.aws import principal_of, token_claims
from agentrail_runtime.budgets import BudgetExceeded
from agentrail_runtime.config import ApiKind
from agentrail_runtime.contract import (
    API_ERRORS,
    HTTP_API_GATEWAY_ERRORS,
    MAX_JSON_DEPTH,
    ApiErrorSpec,
    GatewayMessageSpec,
    api_error,
)
from agentrail_runtime.guardrails.base import GuardBlocked
from agentrail_runtime.health import HealthCheck, HealthReport, run_checks
from agentrail_runtime.models.base import ModelError
from agentrail_runtime.observability import logger, tracer
from agentrail_runtime.service import UnknownModelError

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import Route
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent


class ErrorField(BaseModel):
    field: str
    problem: str


class BudgetOut(BaseModel):
    """The daily budget a ``budget_exceeded`` answer names."""

    per: Literal["tenant", "agent"] = Field(description="Whose budget: the caller's (tenant) or the agent's")
    unit: Literal["tokens", "usd"]
    limit: float = Field(description="The daily limit, in unit")
    day: str = Field(description="The UTC day (YYYY-MM-DD) whose budget is spent")
    retry_after_seconds: int = Field(description="Seconds to the next UTC midnight, as in Retry-After")


class ErrorBody(BaseModel):
    """Every error of every agent API has this shape."""

    error: str = Field(description="A stable code, e.g. invalid_request, payload_too_large, model_throttled")
    message: str = Field(description="A short explanation; it never repeats the request")
    request_id: str | None = Field(description="The API Gateway request id, also the correlation id in logs")
    details: list[ErrorField] | None = None
    budget: BudgetOut | None = Field(default=None, description="The daily budget that is spent (budget_exceeded only)")
    reason: str | None = Field(
        default=None, description="The guard's reason code, e.g. prompt_injection.instruction_override (input_blocked only)"
    )


class GatewayMessage(BaseModel):
    """What an HTTP API answers for itself (no custom gateway responses there): AWS's own fixed body."""

    message: str = Field(description="AWS's fixed text, e.g. Forbidden, Not Found, Too Many Requests")


#: What every route can answer: the gateway's authentication, throttling and failures, the size limit, a crash.
EVERY_ROUTE: tuple[tuple[int, str], ...] = (
    (401, "unauthenticated"),
    (401, "unauthorized"),
    (403, "not_found_or_unauthenticated"),
    (403, "forbidden"),
    (403, "invalid_api_key"),
    (403, "invalid_signature"),
    (403, "expired_token"),
    (413, "payload_too_large"),
    (429, "throttled"),
    (429, "quota_exceeded"),
    (500, "internal_error"),
    (500, "unsupported_event"),
    (500, "gateway_error"),
    (502, "gateway_error"),
    (504, "gateway_error"),
)
#: What a route with a path, query or header parameter can answer besides.
WITH_PARAMETERS: tuple[tuple[int, str], ...] = ((400, "invalid_request"),)
#: What a route that reads a body (POST, PUT, PATCH) can answer besides.
WITH_BODY: tuple[tuple[int, str], ...] = (
    (400, "invalid_json"),
    (400, "nesting_too_deep"),
    (400, "invalid_request"),
    (415, "unsupported_media_type"),
)
#: The methods whose body the shared entry checks (content type, JSON, nesting) before any route runs.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "Seconds to wait before sending again", "schema": {"type": "integer", "minimum": 0}}
}
#: The response header naming the version of the agent that answered (``agent_version``), on every answer of a route.
AGENT_VERSION_HEADER = "X-Agent-Version"
_AGENT_VERSION_DOC = {
    AGENT_VERSION_HEADER: {
        "description": "The version of the agent that answered: a hash of its prompt, tools, models and limits",
        "schema": {"type": "string"},
    }
}


def _function_error(code: str) -> ApiErrorSpec:
    found = [spec for spec in API_ERRORS if spec.code == code and spec.source == "function"]
    if len(found) != 1:
        raise KeyError(f"{code!r} is not one function error of the API error contract (agentrail_runtime.contract.API_ERRORS)")
    return found[0]


def _response_entry(specs: Iterable[ApiErrorSpec]) -> OpenAPIResponse:
    listed = list(dict.fromkeys(specs))
    entry: OpenAPIResponse = {
        "description": "\n".join(f"- `{spec.code}` ({spec.source}): {spec.when}" for spec in listed),
        "content": {"application/json": {"model": ErrorBody}},
    }
    if any(spec.retry_after for spec in listed):
        entry["headers"] = dict(_RETRY_AFTER_HEADER)  # type: ignore[arg-type]
    return entry


def _http_api_entry(own: OpenAPIResponse | None, answers: Sequence[GatewayMessageSpec]) -> OpenAPIResponse:
    """``own`` (the function's errors of a status, if any) and the HTTP API gateway's ``answers`` of that status."""
    lines = [f'- `{{"message": "{spec.message}"}}` (HTTP API gateway): {spec.when}' for spec in answers]
    if own is None:
        return {"description": "\n".join(lines), "content": {"application/json": {"model": GatewayMessage}}}
    model = own.get("content", {}).get("application/json", {}).get("model", ErrorBody)
    return {
        **own,
        "description": "\n".join([own["description"], *lines]),
        "content": {"application/json": {"model": model | GatewayMessage}},
    }


def error_responses(*codes: str) -> dict[int, OpenAPIResponse]:
    """OpenAPI ``responses`` entries, with :class:`ErrorBody`, for the contract's function errors ``codes``.

    A route names the errors of its own domain (``session_not_found``, ``turn_in_progress``, ...); the resolver
    adds the ones every route, every route with parameters and every route with a body can answer.

    Raises
    ------
    KeyError
        A code that is not a function error of :data:`agentrail_runtime.contract.API_ERRORS`.
    """
    by_status: dict[int, list[ApiErrorSpec]] = {}
    for code in codes:
        spec = _function_error(code)
        by_status.setdefault(spec.status, []).append(spec)
    return {status: _response_entry(specs) for status, specs in sorted(by_status.items())}


def resource_links(parameter: str, operations: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """OpenAPI ``links`` from a response that creates a resource to the ``operations`` that take its id.

    ``operations`` maps a link name to ``(path, method)``; each link fills ``parameter`` from the response body's
    field of the same name, so clients and API fuzzers can follow a created resource to its routes.
    """
    return {
        name: {
            "operationRef": f"#/paths/{path.replace('~', '~0').replace('/', '~1')}/{method}",
            "parameters": {parameter: f"$response.body#/{parameter}"},
        }
        for name, (path, method) in operations.items()
    }


class ApiError(Exception):
    """Raise from a route to answer with ``status`` and a stable ``code``."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        api_error(status, code)  # only answers of the contract
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
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {"error": code, "message": message, "request_id": _request_id(app)}
    if details:
        body["details"] = details
    body.update(extra or {})
    log = logger.warning if status < 500 else logger.error
    log("request failed", extra={"event": "request_error", "status": status, "error": code})
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers or {})


def cognito_groups(request_context: Mapping[str, Any]) -> list[str]:
    """The caller's Cognito groups, from a REST API's Cognito authorizer or an HTTP API's JWT authorizer."""
    raw = token_claims(request_context).get("cognito:groups") or ""
    if isinstance(raw, list):
        return [str(g) for g in raw]
    return [g for g in str(raw).strip("[]").replace(",", " ").split() if g]


class UnsupportedEventError(TypeError):
    """A handler of API Gateway proxy events got another kind of event: the function is wired wrong."""


#: What each kind of API sends, in the words of the refusal.
_PAYLOADS: dict[str, str] = {
    "rest": "API Gateway REST API (payload 1.0) proxy events",
    "http": "API Gateway HTTP API (payload 2.0) events",
}


def event_kind(event: object, served: ApiKind = "rest") -> str | None:
    """``None`` for an event of the ``served`` kind (a REST API's payload 1.0 proxy event, or an HTTP API's payload
    2.0 event); otherwise what the event looks like."""
    if not isinstance(event, Mapping) or not event:
        return "an empty event" if isinstance(event, Mapping) else f"a JSON {type(event).__name__}, not an object"
    context = event.get("requestContext")
    if event.get("version") == "2.0" or (isinstance(context, Mapping) and "http" in context):
        http = context.get("http") if isinstance(context, Mapping) else None
        served_here = served == "http" and isinstance(http, Mapping) and isinstance(event.get("rawPath"), str)
        if served_here and isinstance(http.get("method"), str):  # type: ignore[union-attr]
            return None
        return "an API Gateway HTTP API (payload 2.0) event"
    if isinstance(context, Mapping) and "elb" in context:
        return "an Application Load Balancer event"
    if isinstance(event.get("httpMethod"), str) and isinstance(event.get("path"), str) and isinstance(context, Mapping):
        return None if served == "rest" else "an API Gateway REST API (payload 1.0) proxy event"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        source = records[0].get("eventSource") or records[0].get("EventSource") or "unknown"
        return f"a batch of records from {source}"
    return "an event of another kind"


def _http_shaped(event: object) -> bool:
    """The caller of this event waits for an HTTP answer (REST or HTTP API, ALB): answer it, rather than fail the
    invocation."""
    if not isinstance(event, Mapping):
        return False
    context = event.get("requestContext")
    if isinstance(event.get("httpMethod"), str) and isinstance(context, Mapping):
        return True
    return event.get("version") == "2.0" or (isinstance(context, Mapping) and ("http" in context or "elb" in context))


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text``, counted without recursion (so any depth is safe to measure)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _not_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _media_type(headers: Mapping[str, str]) -> str:
    return (headers.get("content-type") or "").split(";", 1)[0].strip().lower()


class AgentResolver(APIGatewayRestResolver):
    """A resolver with validation on, the shared error handlers, a body size limit, ``X-Correlation-Id`` and
    ``X-Agent-Version``.

    It serves the events of one kind of API, ``api``: a REST API's payload 1.0 proxy events (Powertools'
    REST resolver) or an HTTP API's payload 2.0 events (the event type of Powertools' HTTP API resolver). Routes,
    answers and the OpenAPI document are the same for both.

    Before any route runs it refuses, in this order: a body over the size limit (413), then for ``POST``, ``PUT``
    and ``PATCH`` a body that is not ``application/json`` (415), not UTF-8 JSON, or JSON with ``NaN``/``Infinity``
    (400 ``invalid_json``), or nested deeper than ``MAX_JSON_DEPTH`` (400 ``nesting_too_deep``), or a JSON array
    (400 ``invalid_request``: every body is an object). An event that is not
    a REST (v1) proxy event is refused too: see :meth:`resolve`.

    Parameters
    ----------
    max_request_bytes:
        Largest accepted body, after base64 decoding.
    iam_identity:
        Who a caller that assumed a role is (see :func:`principal_of`). Default: ``role``.
    api:
        ``rest`` or ``http``: the API in front of the function (``AGENT_API_KIND``). Default: ``rest``.
    models:
        The models a request may name in ``model``: the OpenAPI document lists them as its ``enum``. Default: none
        (the document leaves ``model`` open).
    agent_version:
        The version of the agent the routes run (``AgentService.version``), sent as ``X-Agent-Version`` on every
        answer of a route, errors included. Default: none (no header).
    """

    def __init__(
        self,
        *,
        max_request_bytes: int,
        iam_identity: Literal["role", "session"] = "role",
        api: ApiKind = "rest",
        models: Sequence[str] = (),
        agent_version: str | None = None,
        **kwargs: Any,
    ) -> None:
        proxy_type = ProxyEventType.APIGatewayProxyEventV2 if api == "http" else ProxyEventType.APIGatewayProxyEvent
        super().__init__(enable_validation=True, proxy_type=proxy_type, **kwargs)
        self.api: ApiKind = api
        self.max_request_bytes = max_request_bytes
        self.iam_identity: Literal["role", "session"] = iam_identity
        self.models = tuple(models)
        self.agent_version = agent_version
        #: Each route's declared responses (by ``id`` of the route), set aside while requests are served: see
        #: :meth:`_serve_without_documented_responses`.
        self._documented_responses: dict[int, dict[int, OpenAPIResponse]] = {}
        self._serving = False
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
        """Answer ``error``, raised by any route, with ``status``, a stable ``code`` and ``message`` (or ``message(error)``).

        Raises
        ------
        KeyError
            ``(status, code)`` is not in the API error contract.
        """
        api_error(status, code)

        def handle(raised: Exception) -> Response:
            return error_response(self, status, code, message(raised) if callable(message) else message, headers=headers)

        self.exception_handler(error)(handle)

    def caller(self) -> str | None:
        """The authenticated caller of the current request (Cognito sub, IAM ARN or API key id), or None."""
        return principal_of(self.current_event.raw_event.get("requestContext") or {}, iam_identity=self.iam_identity)

    def principal(self) -> str:
        """The authenticated caller of the current request (Cognito sub, IAM ARN or API key id).

        Raises
        ------
        ApiError
            401 when the request carries none (a gateway without authentication in front).
        """
        principal = self.caller()
        if principal is None:
            raise ApiError(401, "unauthenticated", "The request carries no authenticated principal.")
        return principal

    def _get_base_path(self) -> str:
        if self.api == "rest":
            return super()._get_base_path()
        # As APIGatewayHttpResolver does: a payload 2.0 event's path is in requestContext.http.
        context = self.current_event.raw_event.get("requestContext") or {}
        stage = context.get("stage")
        path = str((context.get("http") or {}).get("path") or "")
        return f"/{stage}" if stage and stage != "$default" and path.startswith(f"/{stage}") else ""

    def _refusal(self) -> Response | None:
        """The answer to a request no route should see, or ``None``."""
        if body_size(self) > self.max_request_bytes:
            message = f"The request body exceeds the limit of {self.max_request_bytes} bytes."
            return error_response(self, 413, "payload_too_large", message)
        event = self.current_event
        if event.http_method.upper() not in BODY_METHODS or not event.body:
            return None
        if _media_type(event.headers) not in ("", "application/json"):
            return error_response(self, 415, "unsupported_media_type", "Send the body as application/json.")
        try:
            raw = base64.b64decode(event.body, validate=True) if event.is_base64_encoded else event.body.encode()
            text = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return error_response(self, 400, "invalid_json", "The request body is not valid JSON.")
        if json_depth(text) > MAX_JSON_DEPTH:
            return error_response(self, 400, "nesting_too_deep", f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
        try:
            parsed = json.loads(text, parse_constant=_not_json_constant)
        except ValueError:
            return error_response(self, 400, "invalid_json", "The request body is not valid JSON.")
        if isinstance(parsed, list):
            # Powertools would validate a body field that is not a list against the array's first item.
            problem = [{"field": "(body)", "problem": "The body must be a JSON object, not an array."}]
            return error_response(self, 400, "invalid_request", "The request does not match the schema.", details=problem)
        return None

    def _serve_without_documented_responses(self) -> None:
        """Set each route's declared responses aside before its first request: they document the API (their models
        are the OpenAPI document's), and validation reads none of them, while building their models is most of a
        first request's work. :meth:`get_openapi_schema` puts them back."""
        self._serving = True
        for route in self._static_routes + self._dynamic_routes:
            if route.responses and route._dependant is None:
                self._documented_responses[id(route)] = route.responses
                route.responses = None

    def _resolve(self) -> ResponseBuilder:
        if not self._serving:
            self._serve_without_documented_responses()
        refusal = self._refusal()
        builder: ResponseBuilder[APIGatewayProxyEvent] = ResponseBuilder(refusal) if refusal is not None else super()._resolve()
        request_id = _request_id(self)
        if request_id:
            builder.response.headers["X-Correlation-Id"] = request_id
        if self.agent_version:
            builder.response.headers[AGENT_VERSION_HEADER] = self.agent_version
        if builder.response.status_code in (204, 304):
            builder.response.body = ""  # response serialization would send "null"; these statuses have no body
            builder.response.headers.pop("Content-Type", None)
        return builder

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        """Answer one event of the API this function serves (``api``).

        Raises
        ------
        UnsupportedEventError
            ``event`` is not an HTTP event at all (an SQS batch, ``{}``): the invocation fails, logged, so a
            wrongly wired event source retries and dead-letters rather than losing its records. An HTTP event of
            another kind (the other API's payload, ALB) is answered with 500 ``unsupported_event`` instead.
        """
        kind = event_kind(event, self.api)
        if kind is not None:
            message = f"This function serves {_PAYLOADS[self.api]} (AGENT_API_KIND={self.api}); it got {kind}."
            logger.error(message, extra={"event": "unsupported_event", "status": 500, "error": "unsupported_event"})
            if not _http_shaped(event):
                raise UnsupportedEventError(message)
            body = {"error": "unsupported_event", "message": message, "request_id": None}
            return {"statusCode": 500, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
        request_id = (event.get("requestContext") or {}).get("requestId")
        if request_id:
            tracer.put_annotation(key="correlation_id", value=request_id)
        return super().resolve(event, context)

    def get_openapi_schema(self, *, closed_models: bool = True, **kwargs: Any) -> OpenAPI:
        """The OpenAPI document, listing for each route every status it can answer (each with a schema).

        ``closed_models=False`` leaves ``model`` open (the API Gateway request models, shared by every deployment).
        """
        declared_422: set[tuple[str, str]] = set()
        for route in self._static_routes + self._dynamic_routes:
            route.responses = self._documented_responses.pop(id(route), route.responses)
            if route.include_in_schema:
                if 422 in (route.responses or {}):
                    declared_422.add((route.openapi_path, route.method.lower()))
                route.responses = _contract_responses(route, self.api)
                route._dependant = None  # built again, with the error models
        document = super().get_openapi_schema(**kwargs)
        _tidy(document, declared_422, self.models if closed_models else ())
        return document


def _contract_responses(route: Route, api: ApiKind = "rest") -> dict[int, OpenAPIResponse]:
    """The route's own responses, plus every error the contract says a route of its kind can answer.

    Behind an HTTP API (``api="http"``) the gateway's own answers are not the contract's ``gateway`` rows (an HTTP
    API has no custom gateway responses) but :data:`~agentrail_runtime.contract.HTTP_API_GATEWAY_ERRORS`, with
    AWS's ``{"message": ...}`` body: every route lists those instead.
    """
    responses: dict[int, OpenAPIResponse] = dict(route.responses or {})
    if not any(200 <= status < 300 for status in responses):
        responses[200] = {"description": "Success"}
    for status in [status for status in responses if 200 <= status < 300]:
        headers = {**_AGENT_VERSION_DOC, **responses[status].get("headers", {})}
        responses[status] = {**responses[status], "headers": headers}  # type: ignore[typeddict-item]
    dependant = route.dependant
    pairs = list(EVERY_ROUTE)
    if dependant.path_params or dependant.query_params or dependant.header_params:
        pairs += WITH_PARAMETERS
    if route.method.upper() in BODY_METHODS:
        pairs += WITH_BODY
    if api == "http":
        pairs = [(status, code) for status, code in pairs if api_error(status, code).source == "function"]
    for status in sorted({status for status, _ in pairs}):
        specs = [api_error(status, code) for s, code in pairs if s == status]
        common = _response_entry(specs)
        if status not in responses:
            responses[status] = common
            continue
        own: OpenAPIResponse = {**responses[status]}
        extra = [line for line in common["description"].split("\n") if line not in own["description"]]
        own["description"] = "\n".join([own["description"], *extra])
        if "headers" in common:
            own["headers"] = {**common["headers"], **own.get("headers", {})}
        responses[status] = own
    if api == "http":
        for status in sorted({spec.status for spec in HTTP_API_GATEWAY_ERRORS}):
            answers = [spec for spec in HTTP_API_GATEWAY_ERRORS if spec.status == status]
            responses[status] = _http_api_entry(responses.get(status), answers)
    return dict(sorted(responses.items()))


def _tidy(document: OpenAPI, declared_422: set[tuple[str, str]], models: Sequence[str]) -> None:
    """Drop Powertools' undeclared 422 (validation answers 400), bodies of 204, unused schemas; close ``model``."""
    for path, item in (document.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
            operation = getattr(item, method, None)
            if operation is None or operation.responses is None:
                continue
            responses: dict[Any, Any] = operation.responses
            for status in [s for s in responses if str(s) == "422" and (path, method) not in declared_422]:
                del responses[status]
            for status in [s for s in responses if str(s) == "204"]:
                responses[status].content = None
    components = document.components
    if components is None or components.schemas is None:
        return
    schemas: dict[str, Any] = components.schemas
    for _ in range(2):  # HTTPValidationError refers to ValidationError: once it goes, ValidationError may go too
        text = document.model_dump_json(by_alias=True, exclude_none=True)
        for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            if name in schemas and f'"#/components/schemas/{name}"' not in text:
                del schemas[name]
    if models:
        for schema in schemas.values():
            properties = getattr(schema, "properties", None)
            if properties and "model" in properties:
                _close_model(properties["model"], models)


def _close_model(field: Any, models: Sequence[str]) -> None:
    """``model``: one of ``models`` (or null), where the field allowed any string."""
    branches = getattr(field, "anyOf", None) or [field]
    for branch in branches:
        if getattr(branch, "type", None) == "string":
            branch.enum = list(models)


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


def install_error_handlers(app: AgentResolver) -> None:
    """Register the shared error handlers on ``app``."""

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        if any(item.get("type") == "json_invalid" for item in error.errors()):
            return error_response(app, 400, "invalid_json", "The request body is not valid JSON.")
        return error_response(
            app, 400, "invalid_request", "The request does not match the schema.", details=_validation_details(error)
        )

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_media_type(_: RequestUnsupportedContentType) -> Response:
        return error_response(app, 415, "unsupported_media_type", "Send the body as application/json.")

    @app.exception_handler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(app, error.status, error.code, error.message, headers=error.headers)

    @app.exception_handler(BudgetExceeded)
    def _budget_exceeded(error: BudgetExceeded) -> Response:
        refusal = error.refusal
        budget = BudgetOut(
            per=refusal.per,
            unit=refusal.unit,
            limit=refusal.limit,
            day=refusal.day,
            retry_after_seconds=refusal.retry_after_seconds,
        )
        return error_response(
            app,
            429,
            "budget_exceeded",
            refusal.sentence,
            headers={"Retry-After": str(refusal.retry_after_seconds)},
            extra={"budget": budget.model_dump(mode="json")},
        )

    @app.exception_handler(GuardBlocked)
    def _input_blocked(error: GuardBlocked) -> Response:
        message = "A guard of this agent refused the message; reason names why."
        return error_response(app, 400, "input_blocked", message, extra={"reason": error.reason})

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
        if error.status_code < 500:
            return error_response(app, 400, "invalid_request", "The request could not be served.")
        return error_response(app, 500, "internal_error", "Something went wrong on our side; the request id identifies it.")

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
