"""The local operator console: its tokens, its static page and config, the sign-in, and the API proxy that checks the
token and signs the call with SigV4 as the signed-in local principal."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import agentrail_constructs
from agentrail_local.apigateway.auth import APPROVER, DEFAULT_PRINCIPALS, verify_sigv4
from agentrail_local.apigateway.operator_console import (
    SECURITY_HEADERS,
    TOKEN_SECONDS,
    ConsoleRequest,
    ConsoleTokens,
    LocalOperatorConsole,
    TokenRefused,
    features_of,
)
from agentrail_local.apigateway.responses import GatewayReply

CALLER, OTHER, APPROVER_PRINCIPAL = DEFAULT_PRINCIPALS
SITE = Path(agentrail_constructs.__file__).parent / "console_site"
#: Where no API listens (the proxy tests that must not forward anything point here).
NOWHERE = "http://127.0.0.1:9/prod"


def request(
    method: str, path: str, *, query: str = "", headers: dict[str, str] | None = None, body: bytes = b""
) -> ConsoleRequest:
    return ConsoleRequest(method, path, query, headers or {}, body)


def headers_of(reply: GatewayReply) -> dict[str, str]:
    return dict(reply.headers)


def json_of(reply: GatewayReply) -> object:
    return json.loads(reply.body)


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The shipped page, plus files of other types, a hidden file and a subfolder; ``secret.txt`` lies beside it."""
    folder = tmp_path / "site"
    shutil.copytree(SITE, folder)
    (folder / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / "notes.bin").write_bytes(b"\x00\x01")
    (folder / ".env").write_text("SECRET=1")
    (folder / "sub").mkdir()
    (folder / "sub" / "page.html").write_text("<p>nested</p>")
    (tmp_path / "secret.txt").write_text("outside the site")
    return folder


@pytest.fixture
def console(site: Path, clock) -> LocalOperatorConsole:
    return LocalOperatorConsole(site, api_url=NOWHERE, principals=DEFAULT_PRINCIPALS, tokens=ConsoleTokens(clock=clock))


def signed_in(console: LocalOperatorConsole, user: str = CALLER.name, **asked: object) -> str:
    reply = console.handle(request("POST", "/console/token", body=json.dumps({"user": user, **asked}).encode()))
    assert reply.status == 200, reply.body
    token = json_of(reply)["token"]  # type: ignore[index]
    assert isinstance(token, str)
    return token


# -- tokens --------------------------------------------------------------------------------------------------------


def test_a_token_round_trips_with_the_claims_of_a_cognito_access_token(clock) -> None:
    tokens = ConsoleTokens(clock=clock)

    token, expires = tokens.issue(APPROVER, ["approvers"])
    claims = tokens.verify(token)
    bearer = tokens.verify(f"Bearer {token}")

    assert expires == int(clock()) + TOKEN_SECONDS
    assert (claims["sub"], claims["cognito:groups"], claims["token_use"], claims["exp"]) == (
        APPROVER,
        ["approvers"],
        "access",
        expires,
    )
    assert bearer == claims


def test_a_token_with_a_changed_payload_is_refused(clock) -> None:
    tokens = ConsoleTokens(clock=clock)
    header, payload, signature = tokens.issue(CALLER.name, [])[0].split(".")
    claims = json.loads(unb64(payload))
    forged = b64(json.dumps({**claims, "cognito:groups": ["approvers"]}).encode())

    with pytest.raises(TokenRefused) as refused:
        tokens.verify(f"{header}.{forged}.{signature}")

    assert refused.value.expired is False
    assert str(refused.value) == "Unauthorized"


def test_a_token_signed_by_another_issuer_is_refused(clock) -> None:
    token, _ = ConsoleTokens(clock=clock).issue(APPROVER, ["approvers"])

    with pytest.raises(TokenRefused) as refused:
        ConsoleTokens(clock=clock).verify(token)

    assert refused.value.expired is False


@pytest.mark.parametrize("token", [None, "", "Bearer", "a.b", "a.b.c.d", "not a token"])
def test_a_missing_or_malformed_token_is_refused(clock, token: str | None) -> None:
    with pytest.raises(TokenRefused) as refused:
        ConsoleTokens(clock=clock).verify(token)

    assert refused.value.expired is False


def test_a_token_is_refused_as_expired_from_its_expiry_on(clock) -> None:
    tokens = ConsoleTokens(clock=clock)
    token, expires = tokens.issue(CALLER.name, [], seconds=60)
    clock.advance(59)
    assert tokens.verify(token)["sub"] == CALLER.name

    clock.advance(1)
    with pytest.raises(TokenRefused) as refused:
        tokens.verify(token)

    assert int(clock()) == expires
    assert refused.value.expired is True
    assert str(refused.value) == "The incoming token has expired"


# -- the page ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/console/", "text/html; charset=utf-8"),
        ("/console/index.html", "text/html; charset=utf-8"),
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/logo.svg", "image/svg+xml"),
        ("/console/notes.bin", "application/octet-stream"),
    ],
)
def test_static_files_are_served_with_their_content_type_and_the_security_headers(
    console: LocalOperatorConsole, site: Path, path: str, content_type: str
) -> None:
    name = path.removeprefix("/console/") or "index.html"

    for method in ("GET", "HEAD"):
        reply = console.handle(request(method, path))

        assert reply.status == 200
        assert reply.body == (site / name).read_bytes()
        headers = headers_of(reply)
        assert headers["Content-Type"] == content_type
        assert headers["Cache-Control"] == "no-cache"
        assert set(SECURITY_HEADERS) <= set(reply.headers)
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert (headers["X-Content-Type-Options"], headers["X-Frame-Options"]) == ("nosniff", "DENY")


@pytest.mark.parametrize(
    "path",
    [
        "/console/../secret.txt",
        "/console/%2e%2e/secret.txt",
        "/console/%2e%2e/",
        "/console/..",
        "/console/sub/page.html",
        "/console/sub%2fpage.html",
        "/console//etc/passwd",
        "/console/.env",
        "/console/missing.html",
    ],
)
def test_a_path_outside_the_sites_top_folder_or_not_a_file_there_is_404(console: LocalOperatorConsole, path: str) -> None:
    reply = console.handle(request("GET", path))

    assert reply.status == 404
    assert json_of(reply) == {"error": "not_found", "message": "No such page."}
    assert set(SECURITY_HEADERS) <= set(reply.headers)


def test_the_console_without_its_slash_redirects_to_it(console: LocalOperatorConsole) -> None:
    reply = console.handle(request("GET", "/console"))

    assert reply.status == 301
    assert headers_of(reply)["Location"] == "/console/"
    assert reply.body == b""


def test_pages_are_read_only(console: LocalOperatorConsole) -> None:
    reply = console.handle(request("POST", "/console/index.html", body=b"x"))

    assert reply.status == 405
    assert headers_of(reply)["Allow"] == "GET, HEAD"


def test_config_lists_the_local_users_with_the_approver_in_the_approvers_group(console: LocalOperatorConsole) -> None:
    reply = console.handle(request("GET", "/console/config.json"))

    assert reply.status == 200
    assert headers_of(reply)["Content-Type"] == "application/json"
    config = json_of(reply)
    assert config == {
        "mode": "local",
        "apiBase": "api",
        "title": "agentrail console",
        "features": ["approvals", "runs", "costs"],
        "local": {
            "tokenUrl": "token",
            "users": [
                {"name": CALLER.name, "groups": []},
                {"name": OTHER.name, "groups": []},
                {"name": APPROVER, "groups": ["approvers"]},
            ],
        },
    }
    assert "secret" not in reply.body.decode().lower()  # the principals' keys stay in this process


@pytest.mark.parametrize(
    ("routes", "features"),
    [
        (["GET /approvals", "POST /tasks", "GET /tasks", "GET /costs"], ["approvals", "runs", "costs"]),
        (["POST /tasks", "GET /tasks", "GET /costs"], ["runs", "costs"]),
        (["POST /sessions", "GET /sessions", "GET /sessions/{session_id}"], ["sessions"]),
        (["POST /invoke", "GET /health"], []),
    ],
)
def test_the_console_shows_the_views_whose_routes_the_api_serves(routes: list[str], features: list[str]) -> None:
    assert features_of(routes) == features


# -- signing in ----------------------------------------------------------------------------------------------------


def test_signing_in_as_a_local_user_answers_a_token_of_that_user_and_its_groups(console: LocalOperatorConsole, clock) -> None:
    reply = console.handle(request("POST", "/console/token", body=json.dumps({"user": APPROVER, "ttl_seconds": 120}).encode()))

    answer = json_of(reply)
    assert reply.status == 200
    assert headers_of(reply)["Cache-Control"] == "no-store"
    assert (answer["user"], answer["groups"], answer["expires_at"]) == (APPROVER, ["approvers"], int(clock()) + 120)  # type: ignore[index]
    claims = console.tokens.verify(answer["token"])  # type: ignore[index]
    assert (claims["sub"], claims["cognito:groups"], claims["exp"]) == (APPROVER, ["approvers"], answer["expires_at"])  # type: ignore[index]


MARKER = "eve-7c41d9"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (json.dumps({"user": MARKER}).encode(), "unknown_user"),
        (b'{"user": "' + MARKER.encode() + b'"', "invalid_request"),
        (b"", "invalid_request"),
        (b"\xff\xfe" + MARKER.encode(), "invalid_request"),
        (json.dumps([MARKER]).encode(), "invalid_request"),
        (json.dumps({"user": [MARKER]}).encode(), "invalid_request"),
        (json.dumps({"user": CALLER.name, "ttl_seconds": 0, "note": MARKER}).encode(), "invalid_request"),
        (json.dumps({"user": CALLER.name, "ttl_seconds": TOKEN_SECONDS + 1, "note": MARKER}).encode(), "invalid_request"),
        (json.dumps({"user": CALLER.name, "ttl_seconds": True, "note": MARKER}).encode(), "invalid_request"),
        (json.dumps({"user": CALLER.name, "ttl_seconds": "60", "note": MARKER}).encode(), "invalid_request"),
        (json.dumps({"user": CALLER.name, "ttl_seconds": 1.5, "note": MARKER}).encode(), "invalid_request"),
    ],
)
def test_a_bad_sign_in_is_400_with_one_message_that_does_not_echo_the_input(
    console: LocalOperatorConsole, body: bytes, code: str
) -> None:
    reply = console.handle(request("POST", "/console/token", body=body))

    answer = json_of(reply)
    assert reply.status == 400
    assert isinstance(answer, dict) and sorted(answer) == ["error", "message"]
    assert answer["error"] == code
    assert isinstance(answer["message"], str) and answer["message"].endswith(".")
    assert MARKER not in reply.body.decode()


def test_the_message_of_an_unknown_user_names_the_local_users(console: LocalOperatorConsole) -> None:
    reply = console.handle(request("POST", "/console/token", body=json.dumps({"user": MARKER}).encode()))

    message = json_of(reply)["message"]  # type: ignore[index]
    assert all(p.name in message for p in DEFAULT_PRINCIPALS)


def test_the_token_endpoint_answers_only_post(console: LocalOperatorConsole) -> None:
    reply = console.handle(request("GET", "/console/token"))

    assert reply.status == 405
    assert headers_of(reply)["Allow"] == "POST"


# -- the API proxy -------------------------------------------------------------------------------------------------


@dataclass
class Received:
    """One request the API received; header names in lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingApi:
    """A stand-in for the API's stage: records every request, answers ``status`` with ``body`` and ``headers``."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@pytest.fixture
def api() -> Iterator[RecordingApi]:
    recording = RecordingApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            headers = {name.lower(): value for name, value in self.headers.items()}
            recording.received.append(Received(self.command, self.path, headers, self.rfile.read(length)))
            self.send_response(recording.status)
            for name, value in recording.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(recording.body)))
            self.end_headers()
            self.wfile.write(recording.body)

        do_GET = do_POST = do_DELETE = _record  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recording.url = f"http://127.0.0.1:{server.server_address[1]}/prod"
    try:
        yield recording
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def proxy_console(site: Path, url: str, clock, **options: object) -> LocalOperatorConsole:
    return LocalOperatorConsole(site, api_url=url, principals=DEFAULT_PRINCIPALS, tokens=ConsoleTokens(clock=clock), **options)  # type: ignore[arg-type]


def test_an_api_call_is_forwarded_signed_as_the_signed_in_principal_without_the_token_or_cookies(
    site: Path, api: RecordingApi, clock
) -> None:
    console = proxy_console(site, api.url, clock)
    token = signed_in(console, APPROVER)
    body = b'{"decision": "reject", "comment": "<b>not shipped</b>"}'
    api.status, api.body = 202, b'{"status": "rejected"}'
    api.headers |= {"X-Correlation-Id": "c0ffee", "Retry-After": "3", "Set-Cookie": "api=1", "Server-Timing": "db;dur=1"}

    reply = console.handle(
        request(
            "POST",
            "/console/api/approvals/" + "a" * 32 + "/decision",
            query="trace=1&b=2",
            headers={
                "Authorization": f"Bearer {token}",
                "Cookie": "session=browser-cookie",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Idempotency-Key": "k-1",
                "X-Forwarded-For": "203.0.113.9",
            },
            body=body,
        )
    )

    [forwarded] = api.received
    assert (forwarded.method, forwarded.path, forwarded.body) == (
        "POST",
        "/prod/approvals/" + "a" * 32 + "/decision?trace=1&b=2",
        body,
    )
    authorization = forwarded.headers["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={APPROVER_PRINCIPAL.access_key_id}/")
    signer = verify_sigv4(
        method=forwarded.method,
        url=f"http://{forwarded.headers['host']}{forwarded.path}",
        headers=forwarded.headers,
        body=forwarded.body,
        principals=DEFAULT_PRINCIPALS,
    )
    assert signer == APPROVER_PRINCIPAL
    assert token not in json.dumps(forwarded.headers)
    assert "cookie" not in forwarded.headers and "browser-cookie" not in json.dumps(forwarded.headers)
    assert "x-forwarded-for" not in forwarded.headers
    assert (forwarded.headers["idempotency-key"], forwarded.headers["accept"]) == ("k-1", "application/json")
    assert (reply.status, reply.body) == (202, b'{"status": "rejected"}')
    headers = headers_of(reply)
    assert (headers["Content-Type"], headers["X-Correlation-Id"], headers["Retry-After"]) == ("application/json", "c0ffee", "3")
    assert "Set-Cookie" not in headers and "Server-Timing" not in headers
    assert headers["Cache-Control"] == "no-store"
    assert set(SECURITY_HEADERS) <= set(reply.headers)


def test_an_api_error_comes_back_with_its_status_and_body(site: Path, api: RecordingApi, clock) -> None:
    console = proxy_console(site, api.url, clock)
    token = signed_in(console)
    api.status, api.body = 409, b'{"error": "already_decided"}'

    reply = console.handle(request("GET", "/console/api/tasks", query="limit=5", headers={"Authorization": token}))

    [forwarded] = api.received
    assert (forwarded.method, forwarded.path, forwarded.body) == ("GET", "/prod/tasks?limit=5", b"")
    assert forwarded.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={CALLER.access_key_id}/")
    assert (reply.status, reply.body) == (409, b'{"error": "already_decided"}')


def test_an_api_without_iam_gets_its_key_and_no_signature(site: Path, api: RecordingApi, clock) -> None:
    console = proxy_console(site, api.url, clock, sign=False, api_key="local-key-123")
    token = signed_in(console)

    console.handle(request("GET", "/console/api/costs", headers={"Authorization": f"Bearer {token}"}))

    [forwarded] = api.received
    assert forwarded.headers["x-api-key"] == "local-key-123"
    assert "authorization" not in forwarded.headers


def test_an_unreachable_api_is_502(site: Path, clock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    console = proxy_console(site, f"http://127.0.0.1:{port}/prod", clock)

    reply = console.handle(request("GET", "/console/api/tasks", headers={"Authorization": signed_in(console)}))

    assert reply.status == 502
    assert json_of(reply) == {"error": "api_unreachable", "message": "The console could not reach its API."}


@pytest.mark.parametrize("authorization", [None, "", "Bearer ", "Bearer a.b.c", "AWS4-HMAC-SHA256 Credential=AKID/x"])
def test_an_api_call_without_a_valid_token_is_401_and_never_forwarded(
    site: Path, api: RecordingApi, clock, authorization: str | None
) -> None:
    console = proxy_console(site, api.url, clock)
    headers = {"Authorization": authorization} if authorization is not None else {}

    reply = console.handle(request("GET", "/console/api/tasks", headers=headers))

    assert reply.status == 401
    assert json_of(reply) == {"message": "Unauthorized"}
    assert headers_of(reply)["x-amzn-ErrorType"] == "UnauthorizedException"
    assert api.received == []


def test_a_token_of_another_issuer_or_of_no_local_user_is_401(site: Path, api: RecordingApi, clock) -> None:
    console = proxy_console(site, api.url, clock)
    foreign, _ = ConsoleTokens(clock=clock).issue(CALLER.name, [])
    ghost, _ = console.tokens.issue("ghost", ["approvers"])

    replies = [console.handle(request("GET", "/console/api/tasks", headers={"Authorization": t})) for t in (foreign, ghost)]

    assert [(r.status, json_of(r)) for r in replies] == [(401, {"message": "Unauthorized"})] * 2
    assert api.received == []


def test_an_expired_token_is_401_with_api_gateways_expiry_message(site: Path, api: RecordingApi, clock) -> None:
    console = proxy_console(site, api.url, clock)
    token = signed_in(console, ttl_seconds=30)
    clock.advance(30)

    reply = console.handle(request("GET", "/console/api/tasks", headers={"Authorization": f"Bearer {token}"}))

    assert reply.status == 401
    assert json_of(reply) == {"message": "The incoming token has expired"}
    assert api.received == []


def test_a_token_with_non_ascii_characters_is_401_not_an_exception(site: Path, api: RecordingApi, clock) -> None:
    console = proxy_console(site, api.url, clock)

    reply = console.handle(request("GET", "/console/api/tasks", headers={"Authorization": "Bearer a.b.\xe9"}))

    assert (reply.status, json_of(reply)) == (401, {"message": "Unauthorized"})
