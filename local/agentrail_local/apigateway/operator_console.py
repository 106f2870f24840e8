"""The operator console in local mode, at ``/console`` on each local REST API's port.

- ``GET /console/`` and its static files: the page the ``OperatorConsole`` construct deploys to S3 and CloudFront,
  with the same security headers.
- ``GET /console/config.json``: where the page signs in and which API it calls (the deployed page reads the same
  file, written at deploy time with the user pool's hosted UI and the API's URL).
- ``POST /console/token``: the local issuer. ``{"user": "<a local principal>"}`` answers a short-lived token with the
  claims of a Cognito access token (``sub``, ``cognito:groups``, ``exp``, ``token_use``), signed with a key of this
  process only. It is what the hosted UI is to the deployed console, so an expired session means the same in both.
- ``/console/api/<path>``: the page's API calls. The token is checked (signature, expiry: ``401`` as API Gateway's
  Cognito authorizer answers), then the request goes to this API's stage signed with SigV4 as the token's local
  principal (or with the API's key). SigV4 keys never reach the browser.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from agentrail_local.account import REGION
from agentrail_local.apigateway.auth import APPROVER, LocalPrincipal
from agentrail_local.apigateway.responses import GatewayReply

#: Where the console lives on every local REST API's port (a stage is never named so: stage names are the first
#: path segment of every API route, and ``console`` is no stage of ours).
PREFIX = "/console"
#: How long a local console token lives unless the sign-in asks for less (Cognito's access tokens: 1 hour by default).
TOKEN_SECONDS = 3600
#: The Cognito group the local approver principal is shown in (the demo's approver group).
APPROVER_GROUP = "approvers"
#: The issuer claim of local tokens.
ISSUER = "agentrail-local/console"
#: How long the console waits for its API (API Gateway's own integration limit is 29 s; a decision resumes a workflow).
API_TIMEOUT_SECONDS = 60
#: The request headers the console passes on to the API (the rest, cookies included, stay behind).
FORWARDED_HEADERS = ("Content-Type", "Accept", "Idempotency-Key")
#: The response headers it passes back.
RETURNED_HEADERS = ("Content-Type", "Retry-After", "Location", "X-Correlation-Id")
#: The headers of every console answer: what the deployed console's CloudFront response headers policy sets.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: The console's views, and the route each needs (an API without it shows no such view).
FEATURE_ROUTES = {
    "approvals": "GET /approvals",
    "runs": "GET /tasks",
    "costs": "GET /costs",
    "sessions": "GET /sessions",
}


def features_of(routes: Sequence[str]) -> list[str]:
    """The console's views an API with ``routes`` (``GET /tasks``, as :meth:`RestApi.routes` lists them) serves."""
    return [feature for feature, route in FEATURE_ROUTES.items() if route in routes]


class TokenRefused(Exception):
    """A console token that is missing, forged or expired (``expired`` tells which message API Gateway gives)."""

    def __init__(self, *, expired: bool = False) -> None:
        super().__init__("The incoming token has expired" if expired else "Unauthorized")
        self.expired = expired


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ConsoleTokens:
    """Issues and checks the local console's tokens: HS256 JWTs with a Cognito access token's claims, signed with a
    key made when local mode starts (a restart signs everyone out)."""

    def __init__(self, *, clock: Callable[[], float] = time.time, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)
        self._clock = clock

    def issue(self, user: str, groups: Sequence[str], *, seconds: int = TOKEN_SECONDS) -> tuple[str, int]:
        """A token for ``user`` in ``groups``, and when it expires (epoch seconds)."""
        now = int(self._clock())
        expires = now + seconds
        claims = {
            "sub": user,
            "username": user,
            "cognito:groups": list(groups),
            "iss": ISSUER,
            "client_id": "agentrail-local-console",
            "token_use": "access",
            "scope": "openid",
            "auth_time": now,
            "iat": now,
            "exp": expires,
            "jti": secrets.token_hex(8),
        }
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "agentrail-local"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{payload}.{self._sign(f'{header}.{payload}')}", expires

    def verify(self, token: str | None) -> dict[str, Any]:
        """The claims of a token this issuer signed that has not expired.

        Raises
        ------
        TokenRefused
        """
        parts = (token or "").removeprefix("Bearer ").strip().split(".")
        # Bytes: compare_digest refuses str with non-ASCII characters (headers arrive decoded as latin-1).
        if len(parts) != 3 or not hmac.compare_digest(self._sign(f"{parts[0]}.{parts[1]}").encode(), parts[2].encode()):
            raise TokenRefused
        try:
            claims = json.loads(_unb64(parts[1]))
        except (binascii.Error, ValueError):
            raise TokenRefused from None
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            raise TokenRefused
        if claims["exp"] <= self._clock():
            raise TokenRefused(expired=True)
        return claims

    def _sign(self, signing_input: str) -> str:
        return _b64(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())


@dataclass(frozen=True)
class ConsoleRequest:
    """What the console reads of one HTTP request."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def groups_of(principal: LocalPrincipal) -> list[str]:
    """The groups a local principal signs in to the console with: the approver principal is an approver."""
    return [APPROVER_GROUP] if principal.name == APPROVER else []


class LocalOperatorConsole:
    """Serves the console of one local REST API.

    Parameters
    ----------
    site:
        The folder of the page's static files (``agentrail_constructs/console_site``).
    api_url:
        The API's stage URL on this machine (``http://127.0.0.1:PORT/prod``).
    principals:
        The local users who may sign in.
    api_key:
        The API's key, sent with every call when its methods require one.
    sign:
        Whether the API's methods use ``AWS_IAM``: calls are signed as the signed-in principal.
    features:
        The views the page shows (see :func:`features_of`). Default: approvals, runs and costs.
    """

    def __init__(
        self,
        site: Path,
        *,
        api_url: str,
        principals: Sequence[LocalPrincipal],
        api_key: str | None = None,
        sign: bool = True,
        title: str = "agentrail console",
        tokens: ConsoleTokens | None = None,
        features: Sequence[str] = ("approvals", "runs", "costs"),
    ) -> None:
        self.site = site
        self.api_url = api_url.rstrip("/")
        self.principals = {p.name: p for p in principals}
        self.api_key = api_key
        self.sign = sign
        self.title = title
        self.tokens = tokens or ConsoleTokens()
        self.features = list(features)

    @staticmethod
    def serves(path: str) -> bool:
        """Whether ``path`` (without its query) is the console's."""
        return path == PREFIX or path.startswith(PREFIX + "/")

    def handle(self, request: ConsoleRequest) -> GatewayReply:
        """Answer one request under ``/console``; never raises."""
        rest = request.path[len(PREFIX) :]
        if rest == "":
            return self._reply(301, b"", [("Location", PREFIX + "/")])
        if rest.startswith("/api/"):
            return self._proxy(request, rest[len("/api") :])
        if rest == "/token":
            if request.method != "POST":
                return self._error(405, "method_not_allowed", "Sign in with POST.", [("Allow", "POST")])
            return self._issue(request)
        if request.method not in ("GET", "HEAD"):
            return self._error(405, "method_not_allowed", "The console's pages are read with GET.", [("Allow", "GET, HEAD")])
        if rest == "/config.json":
            return self._json(200, self.config())
        return self._static(rest.lstrip("/") or "index.html")

    def config(self) -> dict[str, Any]:
        """The page's ``config.json`` in local mode (paths relative to the page)."""
        return {
            "mode": "local",
            "apiBase": "api",
            "title": self.title,
            "features": self.features,
            "local": {
                "tokenUrl": "token",
                "users": [{"name": p.name, "groups": groups_of(p)} for p in self.principals.values()],
            },
        }

    # -- the parts -------------------------------------------------------------------

    def _static(self, name: str) -> GatewayReply:
        path = self.site / name
        if not _FILE_NAME.match(name) or not path.is_file():
            return self._error(404, "not_found", "No such page.")
        content_type = _CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        return self._reply(200, path.read_bytes(), [("Content-Type", content_type), ("Cache-Control", "no-cache")])

    def _issue(self, request: ConsoleRequest) -> GatewayReply:
        try:
            asked = json.loads(request.body or b"null")
        except ValueError:
            asked = None
        if not isinstance(asked, dict) or not isinstance(asked.get("user"), str):
            return self._error(400, "invalid_request", 'Send {"user": "<a local user>"} as JSON.')
        principal = self.principals.get(asked["user"])
        if principal is None:
            return self._error(400, "unknown_user", f"Choose one of the local users: {', '.join(self.principals)}.")
        seconds = asked.get("ttl_seconds", TOKEN_SECONDS)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= TOKEN_SECONDS:
            return self._error(400, "invalid_request", f"ttl_seconds must be a whole number from 1 to {TOKEN_SECONDS}.")
        groups = groups_of(principal)
        token, expires = self.tokens.issue(principal.name, groups, seconds=seconds)
        return self._json(200, {"token": token, "expires_at": expires, "user": principal.name, "groups": groups})

    def _proxy(self, request: ConsoleRequest, path: str) -> GatewayReply:
        try:
            claims = self.tokens.verify(request.header("Authorization"))
        except TokenRefused as refused:
            return self._json(401, {"message": str(refused)}, [("x-amzn-ErrorType", "UnauthorizedException")])
        principal = self.principals.get(str(claims.get("sub")))
        if principal is None:
            return self._json(401, {"message": "Unauthorized"}, [("x-amzn-ErrorType", "UnauthorizedException")])
        url = self.api_url + path + (f"?{request.query}" if request.query else "")
        headers = {name: value for name in FORWARDED_HEADERS if (value := request.header(name)) is not None}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        body = request.body if request.method not in ("GET", "HEAD") else b""
        if self.sign:
            signed = AWSRequest(method=request.method, url=url, data=body, headers=headers)
            SigV4Auth(principal.credentials(), "execute-api", REGION).add_auth(signed)
            headers = dict(signed.headers.items())
        outgoing = urllib.request.Request(url, data=body or None, method=request.method, headers=headers)
        try:
            with urllib.request.urlopen(outgoing, timeout=API_TIMEOUT_SECONDS) as response:
                status, answer, returned = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, answer, returned = error.code, error.read(), error.headers
        except OSError:
            return self._error(502, "api_unreachable", "The console could not reach its API.")
        passed = [(name, value) for name in RETURNED_HEADERS if (value := returned.get(name)) is not None]
        return self._reply(status, answer, [*passed, ("Cache-Control", "no-store")])

    def _error(self, status: int, code: str, message: str, headers: Sequence[tuple[str, str]] = ()) -> GatewayReply:
        # The shape of the API's own errors (agentrail_runtime.api.errors): a code and one sentence.
        return self._json(status, {"error": code, "message": message}, headers)

    def _json(self, status: int, body: Any, headers: Sequence[tuple[str, str]] = ()) -> GatewayReply:
        return self._reply(
            status, json.dumps(body).encode(), [("Content-Type", "application/json"), ("Cache-Control", "no-store"), *headers]
        )

    @staticmethod
    def _reply(status: int, body: bytes, headers: Sequence[tuple[str, str]]) -> GatewayReply:
        return GatewayReply(status, [*headers, *SECURITY_HEADERS], body)


__all__ = [
    "APPROVER_GROUP",
    "FEATURE_ROUTES",
    "PREFIX",
    "SECURITY_HEADERS",
    "TOKEN_SECONDS",
    "ConsoleRequest",
    "ConsoleTokens",
    "LocalOperatorConsole",
    "TokenRefused",
    "features_of",
    "groups_of",
]
