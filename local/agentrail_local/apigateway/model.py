"""A local API Gateway: serves each ``AWS::ApiGateway::RestApi`` of the deployed templates on ``127.0.0.1``.

The API is rebuilt from the template (resources, methods, validators,
models, gateway responses, stages, API keys and usage plans), and requests go
through the same steps as in API Gateway: route match, size limit, stage
throttling, authentication (IAM SigV4, API keys, Cognito), request
validation, then the Lambda proxy integration with a REST (v1) event.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import responses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from jsonschema import Draft4Validator
from jsonschema.exceptions import SchemaError

from agentrail_local.apigateway.auth import (
    DEFAULT_PRINCIPALS,
    LocalPrincipal,
    SignatureError,
    TokenError,
    jwt_claims,
    verify_sigv4,
)
from agentrail_local.awslambda.environments import ExecutionEnvironments, PayloadTooLarge, Throttled, UnknownFunction
from agentrail_local.cloudformation.resources.base import ACCOUNT_ID, DeployedResource
from agentrail_local.cloudformation.intrinsics import StackDeployment

#: API Gateway's payload limit for REST APIs.
MAX_BODY_BYTES = 10 * 1024 * 1024
#: API Gateway's default integration timeout.
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000
#: Statuses that end at the headers (RFC 9110): whatever body the integration returned is dropped.
BODILESS_STATUSES = frozenset({204, 304})
PATTERN_TAG = "agentrail:pattern"

Console = Callable[[str], None]

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
    "INVALID_SIGNATURE": (403, "The request signature we calculated does not match the signature you provided.", "InvalidSignatureException"),
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


# -- the API as the template describes it -----------------------------------------------------


@dataclass
class TokenBucket:
    """API Gateway's throttle: ``rate`` requests per second, bursts up to ``burst``."""

    rate: float
    burst: int
    _tokens: float = -1.0
    _updated: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._tokens < 0:
                self._tokens, self._updated = float(self.burst), now
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


@dataclass
class GatewayResponse:
    type: str
    status: int | None
    templates: dict[str, str]
    parameters: dict[str, str]


@dataclass
class Integration:
    type: str
    uri: str | None
    timeout_ms: int
    responses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def function_target(self) -> str | None:
        """The Lambda function (or alias/version) ARN inside a Lambda integration URI."""
        if not self.uri or ":lambda:path/" not in self.uri:
            return None
        match = re.search(r"/functions/(.+)/invocations$", self.uri)
        return match.group(1) if match else None


@dataclass
class Method:
    http_method: str
    authorization_type: str
    api_key_required: bool
    integration: Integration
    authorizer: dict[str, Any] | None = None
    authorization_scopes: tuple[str, ...] = ()
    validate_body: bool = False
    validate_parameters: bool = False
    request_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    request_parameters: dict[str, bool] = field(default_factory=dict)
    operation_name: str | None = None


@dataclass
class ApiResource:
    id: str
    path_part: str
    parent: ApiResource | None = None
    children: list[ApiResource] = field(default_factory=list)
    methods: dict[str, Method] = field(default_factory=dict)

    @property
    def path(self) -> str:
        if self.parent is None:
            return "/"
        parent = self.parent.path
        return (parent.rstrip("/") + "/" + self.path_part) if parent != "/" else "/" + self.path_part

    @property
    def is_parameter(self) -> bool:
        return self.path_part.startswith("{") and self.path_part.endswith("}")

    @property
    def is_greedy(self) -> bool:
        return self.path_part.endswith("+}")

    @property
    def parameter_name(self) -> str:
        return self.path_part.strip("{}").removesuffix("+")

    def method_for(self, http_method: str) -> Method | None:
        return self.methods.get(http_method) or self.methods.get("ANY")

    def walk(self) -> list[ApiResource]:
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


def match_route(root: ApiResource, path: str) -> tuple[ApiResource, dict[str, str]] | None:
    """The resource a path selects, with its path parameters; literal parts win over ``{param}``, which wins over ``{proxy+}``."""
    segments = [unquote(s) for s in path.strip("/").split("/") if s] if path.strip("/") else []

    def descend(node: ApiResource, rest: list[str], params: dict[str, str]) -> tuple[ApiResource, dict[str, str]] | None:
        if not rest:
            return node, params
        head = rest[0]
        ordered = sorted(node.children, key=lambda c: (c.is_greedy, c.is_parameter))
        for child in ordered:
            if child.is_greedy:
                return child, {**params, child.parameter_name: "/".join(rest)}
            if child.is_parameter:
                found = descend(child, rest[1:], {**params, child.parameter_name: head})
            elif child.path_part == head:
                found = descend(child, rest[1:], params)
            else:
                continue
            if found is not None:
                return found
        return None

    return descend(root, segments, {})


@dataclass
class Stage:
    name: str
    variables: dict[str, str]
    method_settings: list[dict[str, Any]]
    access_log_format: str | None = None
    _buckets: dict[tuple[str, str], TokenBucket | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bucket(self, resource_path: str, http_method: str) -> TokenBucket | None:
        """The token bucket of one method; settings for the exact method win over ``/*/*``."""
        key = (resource_path, http_method)
        with self._lock:
            if key not in self._buckets:
                self._buckets[key] = self._bucket_for(resource_path, http_method)
            return self._buckets[key]

    def _bucket_for(self, resource_path: str, http_method: str) -> TokenBucket | None:
        escaped = resource_path.replace("/", "~1")
        best, best_rank = None, -1
        for setting in self.method_settings:
            path = str(setting.get("ResourcePath", "/*"))
            method = str(setting.get("HttpMethod", "*"))
            path_ok = path in ("/*", f"/{escaped}", resource_path)
            method_ok = method in ("*", http_method)
            if not (path_ok and method_ok):
                continue
            rank = (path != "/*") * 2 + (method != "*")
            if rank > best_rank and ("ThrottlingRateLimit" in setting or "ThrottlingBurstLimit" in setting):
                best, best_rank = setting, rank
        if best is None:
            return None
        return TokenBucket(rate=float(best.get("ThrottlingRateLimit", 10_000)), burst=int(best.get("ThrottlingBurstLimit", 5_000)))


@dataclass
class ApiKey:
    id: str
    value: str
    enabled: bool
    logical_id: str


@dataclass
class UsagePlan:
    id: str
    stages: set[tuple[str, str]]
    key_ids: set[str]
    throttle: dict[str, Any]
    quota: dict[str, Any]
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _used: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, key_id: str) -> str | None:
        """``None`` when the key may make another request; else the gateway response type."""
        with self._lock:
            if self.throttle:
                bucket = self._buckets.setdefault(
                    key_id, TokenBucket(float(self.throttle.get("RateLimit", 10_000)), int(self.throttle.get("BurstLimit", 5_000)))
                )
                if not bucket.take():
                    return "THROTTLED"
            if self.quota.get("Limit"):
                period = {"DAY": "%Y-%m-%d", "WEEK": "%Y-%W", "MONTH": "%Y-%m"}.get(str(self.quota.get("Period", "DAY")), "%Y-%m-%d")
                slot = (key_id, time.strftime(period, time.gmtime()))
                if self._used.get(slot, 0) >= int(self.quota["Limit"]):
                    return "QUOTA_EXCEEDED"
                self._used[slot] = self._used.get(slot, 0) + 1
        return None


@dataclass
class RestApi:
    """One REST API rebuilt from a deployed template."""

    stack_name: str
    logical_id: str
    api_id: str
    name: str
    root: ApiResource
    stages: dict[str, Stage]
    gateway_responses: dict[str, GatewayResponse]
    api_keys: dict[str, ApiKey]
    usage_plans: list[UsagePlan]
    binary_media_types: tuple[str, ...] = ()
    pattern: str | None = None

    @property
    def default_stage(self) -> Stage:
        return next(iter(self.stages.values()))

    @property
    def auth_kind(self) -> str:
        """``iam``, ``api_key``, ``cognito``, ``custom``, ``none`` or a ``+``-joined mix, over every method."""
        kinds: set[str] = set()
        for resource in self.root.walk():
            for method in resource.methods.values():
                kind = {"AWS_IAM": "iam", "COGNITO_USER_POOLS": "cognito", "CUSTOM": "custom"}.get(method.authorization_type)
                if kind is None:
                    kind = "api_key" if method.api_key_required else "none"
                kinds.add(kind)
        return "+".join(sorted(kinds)) or "none"

    def routes(self) -> list[str]:
        return [f"{m} {r.path}" for r in self.root.walk() for m in sorted(r.methods)]

    @classmethod
    def from_deployment(cls, deployment: StackDeployment, api: DeployedResource) -> RestApi:
        """Rebuild the API whose ``Ref`` is ``api.ref`` from the resources of ``deployment``."""
        api_id = api.ref
        of_api = [r for r in deployment.resources.values() if r.properties.get("RestApiId") == api_id]
        models = {r.ref: r.properties.get("Schema", {}) for r in of_api if r.type == "AWS::ApiGateway::Model"}
        validators = {r.ref: r.properties for r in of_api if r.type == "AWS::ApiGateway::RequestValidator"}
        authorizers = {r.ref: r.properties for r in of_api if r.type == "AWS::ApiGateway::Authorizer"}
        root = ApiResource(id=api.attributes["RootResourceId"], path_part="")
        nodes = {root.id: root}
        pending = [r for r in of_api if r.type == "AWS::ApiGateway::Resource"]
        while pending:
            placed = [r for r in pending if r.properties["ParentId"] in nodes]
            if not placed:
                raise ValueError(f"{api.logical_id}: resources with unknown parents: {', '.join(r.logical_id for r in pending)}")
            for r in placed:
                parent = nodes[r.properties["ParentId"]]
                node = ApiResource(id=r.ref, path_part=str(r.properties["PathPart"]), parent=parent)
                parent.children.append(node)
                nodes[node.id] = node
                pending.remove(r)
        for r in of_api:
            if r.type != "AWS::ApiGateway::Method":
                continue
            p = r.properties
            integration = p.get("Integration", {})
            validator = validators.get(p.get("RequestValidatorId"), {})
            nodes[p["ResourceId"]].methods[str(p["HttpMethod"]).upper()] = Method(
                http_method=str(p["HttpMethod"]).upper(),
                authorization_type=str(p.get("AuthorizationType", "NONE")),
                api_key_required=bool(p.get("ApiKeyRequired", False)),
                integration=Integration(
                    type=str(integration.get("Type", "MOCK")),
                    uri=integration.get("Uri"),
                    timeout_ms=int(integration.get("TimeoutInMillis", DEFAULT_INTEGRATION_TIMEOUT_MS)),
                    responses=list(integration.get("IntegrationResponses", [])),
                ),
                authorizer=authorizers.get(p.get("AuthorizerId")),
                authorization_scopes=tuple(p.get("AuthorizationScopes", ())),
                validate_body=bool(validator.get("ValidateRequestBody", False)),
                validate_parameters=bool(validator.get("ValidateRequestParameters", False)),
                request_models={ct: models.get(name, {}) for ct, name in (p.get("RequestModels") or {}).items()},
                request_parameters={k: bool(v) for k, v in (p.get("RequestParameters") or {}).items()},
                operation_name=p.get("OperationName"),
            )
        stages: dict[str, Stage] = {}
        for r in of_api:
            if r.type == "AWS::ApiGateway::Stage":
                stages[r.ref] = Stage(
                    name=r.ref,
                    variables=dict(r.properties.get("Variables") or {}),
                    method_settings=list(r.properties.get("MethodSettings") or []),
                    access_log_format=(r.properties.get("AccessLogSetting") or {}).get("Format"),
                )
            elif r.type == "AWS::ApiGateway::Deployment" and r.properties.get("StageName"):
                name = r.properties["StageName"]
                described = r.properties.get("StageDescription") or {}
                stages.setdefault(name, Stage(name=name, variables=dict(described.get("Variables") or {}), method_settings=list(described.get("MethodSettings") or [])))
        if not stages:
            stages["prod"] = Stage(name="prod", variables={}, method_settings=[])
        responses = {
            str(r.properties["ResponseType"]): GatewayResponse(
                type=str(r.properties["ResponseType"]),
                status=int(r.properties["StatusCode"]) if r.properties.get("StatusCode") else None,
                templates=dict(r.properties.get("ResponseTemplates") or {}),
                parameters=dict(r.properties.get("ResponseParameters") or {}),
            )
            for r in of_api
            if r.type == "AWS::ApiGateway::GatewayResponse"
        }
        all_keys = {
            r.ref: ApiKey(id=r.ref, value=r.local["value"], enabled=r.local["enabled"], logical_id=r.logical_id)
            for r in deployment.of_type("AWS::ApiGateway::ApiKey")
        }
        plans: list[UsagePlan] = []
        for r in deployment.of_type("AWS::ApiGateway::UsagePlan"):
            stages_of_plan = {(s.get("ApiId"), s.get("Stage")) for s in r.properties.get("ApiStages", ())}
            if not any(api_ref == api_id for api_ref, _ in stages_of_plan):
                continue
            key_ids = {
                k.properties["KeyId"]
                for k in deployment.of_type("AWS::ApiGateway::UsagePlanKey")
                if k.properties.get("UsagePlanId") == r.ref
            }
            plans.append(UsagePlan(r.ref, stages_of_plan, key_ids, dict(r.properties.get("Throttle") or {}), dict(r.properties.get("Quota") or {})))
        keys = {k.value: k for k in all_keys.values() if any(k.id in plan.key_ids for plan in plans)}
        tags = {t["Key"]: t["Value"] for t in api.properties.get("Tags", []) if isinstance(t, dict)}
        return cls(
            stack_name=deployment.stack_name,
            logical_id=api.logical_id,
            api_id=api_id,
            name=str(api.properties.get("Name", api.logical_id)),
            root=root,
            stages=stages,
            gateway_responses=responses,
            api_keys=keys,
            usage_plans=plans,
            binary_media_types=tuple(api.properties.get("BinaryMediaTypes") or ()),
            pattern=tags.get(PATTERN_TAG),
        )


# -- serving ----------------------------------------------------------------------------------


@dataclass
class GatewayReply:
    """Status, headers and body of one HTTP answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class GatewayRejection(Exception):
    """API Gateway answers for itself with the gateway response of ``response_type``."""

    def __init__(self, response_type: str, message: str | None = None, *, validation_error: str = "", status: int | None = None) -> None:
        super().__init__(response_type)
        self.response_type = response_type
        self.message = message
        self.validation_error = validation_error
        self.status = status


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


class LocalApiGateway:
    """Serves one :class:`RestApi` on ``host:port`` through a ``ThreadingHTTPServer``.

    Parameters
    ----------
    api:
        The API to serve.
    environments:
        Runs the Lambda integrations.
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
        host: str = "127.0.0.1",
        port: int = 0,
        principals: tuple[LocalPrincipal, ...] = DEFAULT_PRINCIPALS,
        access_log: Path | None = None,
        console: Console | None = None,
    ) -> None:
        self.api = api
        self.environments = environments
        self.principals = principals
        self.console = console
        self._access_log = access_log
        self._access_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/{self.api.default_stage.name}"

    def start(self) -> LocalApiGateway:
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"gateway-{self.api.logical_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "agentrail-local"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without this, Nagle's
                # algorithm and delayed ACKs add 40 ms to every response.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                reply = gateway.handle(self)
                self.send_response_only(reply.status, responses.get(reply.status, ""))
                self.send_header("Date", self.date_time_string())
                bodiless = reply.status in BODILESS_STATUSES or 100 <= reply.status < 200
                for name, value in reply.headers:
                    if not (bodiless and name.lower() == "content-length"):
                        self.send_header(name, value)
                if not bodiless:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                # A body after a 204 or 304 would be read as the start of the next response on this connection.
                if self.command != "HEAD" and not bodiless:
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                return

        return Handler

    # -- one request --------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> GatewayReply:
        started = time.time()
        request_id = str(uuid.uuid4())
        raw_path, _, raw_query = request.path.partition("?")
        stage, path = self._stage_and_path(raw_path)
        headers = {k: v for k, v in request.headers.items()}
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
            )
            request.close_connection = request.close_connection or rejected.response_type == "REQUEST_TOO_LARGE"
        except Exception as error:  # noqa: BLE001 - a bug here must still answer like API Gateway, not drop the connection
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
        body = _read_body(request, length)
        if len(body) > MAX_BODY_BYTES:
            raise GatewayRejection("REQUEST_TOO_LARGE")
        matched = match_route(self.api.root, path)
        method = matched[0].method_for(request.command) if matched else None
        if matched is None or method is None:
            raise GatewayRejection("MISSING_AUTHENTICATION_TOKEN")
        resource, path_parameters = matched
        context["resourcePath"] = resource.path
        context["resourceId"] = resource.id
        bucket = stage.bucket(resource.path, method.http_method)
        if bucket is not None and not bucket.take():
            raise GatewayRejection("THROTTLED")
        identity: dict[str, Any] = _empty_identity(context)
        authorizer: dict[str, Any] | None = None
        if method.authorization_type == "AWS_IAM":
            principal = self._verify_signature(request, headers, body)
            identity.update(
                accessKey=principal.access_key_id,
                accountId=ACCOUNT_ID,
                caller=principal.user_id,
                user=principal.user_id,
                userArn=principal.user_arn,
            )
            context["identity.user"] = principal.user_id
            context["identity.caller"] = principal.user_id
        elif method.authorization_type == "COGNITO_USER_POOLS":
            authorizer = {"claims": self._cognito_claims(method, headers)}
        elif method.authorization_type == "CUSTOM":
            raise GatewayRejection("AUTHORIZER_CONFIGURATION_ERROR", "Lambda authorizers are not emulated by local mode")
        if method.api_key_required:
            key = self._api_key(headers, stage)
            identity.update(apiKey=key.value, apiKeyId=key.id)
        query_pairs = parse_qsl(raw_query, keep_blank_values=True)
        if method.validate_parameters:
            check_parameters(method, headers, query_pairs, path_parameters)
        if method.validate_body:
            check_body(method, headers, body)
        target = method.integration.function_target
        if method.integration.type == "MOCK":
            return _mock_reply(method, context)
        if method.integration.type not in ("AWS_PROXY",) or target is None:
            raise GatewayRejection("API_CONFIGURATION_ERROR", f"local mode emulates Lambda proxy and MOCK integrations, not {method.integration.type}")
        event = self._event(request, resource, stage, path, query_pairs, path_parameters, headers, body, identity, authorizer, context)
        return self._invoke(target, event, method, context)

    # -- authentication ------------------------------------------------------------------

    def _verify_signature(self, request: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> LocalPrincipal:
        host = headers.get("Host") or f"{self.host}:{self.port}"
        try:
            return verify_sigv4(
                method=request.command, url=f"http://{host}{request.path}", headers=headers, body=body, principals=self.principals
            )
        except SignatureError as error:
            if error.missing:
                raise GatewayRejection("MISSING_AUTHENTICATION_TOKEN") from None
            raise GatewayRejection("INVALID_SIGNATURE", str(error)) from None

    def _cognito_claims(self, method: Method, headers: dict[str, str]) -> dict[str, str]:
        source = str((method.authorizer or {}).get("IdentitySource", "method.request.header.Authorization"))
        header = source.rsplit(".", 1)[-1]
        token = next((v for k, v in headers.items() if k.lower() == header.lower()), None)
        if not token:
            raise GatewayRejection("UNAUTHORIZED")
        try:
            claims = jwt_claims(token)
        except TokenError:
            raise GatewayRejection("UNAUTHORIZED") from None
        if "exp" in claims and float(claims["exp"]) < time.time():
            raise GatewayRejection("UNAUTHORIZED", "The incoming token has expired")
        pools = [str(arn).rsplit("/", 1)[-1] for arn in (method.authorizer or {}).get("ProviderARNs", ())]
        issuer = str(claims.get("iss", ""))
        if pools and not any(issuer.endswith("/" + pool) for pool in pools):
            raise GatewayRejection("UNAUTHORIZED")
        if method.authorization_scopes:
            granted = set(str(claims.get("scope", "")).split())
            if not granted & set(method.authorization_scopes):
                raise GatewayRejection("UNAUTHORIZED")
        return {k: v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in claims.items()}

    def _api_key(self, headers: dict[str, str], stage: Stage) -> ApiKey:
        value = next((v for k, v in headers.items() if k.lower() == "x-api-key"), None)
        key = self.api.api_keys.get(value or "")
        if key is None or not key.enabled:
            raise GatewayRejection("INVALID_API_KEY")
        plans = [p for p in self.api.usage_plans if key.id in p.key_ids and (self.api.api_id, stage.name) in p.stages]
        if not plans:
            raise GatewayRejection("INVALID_API_KEY")
        refused = plans[0].admit(key.id)
        if refused:
            raise GatewayRejection(refused)
        return key

    # -- integration ---------------------------------------------------------------------

    def _event(
        self,
        request: BaseHTTPRequestHandler,
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
    ) -> dict[str, Any]:
        host = headers.get("Host", f"{self.host}:{self.port}")
        headers = {
            **headers,
            "X-Forwarded-For": context["identity.sourceIp"],
            "X-Forwarded-Port": str(self.port),
            "X-Forwarded-Proto": "http",
            "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
        }
        multi_headers: dict[str, list[str]] = {}
        for name in request.headers.keys():
            multi_headers.setdefault(name, request.headers.get_all(name) or [])
        for name in ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id"):
            multi_headers[name] = [headers[name]]
        multi_query: dict[str, list[str]] = {}
        for name, value in query_pairs:
            multi_query.setdefault(name, []).append(value)
        content_type = headers.get("Content-Type", "").split(";")[0].strip()
        binary = _is_binary(content_type, self.api.binary_media_types)
        if binary:
            text_body: str | None = base64.b64encode(body).decode() if body else None
        else:
            text_body = body.decode("utf-8", errors="replace") if body else None
        request_context: dict[str, Any] = {
            "accountId": ACCOUNT_ID,
            "apiId": self.api.api_id,
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

    def _invoke(self, target: str, event: dict[str, Any], method: Method, context: dict[str, Any]) -> GatewayReply:
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = self.environments.invoke(target, json.dumps(event))
            except Exception as error:  # noqa: BLE001 - handed to the waiting request thread
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

    # -- responses -----------------------------------------------------------------------

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


def gateway_response(
    api: RestApi,
    response_type: str,
    context: Mapping[str, Any],
    *,
    request_headers: Mapping[str, str] | None = None,
    message: str | None = None,
    validation_error: str = "",
    status: int | None = None,
) -> GatewayReply:
    """API Gateway's own answer of ``response_type``, customized by the API's ``AWS::ApiGateway::GatewayResponse``.

    A type without its own customization takes ``DEFAULT_4XX`` or ``DEFAULT_5XX``'s
    template and headers but keeps its own status code, as API Gateway does.
    """
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
    return GatewayReply(default_status, headers, render_template(template, values).encode())


def _read_body(request: BaseHTTPRequestHandler, length: int) -> bytes:
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


def _empty_identity(context: Mapping[str, Any]) -> dict[str, Any]:
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


def check_parameters(method: Method, headers: dict[str, str], query: list[tuple[str, str]], path_parameters: dict[str, str]) -> None:
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
        document = json.loads(body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise GatewayRejection("BAD_REQUEST_BODY", "Invalid request body", validation_error="[Invalid JSON]") from None
    try:
        errors = sorted(Draft4Validator(schema).iter_errors(document), key=lambda e: list(e.path))
    except SchemaError:
        raise GatewayRejection("API_CONFIGURATION_ERROR", "the request model is not a valid JSON schema") from None
    if errors:
        # Say which rule failed, never the offending value: API Gateway's own text quotes input.
        summary = "; ".join(f"{'/'.join(str(p) for p in e.path) or '(body)'}: {e.validator} rule failed" for e in errors[:5])
        raise GatewayRejection("BAD_REQUEST_BODY", "Invalid request body", validation_error=f"[{summary}]")


def _parameter_value(value: str, request_headers: Mapping[str, str]) -> str:
    if value.startswith("'") and value.endswith("'"):
        return value[1:-1]
    if value.startswith("method.request.header."):
        name = value.removeprefix("method.request.header.").lower()
        return next((v for k, v in request_headers.items() if k.lower() == name), "")
    return value


def _mock_reply(method: Method, context: dict[str, Any]) -> GatewayReply:
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
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name), str(value)))
    for name, value in single.items():
        if name not in multi:
            headers.append((str(name), str(value)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
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


def rest_apis(deployments: list[StackDeployment]) -> list[RestApi]:
    """Every REST API of the deployed stacks."""
    return [RestApi.from_deployment(d, api) for d in deployments for api in d.of_type("AWS::ApiGateway::RestApi")]


__all__ = [
    "BODILESS_STATUSES",
    "DEFAULT_INTEGRATION_TIMEOUT_MS",
    "GatewayRejection",
    "GatewayReply",
    "check_body",
    "check_parameters",
    "gateway_response",
    "proxy_reply",
    "MAX_BODY_BYTES",
    "ApiResource",
    "LocalApiGateway",
    "RestApi",
    "Stage",
    "TokenBucket",
    "match_route",
    "render_template",
    "rest_apis",
]
