"""The WebSocket APIs local mode serves, together: started, redeployed, stopped, and the URLs that lead to them.

A WebSocket API's cloud URLs (``wss://{apiId}.execute-api.{region}.amazonaws.com`` and the @connections endpoint
``https://{apiId}.execute-api.{region}.amazonaws.com``) are what the stack outputs and the functions' environments hold;
:meth:`WebSocketGateways.route_urls` points both at the local servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentrail_local.apigateway.auth import LocalPrincipal
from agentrail_local.apigateway.websocket import WebSocketApi
from agentrail_local.apigateway.websocket_server import LocalWebSocketGateway
from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.awslambda.observers import TrafficObserver
from agentrail_local.cloudformation.deployer import StackDeployment
from agentrail_local.cloudformation.redeploy import AppliedChange
from agentrail_local.console import Console

#: The first WebSocket API listens on ``port + 50`` and its @connections API on the next port; the next API two further.
WEBSOCKET_PORT_OFFSET = 50


@dataclass(frozen=True)
class WebSocketEndpoint:
    """Where one WebSocket API is served: ``url`` for clients, ``callback_url`` for its @connections API."""

    stack: str
    logical_id: str
    pattern: str | None
    url: str
    callback_url: str
    stage: str
    auth: str
    routes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["routes"] = list(self.routes)
        return data


class WebSocketGateways:
    """One :class:`LocalWebSocketGateway` per WebSocket API.

    Parameters
    ----------
    port:
        Local mode's first port: the first WebSocket API takes ``port + 50``, its @connections API the next.
        0: free ports.
    traffic:
        Told of every message and connection of every WebSocket API (local mode's call meter). Default: none.
    """

    def __init__(
        self,
        environments: ExecutionEnvironments,
        *,
        port: int,
        principals: tuple[LocalPrincipal, ...],
        log_dir: Path,
        console: Console | None,
        traffic: TrafficObserver | None = None,
    ) -> None:
        self.environments = environments
        self.traffic = traffic
        self.first_port = 0 if port == 0 else port + WEBSOCKET_PORT_OFFSET
        self.principals = principals
        self.log_dir = log_dir
        self.console = console
        self.gateways: list[LocalWebSocketGateway] = []

    def _gateway(self, api: WebSocketApi, port: int, management_port: int) -> LocalWebSocketGateway:
        return LocalWebSocketGateway(
            api,
            self.environments,
            port=port,
            management_port=management_port,
            principals=self.principals,
            access_log=self.log_dir / f"{api.logical_id}.access.log",
            console=self.console,
            traffic=self.traffic,
        ).start()

    def _next_port(self) -> int:
        if not self.first_port:
            return 0
        return max([self.first_port - 2, *(g.port for g in self.gateways)]) + 2

    def start(self, apis: Sequence[WebSocketApi]) -> None:
        for api in apis:
            port = self._next_port()
            self.gateways.append(self._gateway(api, port, port + 1 if port else 0))

    def after_redeploy(self, changes: Sequence[AppliedChange], apis: Sequence[WebSocketApi]) -> None:
        """Serve the WebSocket APIs after a redeploy: a running API serves its new routes, integrations and authorizers
        in place (its connections stay open), a new API gets new ports, a removed one is stopped (its connections
        closed with 1001)."""
        if not any(c.type.startswith("AWS::ApiGatewayV2::") and c.action != "not applied" for c in changes):
            return
        running = {(g.api.stack_name, g.api.logical_id): g for g in self.gateways}
        served: list[LocalWebSocketGateway] = []
        for api in apis:
            current = running.pop((api.stack_name, api.logical_id), None)
            if current is not None and current.api.api_id == api.api_id:
                current.replace_api(api)
                served.append(current)
            elif current is not None:
                current.stop()
                served.append(self._gateway(api, current.port, current.management_port))
            else:
                port = max([self._next_port(), *(g.port + 2 for g in served)]) if self.first_port else 0
                served.append(self._gateway(api, port, port + 1 if port else 0))
        for gone in running.values():
            gone.stop()
        self.gateways = served

    def route_urls(self, deployments: Sequence[StackDeployment]) -> None:
        """Point each API's cloud URLs at its local servers, in the functions' environments and the stacks' outputs."""
        rewrites = {old: new for gateway in self.gateways for old, new in gateway.url_rewrites().items()}
        if not rewrites:
            return
        self.environments.route_urls(rewrites)
        for deployment in deployments:
            for name, value in deployment.outputs.items():
                if isinstance(value, str):
                    for old, new in rewrites.items():
                        value = value.replace(old, new)
                    deployment.outputs[name] = value

    def function_targets(self) -> list[str]:
        """The functions of every route and authorizer (to warm them)."""
        targets = []
        for gateway in self.gateways:
            for route in gateway.api.routes.values():
                targets.append(route.integration.function_target if route.integration else None)
                targets.append(route.authorizer.function_target if route.authorizer else None)
        return [t for t in dict.fromkeys(targets) if t]

    def endpoints(self) -> list[WebSocketEndpoint]:
        return [
            WebSocketEndpoint(
                stack=g.api.stack_name,
                logical_id=g.api.logical_id,
                pattern=g.api.pattern,
                url=g.url,
                callback_url=g.callback_url,
                stage=g.api.default_stage.name,
                auth=g.api.auth_kind,
                routes=tuple(g.api.routes),
            )
            for g in self.gateways
        ]

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()
        self.gateways = []


__all__ = ["WEBSOCKET_PORT_OFFSET", "WebSocketEndpoint", "WebSocketGateways"]
