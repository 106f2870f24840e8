"""The request pipeline of the local API Gateway: the steps API Gateway takes for each request.

Route match, size limit, stage throttling, authentication (IAM SigV4, API keys,
Cognito), request validation, then the integration: the Lambda proxy
integration with a REST (v1) event, or a MOCK integration. An HTTP API takes the
same steps without API keys or validation, authenticates with IAM SigV4 or a JWT
authorizer, and sends a payload 2.0 event.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jsonschema import Draft4Validator
from jsonschema.exceptions import SchemaError

from agentrail_local.account import ACCOUNT_ID
from agentrail_local.apigateway.auth import (
    LocalPrincipal,
    admitted_api_key,
    cognito_claims,
    jwt_authorizer_claims,
    signed_principal,
)
from agentrail_local.apigateway.model import Method, RestApi, Stage, match_route
from agentrail_local.apigateway.proxy import empty_identity, http_api_event, proxy_event, proxy_reply
from agentrail_local.apigateway.responses import GatewayRejection, GatewayReply, gateway_response, mock_reply, render_template
from agentrail_local.awslambda.definitions import PayloadTooLarge, Throttled, UnknownFunction
from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.console import Console

#: API Gateway's payload limit for REST APIs.
MAX_BODY_BYTES = 10 * 1024 * 1024


class RequestPipeline:
    """Takes each request of one :class:`RestApi` through API Gateway's steps, and logs it.

    Parameters
    ----------
    api:
        The API whose requests this pipeline answers.
    environments:
        Runs the Lambda integrations.
    host, port:
        Where the server listens: the proxy event's ``Host`` when the request has none, and its ``X-Forwarded-Port``.
    principals:
        Local IAM users whose SigV4 signatures are accepted.
    access_log:
        File receiving one line per request, in the stage's access log format.
    console:
        Receives a one-line summary of each request. Default: none.
    """

    def __init__(
        self,
        api: RestApi,
        environments: ExecutionEnvironments,
        *,
        host: str,
        port: int,
        principals: tuple[LocalPrincipal, ...],
        access_log: Path | None = None,
        console: Console | None = None,
    ) -> None:
        self.api = api
        self.environments = environments
        self.host = host
        self.port = port
        self.principals = principals
        self.console = console
        self._access_log = access_log
        self._access_lock = threading.Lock()

    def handle(self, request: BaseHTTPRequestHandler) -> GatewayReply:
        """Answer one request as API Gateway would; never raises."""
        started = time.time()
        request_id = str(uuid.uuid4())
        raw_path, _, raw_query = request.path.partition("?")
        stage, path = self._stage_and_path(raw_path)
        headers = dict(request.headers.items())
        source_ip = request.client_address[0]
        context: dict[str, Any] = {
            "requestId": request_id,
            "extendedRequestId": base64.b32encode(uuid.uuid4().bytes)[:16].decode(),
            "apiId": self.api.api_id,
            "stage": stage.name,
            "httpMethod": request.command,
            "path": f"/{stage.name}{path}",
            "protocol": request.request_version,
            "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(started * 1000),
            "identity.sourceIp": source_ip,
            "identity.userAgent": headers.get("User-Agent"),
            "domainName": headers.get("Host", ""),
            "accountId": ACCOUNT_ID,
        }
        try:
            reply = self._process(request, stage, path, raw_query, headers, context)
        except GatewayRejection as rejected:
            reply = gateway_response(
                self.api,
                rejected.response_type,
                context,
                request_headers=headers,
                message=rejected.message,
                validation_error=rejected.validation_error,
                status=rejected.status,
                retry_after=rejected.retry_after,
            )
            request.close_connection = request.close_connection or rejected.response_type == "REQUEST_TOO_LARGE"
        except Exception as error:
            if self.console is not None:
                self.console(f"local gateway error on {request.command} {request.path}: {type(error).__name__}: {error}")
            reply = gateway_response(self.api, "DEFAULT_5XX", context, request_headers=headers)
        context["status"] = reply.status
        context["responseLength"] = len(reply.body)
        context["responseLatency"] = int((time.time() - started) * 1000)
        self._log(stage, context)
        return reply

    def _stage_and_path(self, raw_path: str) -> tuple[Stage, str]:
        first, _, rest = raw_path.lstrip("/").partition("/")
        if first in self.api.stages:
            return self.api.stages[first], "/" + rest
        return self.api.default_stage, raw_path or "/"

    def _process(
        self,
        request: BaseHTTPRequestHandler,
        stage: Stage,
        path: str,
        raw_query: str,
        headers: dict[str, str],
        context: dict[str, Any],
    ) -> GatewayReply:
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            raise GatewayRejection("DEFAULT_4XX", "Invalid Content-Length") from None
        if length > MAX_BODY_BYTES:
            raise GatewayRejection("REQUEST_TOO_LARGE")
        body = read_body(request, length)
        if len(body) > MAX_BODY_BYTES:
            raise GatewayRejection("REQUEST_TOO_LARGE")
        matched = match_route(self.api.root, path)
        method = matched[0].method_for(request.command) if matched else None
        if matched is None or method is None:
            raise GatewayRejection("RESOURCE_NOT_FOUND" if self.api.kind == "http" else "MISSING_AUTHENTICATION_TOKEN")
        resource, path_parameters = matched
        context["resourcePath"] = resource.path
        context["routeKey"] = f"{method.http_method} {resource.path}"
        context["resourceId"] = resource.id
        bucket = stage.bucket(resource.path, method.http_method)
        if bucket is not None and not bucket.take():
            raise GatewayRejection("THROTTLED", retry_after=bucket.seconds_until_token())
        identity: dict[str, Any] = empty_identity(context)
        authorizer: dict[str, Any] | None = None
        if method.authorization_type == "AWS_IAM":
            host = headers.get("Host") or f"{self.host}:{self.port}"
            principal = signed_principal(
                method=request.command, url=f"http://{host}{request.path}", headers=headers, body=body, principals=self.principals
            )
            identity.update(
                accessKey=principal.access_key_id,
                accountId=ACCOUNT_ID,
                caller=principal.user_id,
                user=principal.user_id,
                userArn=principal.user_arn,
            )
            if self.api.kind == "http":
                authorizer = {"iam": {k: identity[k] for k in ("accessKey", "accountId", "caller", "user", "userArn")}}
                authorizer["iam"].update(callerId=principal.user_id, userId=principal.user_id)
            context["identity.user"] = principal.user_id
            context["identity.caller"] = principal.user_id
        elif method.authorization_type == "COGNITO_USER_POOLS":
            authorizer = {"claims": cognito_claims(method, headers)}
        elif method.authorization_type == "JWT":
            claims = jwt_authorizer_claims(method, headers)
            authorizer = {"jwt": {"claims": claims, "scopes": str(claims.get("scope", "")).split() or None}}
        elif method.authorization_type == "CUSTOM":
            raise GatewayRejection("AUTHORIZER_CONFIGURATION_ERROR", "Lambda authorizers are not emulated by local mode")
        if method.api_key_required:
            key = admitted_api_key(self.api, headers, stage)
            identity.update(apiKey=key.value, apiKeyId=key.id)
        query_pairs = parse_qsl(raw_query, keep_blank_values=True)
        if method.validate_parameters:
            check_parameters(method, headers, query_pairs, path_parameters)
        if method.validate_body:
            check_body(method, headers, body)
        target = method.integration.function_target
        if self.api.kind == "http" and target is not None and method.integration.type == "AWS_PROXY":
            event = http_api_event(
                request, self.api, resource, stage, raw_query, query_pairs, path_parameters, headers, body, authorizer,
                context, server_host=self.host, server_port=self.port,
            )  # fmt: skip
            return self._invoke(target, event, method, context)
        if method.integration.type == "MOCK":
            return mock_reply(method, context)
        if method.integration.type not in ("AWS_PROXY",) or target is None:
            raise GatewayRejection(
                "API_CONFIGURATION_ERROR",
                f"local mode emulates Lambda proxy and MOCK integrations, not {method.integration.type}",
            )
        event = proxy_event(
            request,
            self.api,
            resource,
            stage,
            path,
            query_pairs,
            path_parameters,
            headers,
            body,
            identity,
            authorizer,
            context,
            server_host=self.host,
            server_port=self.port,
        )
        trace = next((v for k, v in headers.items() if k.lower() == "x-amzn-trace-id"), None)
        return self._invoke(target, event, method, context, trace)

    def _invoke(
        self, target: str, event: dict[str, Any], method: Method, context: dict[str, Any], trace: str | None = None
    ) -> GatewayReply:
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = self.environments.invoke(target, json.dumps(event), trace_header=trace)
            except Exception as error:
                outcome["error"] = error

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(method.integration.timeout_ms / 1000)
        if worker.is_alive():
            raise GatewayRejection("INTEGRATION_TIMEOUT")
        error = outcome.get("error")
        if isinstance(error, Throttled):
            raise GatewayRejection("THROTTLED")
        if isinstance(error, PayloadTooLarge):
            raise GatewayRejection("REQUEST_TOO_LARGE")
        if isinstance(error, UnknownFunction):
            raise GatewayRejection("API_CONFIGURATION_ERROR", f"the integration names {target}, which is not deployed")
        if error is not None:
            raise error
        result = outcome["result"]
        context["integration.latency"] = int(result.duration_ms)
        if not result.ok:
            # A function error (or timeout) in a proxy integration is a 502, as in API Gateway.
            raise GatewayRejection("DEFAULT_5XX", "Internal server error", status=502)
        return proxy_reply(result.json(), context)

    def _log(self, stage: Stage, context: dict[str, Any]) -> None:
        if self.console is not None:
            self.console(
                f"{context['httpMethod']} {context['path']} -> {context['status']} ({context['responseLatency']} ms) "
                f"[{self.api.logical_id} {context['requestId']}]"
            )
        if self._access_log is None or not stage.access_log_format:
            return
        line = render_template(stage.access_log_format, {**context, "_access_log": True})
        with self._access_lock:
            self._access_log.parent.mkdir(parents=True, exist_ok=True)
            with self._access_log.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")


def read_body(request: BaseHTTPRequestHandler, length: int) -> bytes:
    """The body of ``request``: ``length`` bytes, or its chunks (read up to just past :data:`MAX_BODY_BYTES`)."""
    if "chunked" in (request.headers.get("Transfer-Encoding") or "").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(request.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                request.rfile.readline()
                break
            chunks.append(request.rfile.read(size))
            request.rfile.readline()
            total += size
            if total > MAX_BODY_BYTES:
                request.close_connection = True
                break
        return b"".join(chunks)
    return request.rfile.read(length) if length else b""


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_parameters(
    method: Method, headers: dict[str, str], query: list[tuple[str, str]], path_parameters: dict[str, str]
) -> None:
    lowered = {k.lower() for k in headers}
    names = {k for k, _ in query}
    for key, required in method.request_parameters.items():
        if not required:
            continue
        location, _, name = key.removeprefix("method.request.").partition(".")
        present = (
            (location == "header" and name.lower() in lowered)
            or (location == "querystring" and name in names)
            or (location == "path" and name in path_parameters)
        )
        if not present:
            raise GatewayRejection("BAD_REQUEST_PARAMETERS", f"Missing required request parameters: [{name}]")


def check_body(method: Method, headers: dict[str, str], body: bytes) -> None:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "application/json")
    content_type = content_type.split(";")[0].strip().lower() or "application/json"
    schema = method.request_models.get(content_type) or method.request_models.get("$default")
    if schema is None:
        return
    try:
        # NaN and Infinity are not JSON (RFC 8259); nesting deep enough to exhaust the parser's recursion is refused too.
        document = json.loads(body or b"null", parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise GatewayRejection("BAD_REQUEST_BODY", "Invalid request body", validation_error="[Invalid JSON]") from None
    try:
        errors = sorted(Draft4Validator(schema).iter_errors(document), key=lambda e: list(e.path))
    except SchemaError:
        raise GatewayRejection("API_CONFIGURATION_ERROR", "the request model is not a valid JSON schema") from None
    except RecursionError:
        raise GatewayRejection("BAD_REQUEST_BODY", "Invalid request body", validation_error="[Too deeply nested]") from None
    if errors:
        # Say which rule failed, never the offending value: API Gateway's own text quotes input.
        summary = "; ".join(f"{'/'.join(str(p) for p in e.path) or '(body)'}: {e.validator} rule failed" for e in errors[:5])
        raise GatewayRejection("BAD_REQUEST_BODY", "Invalid request body", validation_error=f"[{summary}]")


__all__ = ["MAX_BODY_BYTES", "RequestPipeline", "check_body", "check_parameters", "read_body"]
