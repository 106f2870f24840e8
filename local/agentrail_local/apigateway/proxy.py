"""The Lambda proxy integration: the REST (v1) or HTTP API (payload 2.0) event API Gateway sends a function, and the
mapping of the function's response."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

from agentrail_local.account import ACCOUNT_ID
from agentrail_local.apigateway.model import ApiResource, RestApi, Stage
from agentrail_local.apigateway.responses import GatewayRejection, GatewayReply


def proxy_event(
    request: BaseHTTPRequestHandler,
    api: RestApi,
    resource: ApiResource,
    stage: Stage,
    path: str,
    query_pairs: list[tuple[str, str]],
    path_parameters: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    identity: dict[str, Any],
    authorizer: dict[str, Any] | None,
    context: dict[str, Any],
    *,
    server_host: str,
    server_port: int,
) -> dict[str, Any]:
    """The REST (v1) Lambda proxy event of one request, as API Gateway builds it."""
    host = headers.get("Host", f"{server_host}:{server_port}")
    headers = {
        **headers,
        "X-Forwarded-For": context["identity.sourceIp"],
        "X-Forwarded-Port": str(server_port),
        "X-Forwarded-Proto": "http",
        "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
    }
    multi_headers: dict[str, list[str]] = {}
    for name in request.headers:
        multi_headers.setdefault(name, request.headers.get_all(name) or [])
    for name in ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id"):
        multi_headers[name] = [headers[name]]
    multi_query: dict[str, list[str]] = {}
    for name, value in query_pairs:
        multi_query.setdefault(name, []).append(value)
    content_type = headers.get("Content-Type", "").split(";")[0].strip()
    binary = _is_binary(content_type, api.binary_media_types)
    if binary:
        text_body: str | None = base64.b64encode(body).decode() if body else None
    else:
        text_body = body.decode("utf-8", errors="replace") if body else None
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": api.api_id,
        "domainName": host,
        "domainPrefix": host.split(".")[0],
        "extendedRequestId": context["extendedRequestId"],
        "httpMethod": request.command,
        "identity": identity,
        "path": context["path"],
        "protocol": context["protocol"],
        "requestId": context["requestId"],
        "requestTime": context["requestTime"],
        "requestTimeEpoch": context["requestTimeEpoch"],
        "resourceId": resource.id,
        "resourcePath": resource.path,
        "stage": stage.name,
    }
    if authorizer is not None:
        request_context["authorizer"] = authorizer
    return {
        "resource": resource.path,
        "path": path,
        "httpMethod": request.command,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": stage.variables or None,
        "requestContext": request_context,
        "body": text_body,
        "isBase64Encoded": binary and bool(body),
    }


#: Content types an HTTP API passes as text; any other body reaches the function base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded")


def http_api_event(
    request: BaseHTTPRequestHandler,
    api: RestApi,
    resource: ApiResource,
    stage: Stage,
    raw_query: str,
    query_pairs: list[tuple[str, str]],
    path_parameters: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    authorizer: dict[str, Any] | None,
    context: dict[str, Any],
    *,
    server_host: str,
    server_port: int,
) -> dict[str, Any]:
    """The payload 2.0 event of one HTTP API request, as API Gateway builds it: lower-cased headers whose repeated
    values are joined with commas, cookies apart, query values joined likewise."""
    host = headers.get("Host", f"{server_host}:{server_port}")
    joined: dict[str, str] = {}
    for name in request.headers:
        if name.lower() != "cookie":
            joined[name.lower()] = ",".join(request.headers.get_all(name) or [])
    joined.update(
        {
            "x-forwarded-for": context["identity.sourceIp"],
            "x-forwarded-port": str(server_port),
            "x-forwarded-proto": "http",
            "x-amzn-trace-id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
        }
    )
    query: dict[str, list[str]] = {}
    for name, value in query_pairs:
        query.setdefault(name, []).append(value)
    content_type = joined.get("content-type", "").split(";")[0].strip().lower()
    text = not content_type or content_type.startswith(_TEXT_TYPES) or content_type.endswith("+json")
    cookies = [c.strip() for value in request.headers.get_all("Cookie") or [] for c in value.split(";") if c.strip()]
    route_key = f"{request.command} {resource.path}"
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": api.api_id,
        "domainName": host,
        "domainPrefix": host.split(".")[0],
        "http": {
            "method": request.command,
            "path": context["path"],
            "protocol": context["protocol"],
            "sourceIp": context["identity.sourceIp"],
            "userAgent": context["identity.userAgent"] or "",
        },
        "requestId": context["requestId"],
        "routeKey": route_key,
        "stage": stage.name,
        "time": context["requestTime"],
        "timeEpoch": context["requestTimeEpoch"],
    }
    if authorizer is not None:
        request_context["authorizer"] = authorizer
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": context["path"],
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": request_context,
        "isBase64Encoded": bool(body) and not text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    if path_parameters:
        event["pathParameters"] = path_parameters
    if stage.variables:
        event["stageVariables"] = stage.variables
    if body:
        event["body"] = body.decode("utf-8", errors="replace") if text else base64.b64encode(body).decode()
    return event


def empty_identity(context: Mapping[str, Any]) -> dict[str, Any]:
    """The ``requestContext.identity`` of an unauthenticated caller."""
    return {
        "accessKey": None,
        "accountId": None,
        "apiKey": None,
        "apiKeyId": None,
        "caller": None,
        "cognitoAuthenticationProvider": None,
        "cognitoAuthenticationType": None,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "principalOrgId": None,
        "sourceIp": context["identity.sourceIp"],
        "user": None,
        "userAgent": context["identity.userAgent"],
        "userArn": None,
    }


def _is_binary(content_type: str, binary_types: tuple[str, ...]) -> bool:
    for pattern in binary_types:
        pattern = pattern.replace("~1", "/")
        if pattern == "*/*" or pattern == content_type:
            return True
        if pattern.endswith("/*") and content_type.startswith(pattern[:-1]):
            return True
    return False


def proxy_reply(result: Any, context: dict[str, Any]) -> GatewayReply:
    """Map a Lambda proxy response; a malformed one is a 502, as in API Gateway."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode", 200), int | str):
        raise GatewayRejection("DEFAULT_5XX", "Internal server error", status=502)
    try:
        status = int(result.get("statusCode", 200))
    except (TypeError, ValueError):
        raise GatewayRejection("DEFAULT_5XX", "Internal server error", status=502) from None
    headers: list[tuple[str, str]] = []
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise GatewayRejection("DEFAULT_5XX", "Internal server error", status=502)
    for name, values in multi.items():
        headers.extend((str(name), str(value)) for value in (values if isinstance(values, list) else [values]))
    for name, value in single.items():
        if name not in multi:
            headers.append((str(name), str(value)))
    bodiless = status in (204, 304)  # no content (RFC 9110), so no content type either
    if bodiless:
        headers = [(name, value) for name, value in headers if name.lower() != "content-type"]
    elif not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    for cookie in result.get("cookies") or []:
        headers.append(("Set-Cookie", str(cookie)))
    headers.append(("x-amzn-RequestId", context["requestId"]))
    headers.append(("x-amz-apigw-id", context["extendedRequestId"]))
    body = result.get("body")
    if body is None:
        payload = b""
    elif result.get("isBase64Encoded"):
        try:
            payload = base64.b64decode(str(body))
        except ValueError:
            raise GatewayRejection("DEFAULT_5XX", "Internal server error", status=502) from None
    else:
        payload = str(body).encode()
    return GatewayReply(status, headers, payload)


__all__ = ["empty_identity", "http_api_event", "proxy_event", "proxy_reply"]
