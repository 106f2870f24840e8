"""The local API Gateway of a WebSocket API: the API on one port (the ``websockets`` library's threaded server), its
@connections management API on the next (``ThreadingHTTPServer``), both on ``127.0.0.1``.

``$connect`` runs the route's authorization (a Lambda ``REQUEST`` authorizer or SigV4 against the local principals) and
integration during the handshake: a refusal, or an integration answering non-2xx, is an HTTP status to the client. Each
message then selects its route (:meth:`WebSocketApi.select_route`) and invokes its integration in a thread of its own, as
API Gateway does not order them; a two-way route (one with a route response) sends the integration's answer back. Frames
over 32 KB and messages over 128 KB close the connection with 1009 (message too big), as API Gateway's quotas say.

The @connections API (:mod:`.connections_api`) is served here, not by moto: moto never answers 410 for a connection that
is gone. Functions reach it through the callback URL in their environment, rewritten to the local server
(:meth:`ExecutionEnvironments.route_urls`).

Not emulated: the idle timeout (10 minutes) and the maximum duration (2 hours) of a connection, subprotocol negotiation
(``Sec-WebSocket-Protocol``), API keys, stage throttling, and integrations other than Lambda proxy and MOCK.
"""

from __future__ import annotations

import email.utils
import http
import json
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from agentrail_local.account import ACCOUNT_ID
from agentrail_local.apigateway.auth import DEFAULT_PRINCIPALS, LocalPrincipal, SignatureError, verify_sigv4
from agentrail_local.apigateway.connections_api import connections_handler
from agentrail_local.apigateway.responses import render_template
from agentrail_local.apigateway.websocket import (
    CONNECT,
    DISCONNECT,
    MAX_FRAME_BYTES,
    MAX_MESSAGE_BYTES,
    ConnectionInfo,
    WebSocketApi,
    WebSocketRoute,
    access_context,
    authorizer_context,
    authorizer_event,
    connect_event,
    disconnect_event,
    error_frame,
    handshake_connection,
    identity_values,
    integration_reply,
    message_event,
    new_request_id,
)
from agentrail_local.awslambda.definitions import InvocationResult, Throttled, UnknownFunction
from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.awslambda.observers import TrafficObserver
from agentrail_local.console import Console


class _Refused(Exception):
    """The handshake is refused with ``status`` and API Gateway's JSON ``{"message": ...}``."""

    def __init__(self, status: int, message: str, body: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else json.dumps({"message": message})


class _IntegrationFailed(Exception):
    """The integration did not answer: API Gateway's error ``message`` goes to the client instead."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Refused"


def _fragments(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), MAX_FRAME_BYTES):
        yield data[start : start + MAX_FRAME_BYTES]


class LocalWebSocketGateway:
    """Serves one :class:`WebSocketApi`: the API on ``port`` and its @connections API on ``management_port``.

    Parameters
    ----------
    api:
        The API to serve; :meth:`replace_api` swaps it (a redeploy) without dropping connections.
    environments:
        Runs the Lambda integrations and authorizers.
    port, management_port:
        Default: 0, free ports.
    principals:
        Local IAM users whose SigV4 signatures an ``AWS_IAM`` ``$connect`` accepts.
    access_log:
        File receiving one line per connect, message and disconnect, in the stage's access log format.
    console:
        Receives a one-line summary of each of them. Default: none.
    traffic:
        Told of each message in or out and of each connection's time when it closes. Default: none.
    """

    def __init__(
        self,
        api: WebSocketApi,
        environments: ExecutionEnvironments,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        management_port: int = 0,
        principals: tuple[LocalPrincipal, ...] = DEFAULT_PRINCIPALS,
        access_log: Path | None = None,
        console: Console | None = None,
        traffic: TrafficObserver | None = None,
    ) -> None:
        self.api, self.traffic = api, traffic
        self.environments = environments
        self.principals = principals
        self.console = console
        self._access_log = access_log
        self._log_lock = threading.Lock()
        self._lock = threading.Lock()
        self._handshakes: dict[ServerConnection, ConnectionInfo] = {}
        self._connections: dict[str, tuple[ServerConnection, ConnectionInfo]] = {}
        self._server: Server = serve(
            self._serve_connection,
            host,
            port,
            process_request=self._process_request,
            max_size=(MAX_MESSAGE_BYTES, MAX_FRAME_BYTES),
            compression=None,
            server_header="agentrail-local",
        )
        self._management = ThreadingHTTPServer((host, management_port), connections_handler(self))
        self._management.daemon_threads = True
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return str(self._server.socket.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self._server.socket.getsockname()[1])

    @property
    def management_port(self) -> int:
        return int(self._management.server_address[1])

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:{port}/{stage}``: what clients connect to."""
        return f"ws://{self.host}:{self.port}/{self.api.default_stage.name}"

    @property
    def callback_url(self) -> str:
        """``http://127.0.0.1:{management_port}/{stage}``: the @connections endpoint of the stage."""
        return f"http://{self.host}:{self.management_port}/{self.api.default_stage.name}"

    def url_rewrites(self) -> dict[str, str]:
        """The cloud's URLs of this API (without stage) and the local ones that replace them in functions and outputs."""
        return {
            self.api.cloud_url: f"ws://{self.host}:{self.port}",
            self.api.cloud_callback_url: f"http://{self.host}:{self.management_port}",
        }

    def start(self) -> LocalWebSocketGateway:
        for name, target in (("websocket", self._server.serve_forever), ("connections", self._management.serve_forever)):
            thread = threading.Thread(target=target, name=f"{name}-{self.api.logical_id}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Close every connection (1001, going away) and stop both servers."""
        self._server.shutdown()
        self._management.shutdown()
        self._management.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def replace_api(self, api: WebSocketApi) -> None:
        """Serve ``api`` (the same API after a redeploy) from the next handshake and message on; connections stay open."""
        self.api = api

    @property
    def connection_ids(self) -> list[str]:
        with self._lock:
            return list(self._connections)

    # -- $connect ------------------------------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        started = _now_ms()
        request_id = new_request_id()
        info = self._connection_info(connection, request, started)
        access: dict[str, Any] = {"eventType": "CONNECT", "routeKey": CONNECT, "requestId": request_id}
        try:
            if info is None:
                raise _Refused(403, "Forbidden")
            access["stage"] = info.stage
            access["connectionId"] = info.connection_id
            route = self.api.routes.get(CONNECT)
            if route is not None:
                self._authorize(route, info, request, request_id)
                self._connect(route, info, request_id, access)
        except _Refused as refused:
            access["status"] = refused.status
            access["error.message"] = str(refused)
            self._log(info, access, started)
            body = refused.body.encode()
            headers = Headers(
                [
                    ("Date", email.utils.formatdate(usegmt=True)),
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                    ("x-amzn-RequestId", request_id),
                ]
            )
            return Response(refused.status, _phrase(refused.status), headers, body)
        assert info is not None
        with self._lock:
            self._handshakes[connection] = info
        access["status"] = 200
        self._log(info, access, started)
        return None

    def _connection_info(self, connection: ServerConnection, request: Request, now_ms: int) -> ConnectionInfo | None:
        source_ip = str(connection.remote_address[0]) if connection.remote_address else "127.0.0.1"
        return handshake_connection(
            self.api, request.path, list(request.headers.raw_items()), source_ip=source_ip, port=self.port, now_ms=now_ms
        )

    def _authorize(self, route: WebSocketRoute, info: ConnectionInfo, request: Request, request_id: str) -> None:
        if route.authorization_type == "AWS_IAM":
            headers = dict(request.headers.raw_items())
            try:
                principal = verify_sigv4(
                    method="GET",
                    url=f"http://{info.domain_name}{request.path}",
                    headers=headers,
                    body=b"",
                    principals=self.principals,
                )
            except SignatureError:
                raise _Refused(403, "Forbidden") from None
            info.identity.update(
                accessKey=principal.access_key_id,
                accountId=ACCOUNT_ID,
                caller=principal.user_id,
                user=principal.user_id,
                userArn=principal.user_arn,
            )
        elif route.authorization_type == "CUSTOM":
            authorizer = route.authorizer
            target = authorizer.function_target if authorizer else None
            if authorizer is None or target is None:
                self._note(f"{self.api.logical_id}: $connect names an authorizer local mode cannot run")
                raise _Refused(500, "Internal server error")
            if any(not identity_values(s, info.headers, info.query) for s in authorizer.identity_source):
                raise _Refused(401, "Unauthorized")
            started = time.monotonic()
            try:
                result = self._invoke(target, authorizer_event(info, now_ms=_now_ms(), request_id=request_id), 29_000)
                allowed, context = authorizer_context(result.json())
            except (_IntegrationFailed, ValueError) as error:
                self._note(f"{self.api.logical_id}: the $connect authorizer failed: {error}")
                raise _Refused(500, "Internal server error") from None
            if not allowed:
                raise _Refused(403, "Forbidden")
            context["integrationLatency"] = int((time.monotonic() - started) * 1000)
            info.authorizer = context

    def _connect(self, route: WebSocketRoute, info: ConnectionInfo, request_id: str, access: dict[str, Any]) -> None:
        integration = route.integration
        if integration is None or integration.type == "MOCK":
            return
        target = integration.function_target
        if integration.type != "AWS_PROXY" or target is None:
            self._note(f"{self.api.logical_id}: local mode runs Lambda proxy and MOCK integrations, not {integration.type}")
            raise _Refused(500, "Internal server error")
        try:
            result = self._invoke(target, connect_event(info, now_ms=_now_ms(), request_id=request_id), integration.timeout_ms)
            answer = result.json()
        except (_IntegrationFailed, ValueError):
            raise _Refused(502, "Internal server error") from None
        access["integrationLatency"] = int(result.duration_ms)
        status = answer.get("statusCode", 200) if isinstance(answer, dict) else 200
        try:
            status = int(status)
        except (TypeError, ValueError):
            raise _Refused(502, "Internal server error") from None
        if not 200 <= status < 300:
            body = answer.get("body") if isinstance(answer, dict) else None
            raise _Refused(status, _phrase(status), str(body or ""))

    # -- messages and $disconnect --------------------------------------------------------------------------------------

    def _serve_connection(self, connection: ServerConnection) -> None:
        with self._lock:
            info = self._handshakes.pop(connection)
            self._connections[info.connection_id] = (connection, info)
        try:
            for message in connection:
                info.last_active_ms = _now_ms()
                worker = threading.Thread(target=self._on_message, args=(connection, info, message), daemon=True)
                worker.start()
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._connections.pop(info.connection_id, None)
            threading.Thread(target=self._disconnect, args=(connection, info), daemon=True).start()

    def _on_message(self, connection: ServerConnection, info: ConnectionInfo, message: str | bytes) -> None:
        started = _now_ms()
        if self.traffic is not None:
            self.traffic.websocket_frames(len(message.encode() if isinstance(message, str) else message))
        request_id = new_request_id()
        api = self.api
        route_key = api.select_route(message)
        access: dict[str, Any] = {"eventType": "MESSAGE", "routeKey": route_key or "-", "requestId": request_id}
        access.update(stage=info.stage, connectionId=info.connection_id)
        reply: str | bytes | None = None
        try:
            route = api.routes.get(route_key) if route_key else None
            if route is None:
                access["status"] = 403
                reply = error_frame("Forbidden", info, request_id)
            else:
                reply = self._route(route, info, message, request_id, access)
                access["status"] = 200
        except _IntegrationFailed as failed:
            access["status"] = 504 if "timed out" in str(failed) else 500
            access["error.message"] = str(failed)
            reply = error_frame(str(failed), info, request_id)
        except Exception as error:  # a bug of ours must not end the connection
            self._note(f"{api.logical_id}: error on a message of {info.connection_id}: {type(error).__name__}: {error}")
            access["status"] = 500
            reply = error_frame("Internal server error", info, request_id)
        if reply is not None:
            self._send(connection, reply)
        self._log(info, access, started)

    def _route(
        self, route: WebSocketRoute, info: ConnectionInfo, message: str | bytes, request_id: str, access: dict[str, Any]
    ) -> str | bytes | None:
        integration = route.integration
        if integration is None or integration.type == "MOCK":
            return None
        target = integration.function_target
        if integration.type != "AWS_PROXY" or target is None:
            raise _IntegrationFailed("Internal server error")
        event = message_event(info, route.key, message, now_ms=_now_ms(), request_id=request_id)
        result = self._invoke(target, event, integration.timeout_ms)
        access["integrationLatency"] = int(result.duration_ms)
        try:
            answer = result.json()
        except ValueError:
            raise _IntegrationFailed("Internal server error") from None
        return integration_reply(answer) if route.two_way else None

    def _disconnect(self, connection: ServerConnection, info: ConnectionInfo) -> None:
        started = _now_ms()
        if self.traffic is not None:
            self.traffic.websocket_closed(started - info.connected_at_ms)
        code = connection.close_code
        reason = connection.close_reason or ""
        side = "Client-side" if connection.protocol.close_rcvd_then_sent else "Server-side"
        access: dict[str, Any] = {"eventType": "DISCONNECT", "routeKey": DISCONNECT, "requestId": new_request_id()}
        access.update(stage=info.stage, connectionId=info.connection_id, status=200)
        route = self.api.routes.get(DISCONNECT)
        if route is not None and route.integration is not None and route.integration.function_target:
            description = f"{side} close frame status code '{code}'" + (f" - custom reason: {reason}" if reason else "")
            event = disconnect_event(info, status_code=code, reason=description, now_ms=started)
            try:
                result = self._invoke(route.integration.function_target, event, route.integration.timeout_ms)
                access["integrationLatency"] = int(result.duration_ms)
            except _IntegrationFailed as failed:
                access.update(status=500, **{"error.message": str(failed)})
        self._log(info, access, started)

    def _send(self, connection: ServerConnection, data: str | bytes) -> bool:
        """Send one message, in frames of at most 32 KB as API Gateway does; ``False`` when the connection is gone."""
        text = isinstance(data, str)
        payload = data.encode() if isinstance(data, str) else data
        if self.traffic is not None:
            self.traffic.websocket_frames(len(payload))
        try:
            if len(payload) <= MAX_FRAME_BYTES:
                connection.send(payload, text=text)
            else:
                connection.send(_fragments(payload), text=text)
        except ConnectionClosed:
            return False
        return True

    def _invoke(self, target: str, event: dict[str, Any], timeout_ms: int) -> InvocationResult:
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = self.environments.invoke(target, json.dumps(event))
            except Exception as error:
                outcome["error"] = error

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout_ms / 1000)
        if worker.is_alive():
            raise _IntegrationFailed("Endpoint request timed out")
        error = outcome.get("error")
        if isinstance(error, Throttled):
            raise _IntegrationFailed("Too Many Requests")
        if isinstance(error, UnknownFunction):
            self._note(f"{self.api.logical_id}: the integration names {target}, which is not deployed")
            raise _IntegrationFailed("Internal server error")
        if error is not None:
            self._note(f"{self.api.logical_id}: invoking {target} failed: {type(error).__name__}: {error}")
            raise _IntegrationFailed("Internal server error")
        result: InvocationResult = outcome["result"]
        if not result.ok:
            raise _IntegrationFailed("Internal server error")
        return result

    # -- the @connections API ------------------------------------------------------------------------------------------

    def post_to_connection(self, connection_id: str, data: bytes) -> bool:
        """Send ``data`` to a connection as one text message (binary when it is not UTF-8); ``False`` when it is gone."""
        with self._lock:
            found = self._connections.get(connection_id)
        if found is None:
            return False
        connection, info = found
        try:
            message: str | bytes = data.decode()
        except UnicodeDecodeError:
            message = data
        sent = self._send(connection, message)
        if sent:
            info.last_active_ms = _now_ms()
        return sent

    def connection(self, connection_id: str) -> ConnectionInfo | None:
        with self._lock:
            found = self._connections.get(connection_id)
        return found[1] if found else None

    def delete_connection(self, connection_id: str) -> bool:
        """Close a connection (1000); ``False`` when it is gone. Its ``$disconnect`` runs as for any close."""
        with self._lock:
            found = self._connections.pop(connection_id, None)
        if found is None:
            return False
        threading.Thread(target=found[0].close, kwargs={"code": 1000, "reason": "Goodbye"}, daemon=True).start()
        return True

    # -- logs ----------------------------------------------------------------------------------------------------------

    def _note(self, message: str) -> None:
        if self.console is not None:
            self.console(f"local websocket gateway: {message}")

    def _log(self, info: ConnectionInfo | None, access: dict[str, Any], started_ms: int) -> None:
        context = access_context(self.api, info, access, started_ms=started_ms, now_ms=_now_ms())
        if self.console is not None:
            self.console(
                f"WS {context['eventType']} {context.get('routeKey', '-')} {context.get('connectionId', '-')} -> "
                f"{context.get('status', '-')} ({context['responseLatency']} ms) [{self.api.logical_id} {context['requestId']}]"
            )
        stage = self.api.stages.get(str(context.get("stage", "")))
        if self._access_log is None or stage is None or not stage.access_log_format:
            return
        line = render_template(stage.access_log_format, {**context, "_access_log": True})
        with self._log_lock:
            self._access_log.parent.mkdir(parents=True, exist_ok=True)
            with self._access_log.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")


__all__ = ["LocalWebSocketGateway"]
