"""AgentApiClient: call an agentrail API, locally or in AWS, signed with SigV4 or with an API key."""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
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
    def from_keys(cls, access_key_id: str, secret_access_key: str, *, session_token: str | None = None, region: str = "us-east-1") -> IamAuth:
        return cls(Credentials(access_key_id, secret_access_key, session_token), region=region)

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


class ApiKeyAuth(httpx.Auth):
    """Sends an API Gateway API key in ``x-api-key``."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = self.api_key
        yield request


class TokenAuth(httpx.Auth):
    """Sends a Cognito ID or access token in ``Authorization``, as API Gateway's Cognito authorizer expects."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.token
        yield request


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
        self.auth = auth
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
        document = json.loads(Path(path).read_text())
        apis = [a for a in document["apis"] if pattern is None or a["pattern"] == pattern]
        if len(apis) != 1:
            raise LookupError(f"{len(apis)} APIs in {path} match pattern={pattern!r}")
        api = apis[0]
        auth: httpx.Auth | None = None
        if "api_key" in api["auth"] and api.get("api_key"):
            auth = ApiKeyAuth(api["api_key"])
        elif "iam" in api["auth"]:
            users = [p for p in document["principals"] if principal is None or p["name"] == principal]
            if not users:
                raise LookupError(f"no local principal named {principal!r}")
            auth = IamAuth.from_keys(users[0]["access_key_id"], users[0]["secret_access_key"], region=document["region"])
        return cls(api["url"], auth=auth, **kwargs)

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
        try:
            body = response.json()
        except ValueError:
            body = response.text
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


__all__ = ["AgentApiClient", "ApiCallError", "ApiKeyAuth", "IamAuth", "TokenAuth"]
