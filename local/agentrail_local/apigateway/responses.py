"""API Gateway's own answers: gateway responses (customized by the template), ``$context`` templates and MOCK integrations."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Types only: keeps this module, and the CLI's import of the auth module, free of the template reader.
    from agentrail_local.apigateway.model import Method, RestApi

# Status, default message and x-amzn-ErrorType of each gateway response type.
_DEFAULT_RESPONSES: dict[str, tuple[int, str, str]] = {
    "ACCESS_DENIED": (403, "User is not authorized to access this resource", "AccessDeniedException"),
    "API_CONFIGURATION_ERROR": (500, "Internal server error", "InternalServerErrorException"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "Internal server error", "AuthorizerConfigurationException"),
    "AUTHORIZER_FAILURE": (500, "Internal server error", "AuthorizerFailureException"),
    "BAD_REQUEST_PARAMETERS": (400, "Missing required request parameters", "BadRequestException"),
    "BAD_REQUEST_BODY": (400, "Invalid request body", "BadRequestException"),
    "EXPIRED_TOKEN": (403, "The security token included in the request is expired", "ExpiredTokenException"),
    "INTEGRATION_FAILURE": (504, "Internal server error", "InternalServerErrorException"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out", "InternalServerErrorException"),
    "INVALID_API_KEY": (403, "Forbidden", "ForbiddenException"),
    "INVALID_SIGNATURE": (
        403,
        "The request signature we calculated does not match the signature you provided.",
        "InvalidSignatureException",
    ),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token", "MissingAuthenticationTokenException"),
    "QUOTA_EXCEEDED": (429, "Limit Exceeded", "LimitExceededException"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long", "RequestTooLargeException"),
    "RESOURCE_NOT_FOUND": (404, "Not Found", "NotFoundException"),
    "THROTTLED": (429, "Too Many Requests", "TooManyRequestsException"),
    "UNAUTHORIZED": (401, "Unauthorized", "UnauthorizedException"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type", "UnsupportedMediaTypeException"),
    "WAF_FILTERED": (403, "Forbidden", "ForbiddenException"),
    "DEFAULT_4XX": (400, "Bad Request", "BadRequestException"),
    "DEFAULT_5XX": (500, "Internal server error", "InternalServerErrorException"),
}
_DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'
_CONTEXT_VARIABLE = re.compile(r"\$(?:\{context\.([A-Za-z0-9_.]+)\}|context\.([A-Za-z0-9_.]+))")


@dataclass
class GatewayReply:
    """Status, headers and body of one HTTP answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class GatewayRejection(Exception):
    """API Gateway answers for itself with the gateway response of ``response_type``."""

    def __init__(
        self,
        response_type: str,
        message: str | None = None,
        *,
        validation_error: str = "",
        status: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(response_type)
        self.response_type = response_type
        self.message = message
        self.validation_error = validation_error
        self.status = status
        self.retry_after = retry_after


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """Substitute ``$context.*`` variables (the subset gateway responses and access logs use)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        # $context.error.messageString is the message already quoted as a JSON string.
        if name == "error.messageString":
            return json.dumps(str(context.get("error.message", "")))
        found = context.get(name)
        if found is None:
            return "-" if context.get("_access_log") else ""
        return str(found)

    return _CONTEXT_VARIABLE.sub(value, template)


def gateway_response(
    api: RestApi,
    response_type: str,
    context: Mapping[str, Any],
    *,
    request_headers: Mapping[str, str] | None = None,
    message: str | None = None,
    validation_error: str = "",
    status: int | None = None,
    retry_after: int | None = None,
) -> GatewayReply:
    """API Gateway's own answer of ``response_type``, customized by the API's ``AWS::ApiGateway::GatewayResponse``.

    A type without its own customization takes ``DEFAULT_4XX`` or ``DEFAULT_5XX``'s
    template and headers but keeps its own status code, as API Gateway does. A 429 whose
    gateway response sets no ``Retry-After`` gets one: ``retry_after`` seconds, else 1.
    """
    if api.kind == "http":
        return _http_api_response(response_type, context)
    default_status, default_message, error_type = _DEFAULT_RESPONSES.get(response_type, _DEFAULT_RESPONSES["DEFAULT_4XX"])
    default_status = status or default_status
    family = "DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX"
    spec = api.gateway_responses.get(response_type) or api.gateway_responses.get(family)
    if spec is not None and spec.type == response_type and spec.status:
        default_status = spec.status
    template = _DEFAULT_TEMPLATE
    if spec is not None and spec.templates:
        template = spec.templates.get("application/json") or next(iter(spec.templates.values()))
    values = {
        **context,
        "error.message": message or default_message,
        "error.responseType": response_type,
        "error.validationErrorString": validation_error,
    }
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", str(context.get("requestId", ""))),
        ("x-amzn-ErrorType", error_type),
        ("x-amz-apigw-id", str(context.get("extendedRequestId", ""))),
    ]
    for key, value in (spec.parameters if spec else {}).items():
        if key.startswith("gatewayresponse.header."):
            headers.append((key.removeprefix("gatewayresponse.header."), _parameter_value(value, request_headers or {})))
    if default_status == 429 and not any(name.lower() == "retry-after" for name, _ in headers):
        headers.append(("Retry-After", str(retry_after or 1)))
    return GatewayReply(default_status, headers, render_template(template, values).encode())


#: What an HTTP API answers for itself: fixed bodies, no customization and so no ``Retry-After`` on its 429.
_HTTP_API_RESPONSES: dict[str, tuple[int, str]] = {
    "RESOURCE_NOT_FOUND": (404, "Not Found"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Forbidden"),
    "INVALID_SIGNATURE": (403, "Forbidden"),
    "EXPIRED_TOKEN": (403, "Forbidden"),
    "ACCESS_DENIED": (403, "Forbidden"),
    "UNAUTHORIZED": (401, "Unauthorized"),
    "THROTTLED": (429, "Too Many Requests"),
    "REQUEST_TOO_LARGE": (413, "Request Entity Too Large"),
    "INTEGRATION_TIMEOUT": (503, "Service Unavailable"),
    "DEFAULT_4XX": (400, "Bad Request"),
}


def _http_api_response(response_type: str, context: Mapping[str, Any]) -> GatewayReply:
    # A function error or malformed answer is a 500 too (a REST API's is a 502).
    status, message = _HTTP_API_RESPONSES.get(response_type, (500, "Internal Server Error"))
    headers = [("Content-Type", "application/json"), ("apigw-requestid", str(context.get("requestId", "")))]
    return GatewayReply(status, headers, json.dumps({"message": message}).encode())


def _parameter_value(value: str, request_headers: Mapping[str, str]) -> str:
    if value.startswith("'") and value.endswith("'"):
        return value[1:-1]
    if value.startswith("method.request.header."):
        name = value.removeprefix("method.request.header.").lower()
        return next((v for k, v in request_headers.items() if k.lower() == name), "")
    return value


def mock_reply(method: Method, context: dict[str, Any]) -> GatewayReply:
    """The reply of a ``MOCK`` integration: its first integration response without a selection pattern."""
    responses = method.integration.responses or [{"StatusCode": "200"}]
    chosen = next((r for r in responses if not r.get("SelectionPattern")), responses[0])
    headers = [("x-amzn-RequestId", context["requestId"])]
    for key, value in (chosen.get("ResponseParameters") or {}).items():
        if key.startswith("method.response.header."):
            headers.append((key.removeprefix("method.response.header."), _parameter_value(str(value), {})))
    template = (chosen.get("ResponseTemplates") or {}).get("application/json", "")
    if template:
        headers.append(("Content-Type", "application/json"))
    return GatewayReply(int(chosen.get("StatusCode", 200)), headers, template.encode())


__all__ = ["GatewayRejection", "GatewayReply", "gateway_response", "mock_reply", "render_template"]
