"""A WebSocket API (``AWS::ApiGatewayV2::Api`` with ``ProtocolType: WEBSOCKET``) as the template describes it, how a
message selects its route, and the events API Gateway sends to a Lambda proxy integration and a ``REQUEST`` authorizer.

The event shapes follow API Gateway's WebSocket proxy events: ``requestContext`` carries ``routeKey``, ``eventType``
(``CONNECT``, ``MESSAGE`` or ``DISCONNECT``), ``messageDirection``, ``connectionId``, ``connectedAt``, ``domainName``,
``stage``, ``apiId``, ``requestId``, ``extendedRequestId``, ``requestTime``, ``requestTimeEpoch``, ``identity`` and,
after an authorizer, ``authorizer``; ``CONNECT`` has the handshake's ``headers`` and ``queryStringParameters`` (with their
``multiValue`` twins), ``MESSAGE`` has ``body``, and each has ``isBase64Encoded``.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from agentrail_local.account import ACCOUNT_ID, REGION
from agentrail_local.apigateway.model import DEFAULT_INTEGRATION_TIMEOUT_MS, PATTERN_TAG, Integration
from agentrail_local.cloudformation.deployer import StackDeployment
from agentrail_local.cloudformation.resources.base import DeployedResource

#: API Gateway's WebSocket quotas: one frame, and one message (a message over a frame is sent in several frames).
MAX_FRAME_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 128 * 1024
#: The route keys API Gateway reserves.
CONNECT, DISCONNECT, DEFAULT = "$connect", "$disconnect", "$default"


@dataclass(frozen=True)
class WebSocketAuthorizer:
    """A Lambda ``REQUEST`` authorizer of ``$connect``."""

    id: str
    name: str
    type: str
    uri: str | None
    identity_source: tuple[str, ...]

    @property
    def function_target(self) -> str | None:
        return Integration(type="AWS_PROXY", uri=self.uri, timeout_ms=DEFAULT_INTEGRATION_TIMEOUT_MS).function_target


@dataclass(frozen=True)
class WebSocketRoute:
    """One route: its key, how ``$connect`` is authorized, its integration, and whether it answers (a route response)."""

    key: str
    authorization_type: str = "NONE"
    authorizer: WebSocketAuthorizer | None = None
    integration: Integration | None = None
    two_way: bool = False


@dataclass(frozen=True)
class WebSocketStage:
    name: str
    variables: dict[str, str] = field(default_factory=dict)
    access_log_format: str | None = None


@dataclass
class WebSocketApi:
    """One WebSocket API rebuilt from a deployed template."""

    stack_name: str
    logical_id: str
    api_id: str
    name: str
    route_selection_expression: str
    routes: dict[str, WebSocketRoute]
    stages: dict[str, WebSocketStage]
    pattern: str | None = None

    @property
    def default_stage(self) -> WebSocketStage:
        return next(iter(self.stages.values()))

    @property
    def auth_kind(self) -> str:
        """How ``$connect`` is authorized: ``iam``, ``custom`` (a Lambda authorizer) or ``none``."""
        route = self.routes.get(CONNECT)
        kind = route.authorization_type if route else "NONE"
        return {"AWS_IAM": "iam", "CUSTOM": "custom"}.get(kind, "none")

    @property
    def cloud_url(self) -> str:
        """The ``wss://`` URL without the stage, as the template's outputs and the functions' environment name it."""
        return f"wss://{self.api_id}.execute-api.{REGION}.amazonaws.com"

    @property
    def cloud_callback_url(self) -> str:
        """The @connections endpoint without the stage (CDK's ``WebSocketStage.callback_url`` adds it)."""
        return f"https://{self.api_id}.execute-api.{REGION}.amazonaws.com"

    def select_route(self, message: str | bytes) -> str | None:
        """The route key a message goes to: the key its selection expression yields when a route has it, else
        ``$default``; ``None`` when neither exists (API Gateway answers with an error frame)."""
        key = selected_route_key(self.route_selection_expression, message)
        if key is not None and key in self.routes and key not in (CONNECT, DISCONNECT):
            return key
        return DEFAULT if DEFAULT in self.routes else None


def selected_route_key(expression: str, message: str | bytes) -> str | None:
    """The value a route selection expression (``$request.body.action``, ``${request.body.a.b}``) takes for a message:
    ``None`` when the message is not a JSON object holding that path, or the expression is of another kind."""
    path = expression.strip()
    if path.startswith("${") and path.endswith("}"):
        path = "$" + path[2:-1]
    if not path.startswith("$request.body."):
        return None
    if isinstance(message, bytes):
        return None
    try:
        document: Any = json.loads(message)
    except ValueError:
        return None
    for part in path.removeprefix("$request.body.").split("."):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    if isinstance(document, str):
        return document
    if isinstance(document, bool | int | float):
        return json.dumps(document)
    return None


def websocket_apis(deployments: Sequence[StackDeployment]) -> list[WebSocketApi]:
    """Every WebSocket API of the deployed stacks, in the stacks' order."""
    return [
        websocket_api(d, api)
        for d in deployments
        for api in d.of_type("AWS::ApiGatewayV2::Api")
        if str(api.properties.get("ProtocolType", "")) == "WEBSOCKET"
    ]


def websocket_api(deployment: StackDeployment, api: DeployedResource) -> WebSocketApi:
    """The WebSocket API whose ``Ref`` is ``api.ref``, rebuilt from the ``AWS::ApiGatewayV2::*`` resources of ``deployment``."""
    api_id = api.ref
    of_api = [r for r in deployment.resources.values() if r.properties.get("ApiId") == api_id]
    integrations = {r.ref: r.properties for r in of_api if r.type == "AWS::ApiGatewayV2::Integration"}
    authorizers = {
        r.ref: WebSocketAuthorizer(
            id=r.ref,
            name=str(r.properties.get("Name", r.logical_id)),
            type=str(r.properties.get("AuthorizerType", "REQUEST")),
            uri=r.properties.get("AuthorizerUri"),
            identity_source=tuple(str(s) for s in r.properties.get("IdentitySource") or ()),
        )
        for r in of_api
        if r.type == "AWS::ApiGatewayV2::Authorizer"
    }
    answering = {str(r.properties.get("RouteId")) for r in of_api if r.type == "AWS::ApiGatewayV2::RouteResponse"}
    routes: dict[str, WebSocketRoute] = {}
    for r in of_api:
        if r.type != "AWS::ApiGatewayV2::Route":
            continue
        p = r.properties
        target = integrations.get(str(p.get("Target", "")).removeprefix("integrations/"))
        integration = (
            Integration(
                type=str(target.get("IntegrationType", "AWS_PROXY")),
                uri=target.get("IntegrationUri"),
                timeout_ms=int(target.get("TimeoutInMillis", DEFAULT_INTEGRATION_TIMEOUT_MS)),
            )
            if target is not None
            else None
        )
        key = str(p["RouteKey"])
        routes[key] = WebSocketRoute(
            key=key,
            authorization_type=str(p.get("AuthorizationType", "NONE")),
            authorizer=authorizers.get(p.get("AuthorizerId")),
            integration=integration,
            two_way=r.ref in answering,
        )
    stages = {
        r.ref: WebSocketStage(
            name=r.ref,
            variables={str(k): str(v) for k, v in (r.properties.get("StageVariables") or {}).items()},
            access_log_format=(r.properties.get("AccessLogSettings") or {}).get("Format"),
        )
        for r in of_api
        if r.type == "AWS::ApiGatewayV2::Stage"
    }
    if not stages:
        stages["$default"] = WebSocketStage(name="$default")
    tags = api.properties.get("Tags") or {}
    return WebSocketApi(
        stack_name=deployment.stack_name,
        logical_id=api.logical_id,
        api_id=api_id,
        name=str(api.properties.get("Name", api.logical_id)),
        route_selection_expression=str(api.properties.get("RouteSelectionExpression", "$request.body.action")),
        routes=routes,
        stages=stages,
        pattern=tags.get(PATTERN_TAG) if isinstance(tags, dict) else None,
    )


# -- events ---------------------------------------------------------------------------------------------------------


def access_context(
    api: WebSocketApi, info: ConnectionInfo | None, access: Mapping[str, Any], *, started_ms: int, now_ms: int
) -> dict[str, Any]:
    """The ``$context`` variables of one connect, message or disconnect, for the stage's access log format."""
    context: dict[str, Any] = {
        "apiId": api.api_id,
        "requestTime": datetime.fromtimestamp(started_ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": started_ms,
        "messageDirection": "IN",
        "responseLatency": now_ms - started_ms,
        **access,
    }
    if info is not None:
        context["identity.sourceIp"], context["identity.userAgent"] = info.source_ip, info.user_agent
        context["domainName"], context["connectedAt"] = info.domain_name, info.connected_at_ms
        context["identity.user"], context["identity.userArn"] = info.identity.get("user"), info.identity.get("userArn")
        context["authorizer.principalId"] = (info.authorizer or {}).get("principalId")
    return context


def new_connection_id() -> str:
    """An id shaped like API Gateway's (``L0SM9cOFvHcCIhw=``), safe in a URL path."""
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()


def new_request_id() -> str:
    return base64.b64encode(secrets.token_bytes(11)).decode()


@dataclass
class ConnectionInfo:
    """What API Gateway knows of one connection, and puts in each of its events."""

    api: WebSocketApi
    stage: str
    connection_id: str
    connected_at_ms: int
    domain_name: str
    source_ip: str
    user_agent: str | None
    headers: dict[str, str] = field(default_factory=dict)
    multi_headers: dict[str, list[str]] = field(default_factory=dict)
    query: dict[str, str] | None = None
    multi_query: dict[str, list[str]] | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    authorizer: dict[str, Any] | None = None
    last_active_ms: int = 0


def handshake_connection(
    api: WebSocketApi, path: str, raw_headers: Sequence[tuple[str, str]], *, source_ip: str, port: int, now_ms: int
) -> ConnectionInfo | None:
    """A new connection from its upgrade request (``/{stage}?query``); ``None`` when the stage is not the API's. Its
    headers gain the ``X-Forwarded-*`` ones API Gateway adds."""
    parts = urlsplit(path)
    stage = parts.path.strip("/")
    if stage not in api.stages:
        return None
    multi_headers: dict[str, list[str]] = {}
    for name, value in raw_headers:
        multi_headers.setdefault(name, []).append(value)
    forwarded = {"X-Forwarded-For": source_ip, "X-Forwarded-Port": str(port), "X-Forwarded-Proto": "http"}
    for name, value in forwarded.items():
        multi_headers.setdefault(name, [value])
    headers = {name: values[-1] for name, values in multi_headers.items()}
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)
    return ConnectionInfo(
        api=api,
        stage=stage,
        connection_id=new_connection_id(),
        connected_at_ms=now_ms,
        domain_name=next((v for k, v in headers.items() if k.lower() == "host"), f"127.0.0.1:{port}"),
        source_ip=source_ip,
        user_agent=next((v for k, v in headers.items() if k.lower() == "user-agent"), None),
        headers=headers,
        multi_headers=multi_headers,
        query={name: values[-1] for name, values in multi_query.items()} if pairs else None,
        multi_query=multi_query if pairs else None,
        last_active_ms=now_ms,
    )


def request_context(
    info: ConnectionInfo, route_key: str, event_type: str, *, now_ms: int, request_id: str | None = None
) -> dict[str, Any]:
    """The ``requestContext`` of one event of ``info``'s connection."""
    moment = datetime.fromtimestamp(now_ms / 1000, UTC)
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id or new_request_id(),
        "requestTime": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "messageDirection": "IN",
        "stage": info.stage,
        "connectedAt": info.connected_at_ms,
        "requestTimeEpoch": now_ms,
        "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent, **info.identity},
        "requestId": request_id or new_request_id(),
        "domainName": info.domain_name,
        "connectionId": info.connection_id,
        "apiId": info.api.api_id,
    }
    if info.authorizer is not None:
        context["authorizer"] = dict(info.authorizer)
    return context


def connect_event(info: ConnectionInfo, *, now_ms: int, request_id: str) -> dict[str, Any]:
    """What the ``$connect`` integration receives: the handshake's headers and query string."""
    return {
        "headers": dict(info.headers),
        "multiValueHeaders": {k: list(v) for k, v in info.multi_headers.items()},
        "queryStringParameters": dict(info.query) if info.query is not None else None,
        "multiValueQueryStringParameters": {k: list(v) for k, v in info.multi_query.items()} if info.multi_query else None,
        "requestContext": request_context(info, CONNECT, "CONNECT", now_ms=now_ms, request_id=request_id),
        "isBase64Encoded": False,
    }


def message_event(info: ConnectionInfo, route_key: str, message: str | bytes, *, now_ms: int, request_id: str) -> dict[str, Any]:
    """What a route's integration receives for one message; a binary message's body is base64 (``isBase64Encoded``)."""
    context = request_context(info, route_key, "MESSAGE", now_ms=now_ms, request_id=request_id)
    context["messageId"] = new_request_id()
    binary = isinstance(message, bytes)
    return {
        "requestContext": context,
        "body": base64.b64encode(message).decode() if isinstance(message, bytes) else message,
        "isBase64Encoded": binary,
    }


def disconnect_event(info: ConnectionInfo, *, status_code: int | None, reason: str, now_ms: int) -> dict[str, Any]:
    """What ``$disconnect`` receives once the connection is gone; API Gateway sends only a few headers with it."""
    context = request_context(info, DISCONNECT, "DISCONNECT", now_ms=now_ms)
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    headers = {"Host": info.domain_name, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    return {
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def authorizer_event(info: ConnectionInfo, *, now_ms: int, request_id: str) -> dict[str, Any]:
    """What a ``REQUEST`` authorizer of ``$connect`` receives (its ``methodArn`` ends in ``$connect``)."""
    stage = info.api.stages.get(info.stage)
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{info.api.api_id}/{info.stage}/{CONNECT}",
        "headers": dict(info.headers),
        "multiValueHeaders": {k: list(v) for k, v in info.multi_headers.items()},
        "queryStringParameters": dict(info.query or {}),
        "multiValueQueryStringParameters": {k: list(v) for k, v in (info.multi_query or {}).items()},
        "stageVariables": dict(stage.variables) if stage else {},
        "requestContext": request_context(info, CONNECT, "CONNECT", now_ms=now_ms, request_id=request_id),
    }


def identity_values(source: str, headers: Mapping[str, str], query: Mapping[str, str] | None) -> str | None:
    """The value of one identity source (``route.request.header.X``, ``route.request.querystring.x``); ``None`` if absent."""
    if source.startswith("route.request.header."):
        name = source.removeprefix("route.request.header.").lower()
        return next((v for k, v in headers.items() if k.lower() == name), None)
    if source.startswith("route.request.querystring."):
        return (query or {}).get(source.removeprefix("route.request.querystring."))
    # stageVariables.* and context.* always resolve.
    return ""


def authorizer_context(result: Any) -> tuple[bool, dict[str, Any]]:
    """Whether a ``REQUEST`` authorizer's answer allows ``execute-api:Invoke``, and the ``requestContext.authorizer`` the
    connection's events then carry: ``principalId`` and the answer's ``context`` (values as strings, numbers or booleans).

    Raises
    ------
    ValueError
        When the answer is not a policy API Gateway can read (API Gateway answers 500).
    """
    if not isinstance(result, dict) or not isinstance(result.get("policyDocument"), dict):
        raise ValueError("the authorizer's answer has no policyDocument")
    statements = result["policyDocument"].get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    effects = set()
    for statement in statements:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if any(a in ("execute-api:Invoke", "execute-api:*", "*") for a in actions):
            effects.add(str(statement.get("Effect", "")))
    allowed = "Allow" in effects and "Deny" not in effects
    context = {"principalId": result.get("principalId")}
    extra = result.get("context") or {}
    if not isinstance(extra, dict):
        raise ValueError("the authorizer's context is not an object")
    for key, value in extra.items():
        if not isinstance(value, str | int | float | bool):
            raise ValueError(f"the authorizer's context value {key!r} is not a string, number or boolean")
        context[str(key)] = value
    return allowed, context


def error_frame(message: str, info: ConnectionInfo, request_id: str) -> str:
    """API Gateway's own answer on a connection (no route, an integration that failed or timed out)."""
    return json.dumps({"message": message, "connectionId": info.connection_id, "requestId": request_id})


def integration_reply(result: Any) -> str | bytes | None:
    """What a two-way route sends back from a Lambda proxy integration's answer: its ``body`` (decoded when
    ``isBase64Encoded``), else the answer itself as JSON; nothing for an empty answer."""
    if isinstance(result, dict) and "statusCode" in result:
        body = result.get("body")
        if body is None:
            return None
        if result.get("isBase64Encoded"):
            return base64.b64decode(str(body))
        return body if isinstance(body, str) else json.dumps(body)
    if result is None:
        return None
    return result if isinstance(result, str) else json.dumps(result)


__all__ = [
    "CONNECT",
    "DEFAULT",
    "DISCONNECT",
    "MAX_FRAME_BYTES",
    "MAX_MESSAGE_BYTES",
    "ConnectionInfo",
    "WebSocketApi",
    "WebSocketAuthorizer",
    "WebSocketRoute",
    "WebSocketStage",
    "access_context",
    "authorizer_context",
    "authorizer_event",
    "connect_event",
    "disconnect_event",
    "error_frame",
    "handshake_connection",
    "identity_values",
    "integration_reply",
    "message_event",
    "new_connection_id",
    "new_request_id",
    "request_context",
    "selected_route_key",
    "websocket_api",
    "websocket_apis",
]
