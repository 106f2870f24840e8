"""The local API Gateway's HTTP server: one ``ThreadingHTTPServer`` per REST API, on ``127.0.0.1``."""

from __future__ import annotations

import socket
import threading
from dataclasses import asdict, dataclass
from http.client import responses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from agentrail_local.apigateway.auth import DEFAULT_PRINCIPALS, LocalPrincipal
from agentrail_local.apigateway.model import RestApi
from agentrail_local.apigateway.operator_console import ConsoleRequest, LocalOperatorConsole, features_of
from agentrail_local.apigateway.pipeline import MAX_BODY_BYTES, RequestPipeline, read_body
from agentrail_local.apigateway.responses import GatewayReply
from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.awslambda.observers import TrafficObserver
from agentrail_local.console import Console

#: Statuses that end at the headers (RFC 9110): whatever body the integration returned is dropped.
BODILESS_STATUSES = frozenset({204, 304})


@dataclass(frozen=True)
class ApiEndpoint:
    """Where one REST API is served, and how to call it."""

    stack: str
    logical_id: str
    pattern: str | None
    url: str
    stage: str
    auth: str
    routes: tuple[str, ...]
    api_key: str | None = None
    api_key_id: str | None = None
    console_url: str | None = None  # the API's operator console, when local mode serves one

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["routes"] = list(self.routes)
        return data


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
    console_site:
        The operator console's static files: served at ``/console`` (see
        :mod:`agentrail_local.apigateway.operator_console`). Default: no console.
    traffic:
        Told of each request the API serves (the operator console's pages are not API requests). Default: none.
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
        console_site: Path | None = None,
        traffic: TrafficObserver | None = None,
    ) -> None:
        self.api = api
        self.traffic = traffic
        self.environments = environments
        self.principals = principals
        self.console = console
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self.pipeline = RequestPipeline(
            api, environments, host=self.host, port=self.port, principals=principals, access_log=access_log, console=console
        )
        self._thread: threading.Thread | None = None
        self.operator_console: LocalOperatorConsole | None = None
        if console_site is not None:
            key = next(iter(api.api_keys.values()), None)
            self.operator_console = LocalOperatorConsole(
                console_site,
                api_url=f"http://{self.host}:{self.port}/{api.default_stage.name}",
                principals=principals,
                api_key=key.value if key is not None else None,
                sign="iam" in api.auth_kind.split("+"),
                title=f"agentrail console: {api.pattern or api.stack_name}",
                features=features_of(api.routes()),
            )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/{self.api.default_stage.name}"

    @property
    def console_url(self) -> str | None:
        """Where the operator console is served, when it is."""
        return f"http://{self.host}:{self.port}/console/" if self.operator_console is not None else None

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
                path, _, query = self.path.partition("?")
                console = gateway.operator_console
                if console is not None and console.serves(path):
                    reply = self._console(console, path, query)
                else:
                    if gateway.traffic is not None:
                        gateway.traffic.api_request(gateway.api.logical_id)
                    reply = gateway.pipeline.handle(self)
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

            def _console(self, console: LocalOperatorConsole, path: str, query: str) -> GatewayReply:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY_BYTES:
                    self.close_connection = True
                    return GatewayReply(
                        413 if length > 0 else 400,
                        [("Content-Type", "application/json")],
                        b'{"message":"Request Too Long"}' if length > 0 else b'{"message":"Invalid Content-Length"}',
                    )
                body = read_body(self, length)
                return console.handle(ConsoleRequest(self.command, path, query, dict(self.headers.items()), body))

            # http.server dispatches on these names.
            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, CONNECT, PROPFIND...) goes through the pipeline too, where no resource has
                # it: API Gateway's JSON gateway response, where http.server alone would answer an HTML 501.
                if name.startswith("do_") and name[3:].isalpha() and name[3:].isupper():
                    return self._serve
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


__all__ = ["BODILESS_STATUSES", "ApiEndpoint", "LocalApiGateway"]
