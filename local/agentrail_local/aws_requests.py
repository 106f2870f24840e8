"""Which AWS API call an HTTP request to moto is: its service, its operation and its parameters, and who made it."""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session

from agentrail_local.awslambda.observers import FUNCTION_APP_ID_PREFIX, LOCAL_APP_ID, POLLER_APP_ID, STEP_FUNCTIONS_APP_ID

_APP_ID = re.compile(r"(?:^|\s)app/(\S+)")
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
#: SigV4 signing names whose botocore service name differs (the signing name is also the IAM action prefix).
_SERVICE_OF_SIGNING_NAME = {"states": "stepfunctions", "monitoring": "cloudwatch", "email": "ses", "execute-api": "apigateway"}
_session = botocore.session.get_session()


def caller_app_id(environ: Mapping[str, Any]) -> str | None:
    """The ``app/<id>`` botocore put in the request's User-Agent, if any."""
    found = _APP_ID.search(str(environ.get("HTTP_USER_AGENT", "")))
    return found.group(1) if found else None


def caller_kind(app_id: str | None) -> str | None:
    """``function``, ``integration`` (a Step Functions service integration), ``poller``, ``local`` or None (unknown)."""
    if app_id is None:
        return None
    if app_id.startswith(FUNCTION_APP_ID_PREFIX):
        return "function"
    return {STEP_FUNCTIONS_APP_ID: "integration", POLLER_APP_ID: "poller", LOCAL_APP_ID: "local"}.get(app_id)


@dataclass(frozen=True)
class AwsCall:
    """One API call: ``service`` is the signing name (the IAM prefix: ``dynamodb``, ``sqs``, ``states``...)."""

    service: str
    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.service}:{self.operation}"


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for moto to read."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def aws_call(environ: Mapping[str, Any], body: bytes) -> AwsCall:
    """The service and operation of a signed request (JSON target, Query ``Action`` or a REST route of the service)."""
    scope = _CREDENTIAL_SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    service = scope.group(1) if scope else "unknown"
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return AwsCall(service, target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {})
    query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    if "x-www-form-urlencoded" in str(environ.get("CONTENT_TYPE", "")):
        form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        if "Action" in form:
            return AwsCall(service, form["Action"][0], {k: v[0] for k, v in form.items()})
    if "Action" in query:
        return AwsCall(service, query["Action"][0], {k: v[0] for k, v in query.items()})
    path = unquote(str(environ.get("PATH_INFO", "/")))
    method = str(environ.get("REQUEST_METHOD", "GET"))
    operation = _rest_operation(service, method, path, set(query))
    if operation.endswith("Copy") or operation == "CopyObject":
        # S3 tells a copy from a put (or an uploaded part) only by its x-amz-copy-source header.
        copying = "HTTP_X_AMZ_COPY_SOURCE" in environ
        operation = (
            operation if copying else {"CopyObject": "PutObject", "UploadPartCopy": "UploadPart"}.get(operation, operation)
        )
    return AwsCall(service, operation, {})


@functools.cache
def _rest_routes(signing_name: str) -> tuple[tuple[str, re.Pattern[str], frozenset[str], str], ...]:
    """(method, path pattern, query keys the route needs, operation) of each REST operation, most specific first."""
    name = _SERVICE_OF_SIGNING_NAME.get(signing_name, signing_name)
    try:
        model = _session.get_service_model(name)
    except Exception:  # an unknown service: no routes
        return ()
    routes = []
    for operation in model.operation_names:
        http = model.operation_model(operation).http
        uri, _, query = str(http.get("requestUri", "/")).partition("?")
        pattern = re.sub(r"\\\{[^}]+?\\\+\\\}", ".+", re.escape(uri))
        pattern = re.sub(r"\\\{[^}]+?\\\}", "[^/]+", pattern)
        needed = frozenset(part.split("=")[0] for part in query.split("&") if part)
        routes.append(
            (len(needed), len(re.sub(r"\{[^}]+\}", "", uri)), str(http.get("method", "GET")), pattern, needed, operation)
        )
    routes.sort(key=lambda route: (-route[0], -route[1]))
    return tuple((method, re.compile(pattern + "/?"), needed, op) for _, _, method, pattern, needed, op in routes)


def _rest_operation(service: str, method: str, path: str, query_keys: set[str]) -> str:
    for route_method, pattern, needed, operation in _rest_routes(service):
        if route_method == method and needed <= query_keys and pattern.fullmatch(path):
            return operation
    return f"{method} {'/'.join(path.split('/')[:2])}"


__all__ = ["AwsCall", "aws_call", "caller_app_id", "caller_kind", "read_body"]
