"""AgentApiClient: call an agentrail API, locally or in AWS, signed with SigV4 or with an API key."""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class IamAuth(httpx.Auth):
    """Signs each request with SigV4 for API Gateway (service ``execute-api``).

    Parameters
    ----------
    credentials:
        botocore credentials, e.g. ``boto3.Session().get_credentials()``.
    region:
        Region of the API. Default: ``us-east-1``.
    """

    requires_request_body = True

    def __init__(self, credentials: Credentials, *, region: str = "us-east-1", service: str = "execute-api") -> None:
        self.credentials = credentials
        self.region = region
        self.service = service

    @classmethod
    def from_keys(cls, access_key_id: str, secret_access_key: str, *, region: str = "us-east-1") -> IamAuth:
        return cls(Credentials(access_key_id, secret_access_key), region=region)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = {"host": request.headers["host"]}
        if "content-type" in request.headers:
            headers["content-type"] = request.headers["content-type"]
        signed = AWSRequest(method=request.method, url=str(request.url), data=request.content, headers=headers)
        SigV4Auth(self.credentials.get_frozen_credentials(), self.service, self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request


class _HeaderAuth(httpx.Auth):
    """Sends ``value`` in the header the subclass names."""

    header: str

    def __init__(self, value: str) -> None:
        self.value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self.value
        yield request


class ApiKeyAuth(_HeaderAuth):
    """Sends an API Gateway API key in ``x-api-key``."""

    header = "x-api-key"


class TokenAuth(_HeaderAuth):
    """Sends a Cognito ID or access token in ``Authorization``, as API Gateway's Cognito authorizer expects."""

    header = "Authorization"


def json_or_text(response: httpx.Response) -> Any:
    """The response's JSON body, or its text when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return response.text


@dataclass(frozen=True)
class LocalReadyFile:
    """The ready file ``agentrail local`` writes while it serves: its Region, APIs, stacks and local principals."""

    document: dict[str, Any]

    @classmethod
    def read(cls, path: str | Path) -> LocalReadyFile:
        return cls(json.loads(Path(path).read_text()))

    @property
    def region(self) -> str:
        return str(self.document["region"])

    def apis(self, pattern: str | None = None) -> list[dict[str, Any]]:
        """The served APIs, or those of ``pattern`` (the ``agentrail:pattern`` tag)."""
        return [a for a in self.document.get("apis", []) if pattern is None or a.get("pattern") == pattern]

    def principal(self, name: str | None = None) -> dict[str, str]:
        """The local IAM user called ``name``. Default: the first one.

        Raises
        ------
        LookupError
            When local mode has no such user; the message lists the ones it has.
        """
        principals = self.document["principals"]
        found = [p for p in principals if name is None or p["name"] == name]
        if not found:
            raise LookupError(f"no local principal named {name!r}; known: {', '.join(p['name'] for p in principals)}")
        return found[0]

    def auth(self, api: Mapping[str, Any], principal: str | None = None) -> httpx.Auth | None:
        """How ``api`` wants to be called: its API key if it has one, else SigV4 as ``principal`` if it takes IAM, else nothing.

        Raises
        ------
        LookupError
            When the API takes IAM and local mode has no principal of that name.
        """
        if "api_key" in api["auth"] and api.get("api_key"):
            return ApiKeyAuth(api["api_key"])
        if "iam" in api["auth"]:
            user = self.principal(principal)
            return IamAuth.from_keys(user["access_key_id"], user["secret_access_key"], region=self.region)
        return None


class ApiCallError(Exception):
    """The API answered with an error status; ``body`` is its JSON error document when it sent one."""

    def __init__(self, status_code: int, body: Any) -> None:
        code = body.get("error") if isinstance(body, dict) else None
        super().__init__(f"HTTP {status_code}{f' ({code})' if code else ''}")
        self.status_code = status_code
        self.body = body


class AgentApiClient:
    """A small HTTP client for agentrail APIs.

    Parameters
    ----------
    base_url:
        The stage URL, e.g. ``http://127.0.0.1:3000/v1`` or ``https://abc.execute-api.us-east-1.amazonaws.com/v1``.
    auth:
        :class:`IamAuth`, :class:`ApiKeyAuth`, :class:`TokenAuth` or none.
    timeout:
        Seconds per request. Default: 60 (the functions' default timeout).
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url + "/", auth=auth, timeout=timeout, transport=transport)

    @classmethod
    def from_ready_file(
        cls, path: str | Path, *, pattern: str | None = None, principal: str | None = None, **kwargs: Any
    ) -> AgentApiClient:
        """A client for one API served by ``agentrail local``, authenticated the way that API requires.

        Parameters
        ----------
        path:
            The ready file ``agentrail local`` wrote (default ``.agentrail/local.json``).
        pattern:
            Which API, by pattern name; needed when several are served.
        principal:
            Name of the local IAM user to sign as. Default: the first one.
        """
        ready = LocalReadyFile.read(path)
        apis = ready.apis(pattern)
        if len(apis) != 1:
            raise LookupError(f"{len(apis)} APIs in {path} match pattern={pattern!r}")
        return cls(apis[0]["url"], auth=ready.auth(apis[0], principal), **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """Send one request and return the response, whatever its status."""
        kwargs: dict[str, Any] = {"headers": dict(headers or {})}
        if json is not None:
            kwargs["json"] = json
        elif content is not None:
            kwargs["content"] = content
            kwargs["headers"].setdefault("Content-Type", "application/json")
        if not authenticated:
            kwargs["auth"] = None
        return self._http.request(method, path.lstrip("/"), **kwargs)

    def _json(self, response: httpx.Response) -> Any:
        body = json_or_text(response)
        if response.status_code >= 400:
            raise ApiCallError(response.status_code, body)
        return body

    def invoke(self, message: str, *, model: str | None = None) -> dict[str, Any]:
        """``POST /invoke``: run the agent on one message.

        Raises
        ------
        ApiCallError
            On any 4xx or 5xx answer.
        """
        body: dict[str, Any] = {"message": message}
        if model is not None:
            body["model"] = model
        return self._json(self.request("POST", "/invoke", json=body))

    def health(self) -> dict[str, Any]:
        """``GET /health``."""
        return self._json(self.request("GET", "/health"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentApiClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class NoCredentials(ValueError):
    """A deployed stage was named, and nothing to call it with: no token, no API key, no AWS credentials."""


def region_of(url: str) -> str | None:
    """The Region of an API Gateway URL (``https://<id>.execute-api.<region>.amazonaws.com/...``), or None."""
    parts = url.split(".execute-api.")
    return parts[1].split(".")[0] if len(parts) == 2 else None


def remote_auth(*, url: str, token: str | None = None, api_key: str | None = None, region: str | None = None) -> httpx.Auth:
    """How the CLI calls a deployed stage: a bearer ``token``, an ``api_key``, or SigV4 with the ambient AWS
    credentials for ``region`` (default: the URL's, then the session's, then ``us-east-1``).

    Raises
    ------
    ValueError
        Both a token and an API key were given.
    NoCredentials
        Neither was given, and no AWS credentials were found.
    """
    if token and api_key:
        raise ValueError("pass either --api-key or --token, not both")
    if token:
        return TokenAuth(token)
    if api_key:
        return ApiKeyAuth(api_key)
    import boto3

    session = boto3.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise NoCredentials("no AWS credentials found to sign with (or pass --api-key or --token)")
    return IamAuth(credentials, region=region or region_of(url) or session.region_name or "us-east-1")


__all__ = [
    "AgentApiClient",
    "ApiCallError",
    "ApiKeyAuth",
    "IamAuth",
    "LocalReadyFile",
    "NoCredentials",
    "TokenAuth",
    "json_or_text",
    "region_of",
    "remote_auth",
]
