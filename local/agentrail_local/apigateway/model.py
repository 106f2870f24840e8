"""The REST API as the template describes it: resources, methods, authorizers, models and validators, stages, API keys, usage
plans; and an HTTP API (``AWS::ApiGatewayV2::*``) as the same shape: its routes as resources and methods, its stage's
throttling and access log format, its IAM or JWT authorizers."""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from agentrail_local.cloudformation.deployer import StackDeployment
from agentrail_local.cloudformation.resources.base import DeployedResource

#: API Gateway's default integration timeout.
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000
#: An HTTP API's default (and largest) integration timeout.
DEFAULT_HTTP_INTEGRATION_TIMEOUT_MS = 30_000
PATTERN_TAG = "agentrail:pattern"


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

    def seconds_until_token(self) -> int:
        """Whole seconds until :meth:`take` can succeed again (at least 1): a 429's ``Retry-After``."""
        with self._lock:
            missing = 1.0 - max(self._tokens, 0.0)
        return max(1, math.ceil(missing / self.rate)) if self.rate > 0 else 1


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
        """The Lambda function (or alias/version) ARN inside a Lambda integration URI (an HTTP API's is the ARN)."""
        if self.uri and self.uri.split(":")[2:3] == ["lambda"] and ":function:" in self.uri:
            return self.uri
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
        return TokenBucket(
            rate=float(best.get("ThrottlingRateLimit", 10_000)), burst=int(best.get("ThrottlingBurstLimit", 5_000))
        )


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
                    key_id,
                    TokenBucket(float(self.throttle.get("RateLimit", 10_000)), int(self.throttle.get("BurstLimit", 5_000))),
                )
                if not bucket.take():
                    return "THROTTLED"
            if self.quota.get("Limit"):
                period = {"DAY": "%Y-%m-%d", "WEEK": "%Y-%W", "MONTH": "%Y-%m"}.get(
                    str(self.quota.get("Period", "DAY")), "%Y-%m-%d"
                )
                slot = (key_id, time.strftime(period, time.gmtime()))
                if self._used.get(slot, 0) >= int(self.quota["Limit"]):
                    return "QUOTA_EXCEEDED"
                self._used[slot] = self._used.get(slot, 0) + 1
        return None


@dataclass
class RestApi:
    """One REST API (or, with ``kind="http"``, an HTTP API) rebuilt from a deployed template."""

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
    #: ``rest`` (payload 1.0 events, gateway responses, validation, API keys) or ``http`` (payload 2.0 events).
    kind: str = "rest"

    @property
    def default_stage(self) -> Stage:
        return next(iter(self.stages.values()))

    @property
    def auth_kind(self) -> str:
        """``iam``, ``api_key``, ``cognito``, ``custom``, ``none`` or a ``+``-joined mix, over every method."""
        kinds: set[str] = set()
        for resource in self.root.walk():
            for method in resource.methods.values():
                kind = {"AWS_IAM": "iam", "COGNITO_USER_POOLS": "cognito", "JWT": "cognito", "CUSTOM": "custom"}.get(
                    method.authorization_type
                )
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
                stages.setdefault(
                    name,
                    Stage(
                        name=name,
                        variables=dict(described.get("Variables") or {}),
                        method_settings=list(described.get("MethodSettings") or []),
                    ),
                )
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
            plans.append(
                UsagePlan(
                    r.ref,
                    stages_of_plan,
                    key_ids,
                    dict(r.properties.get("Throttle") or {}),
                    dict(r.properties.get("Quota") or {}),
                )
            )
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


def http_api(deployment: StackDeployment, api: DeployedResource) -> RestApi:
    """The HTTP API whose ``Ref`` is ``api.ref``, rebuilt from the ``AWS::ApiGatewayV2::*`` resources of ``deployment``.

    Each route (``POST /sessions/{id}``) becomes a resource and a method, so routes match as a REST API's do; the
    stage's ``DefaultRouteSettings`` throttle every route.
    """
    api_id = api.ref
    of_api = [r for r in deployment.resources.values() if r.properties.get("ApiId") == api_id]
    integrations = {r.ref: r.properties for r in of_api if r.type == "AWS::ApiGatewayV2::Integration"}
    authorizers = {r.ref: r.properties for r in of_api if r.type == "AWS::ApiGatewayV2::Authorizer"}
    root = ApiResource(id=f"{api_id}-root", path_part="")
    for r in of_api:
        if r.type != "AWS::ApiGatewayV2::Route":
            continue
        p = r.properties
        method_name, _, path = str(p["RouteKey"]).partition(" ")
        if not path:
            continue  # $default: no route of ours uses it
        node = root
        for part in [s for s in path.strip("/").split("/") if s]:
            child = next((c for c in node.children if c.path_part == part), None)
            if child is None:
                child = ApiResource(id=f"{api_id}-{r.logical_id}-{part}", path_part=part, parent=node)
                node.children.append(child)
            node = child
        integration = integrations.get(str(p.get("Target", "")).removeprefix("integrations/"), {})
        node.methods[method_name.upper()] = Method(
            http_method=method_name.upper(),
            authorization_type=str(p.get("AuthorizationType", "NONE")),
            api_key_required=False,
            integration=Integration(
                type=str(integration.get("IntegrationType", "AWS_PROXY")),
                uri=integration.get("IntegrationUri"),
                timeout_ms=int(integration.get("TimeoutInMillis", DEFAULT_HTTP_INTEGRATION_TIMEOUT_MS)),
            ),
            authorizer=authorizers.get(p.get("AuthorizerId")),
            authorization_scopes=tuple(p.get("AuthorizationScopes", ())),
            operation_name=p.get("OperationName"),
        )
    stages: dict[str, Stage] = {}
    for r in of_api:
        if r.type == "AWS::ApiGatewayV2::Stage":
            route_settings = r.properties.get("DefaultRouteSettings") or {}
            settings = {k: route_settings[k] for k in ("ThrottlingRateLimit", "ThrottlingBurstLimit") if k in route_settings}
            stages[r.ref] = Stage(
                name=r.ref,
                variables=dict(r.properties.get("StageVariables") or {}),
                method_settings=[{"ResourcePath": "/*", "HttpMethod": "*", **settings}] if settings else [],
                access_log_format=(r.properties.get("AccessLogSettings") or {}).get("Format"),
            )
    if not stages:
        stages["$default"] = Stage(name="$default", variables={}, method_settings=[])
    tags = api.properties.get("Tags") or {}
    return RestApi(
        stack_name=deployment.stack_name,
        logical_id=api.logical_id,
        api_id=api_id,
        name=str(api.properties.get("Name", api.logical_id)),
        root=root,
        stages=stages,
        gateway_responses={},
        api_keys={},
        usage_plans=[],
        pattern=tags.get(PATTERN_TAG) if isinstance(tags, dict) else None,
        kind="http",
    )


def rest_apis(deployments: list[StackDeployment]) -> list[RestApi]:
    """Every REST and HTTP API of the deployed stacks: REST APIs, then HTTP APIs (``kind="http"``); WebSocket APIs are
    :func:`agentrail_local.apigateway.websocket.websocket_apis`."""
    found = [RestApi.from_deployment(d, api) for d in deployments for api in d.of_type("AWS::ApiGateway::RestApi")]
    return found + [
        http_api(d, api)
        for d in deployments
        for api in d.of_type("AWS::ApiGatewayV2::Api")
        if str(api.properties.get("ProtocolType", "HTTP")) == "HTTP"
    ]


__all__ = [
    "DEFAULT_INTEGRATION_TIMEOUT_MS",
    "PATTERN_TAG",
    "ApiKey",
    "ApiResource",
    "GatewayResponse",
    "Integration",
    "Method",
    "RestApi",
    "Stage",
    "TokenBucket",
    "UsagePlan",
    "http_api",
    "match_route",
    "rest_apis",
]
