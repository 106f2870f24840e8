"""The @connections management API of a local WebSocket API: ``POST``, ``GET`` and ``DELETE``
``/{stage}/@connections/{connectionId}``, as ``boto3``'s ``apigatewaymanagementapi`` client calls them.

A connection that is gone answers 410 with ``x-amzn-ErrorType: GoneException`` and no body, as API Gateway does (its
SDKs report the error from the header and status alone); other errors are JSON ``{"message": ...}`` with their
``x-amzn-ErrorType``. Any SigV4-signed request is taken: functions in local mode sign with moto's throwaway keys, and
local mode does not evaluate IAM policies (``execute-api:ManageConnections``); an unsigned one is 403.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import unquote

from agentrail_local.apigateway.websocket import MAX_MESSAGE_BYTES, ConnectionInfo, WebSocketApi, new_request_id


class ConnectionsHolder(Protocol):
    """What the @connections API acts on: the open connections of one WebSocket API."""

    api: WebSocketApi

    def post_to_connection(self, connection_id: str, data: bytes) -> bool: ...

    def connection(self, connection_id: str) -> ConnectionInfo | None: ...

    def delete_connection(self, connection_id: str) -> bool: ...


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def connections_handler(gateway: ConnectionsHolder) -> type[BaseHTTPRequestHandler]:
    """The request handler class of a ``ThreadingHTTPServer`` serving ``gateway``'s @connections API."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "agentrail-local"

        def _reply(self, status: int, body: bytes = b"", error_type: str | None = None) -> None:
            self.send_response_only(status)
            self.send_header("Date", self.date_time_string())
            self.send_header("x-amzn-RequestId", new_request_id())
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _forbidden(self, message: str) -> None:
            self._reply(403, json.dumps({"message": message}).encode(), "ForbiddenException")

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            stage, _, rest = self.path.lstrip("/").partition("/")
            resource, _, connection_id = rest.partition("/")
            connection_id = unquote(connection_id.split("?")[0])
            if stage not in gateway.api.stages or resource != "@connections" or not connection_id:
                return self._forbidden("Forbidden")
            if not str(self.headers.get("Authorization", "")).startswith("AWS4-HMAC-SHA256 "):
                return self._forbidden("Missing Authentication Token")
            if self.command == "POST":
                if len(body) > MAX_MESSAGE_BYTES:
                    message = f"Message too long. Max message size is {MAX_MESSAGE_BYTES} bytes."
                    return self._reply(413, json.dumps({"message": message}).encode(), "PayloadTooLargeException")
                if not gateway.post_to_connection(connection_id, body):
                    # API Gateway's 410 has no body, only the error type.
                    return self._reply(410, error_type="GoneException")
                return self._reply(200)
            if self.command == "GET":
                info = gateway.connection(connection_id)
                if info is None:
                    return self._reply(410, error_type="GoneException")
                described = {
                    "connectedAt": _iso(info.connected_at_ms),
                    "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent or ""},
                    "lastActiveAt": _iso(info.last_active_ms),
                }
                return self._reply(200, json.dumps(described).encode())
            if self.command == "DELETE":
                if not gateway.delete_connection(connection_id):
                    return self._reply(410, error_type="GoneException")
                return self._reply(204)
            return self._forbidden("Forbidden")

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


__all__ = ["ConnectionsHolder", "connections_handler"]
