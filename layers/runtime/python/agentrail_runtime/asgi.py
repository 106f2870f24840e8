"""ASGI agents: a FastAPI or Starlette app (``module:app``) served on API Gateway through mangum.

The app is named by ``AGENT_ASGI_APP`` and loaded once, at cold start, by :func:`load_app`; :func:`asgi_handler`
wraps it with mangum and with :func:`correlated`, which puts the request's correlation id (API Gateway's request id,
the ``correlation_id`` of every log line of the invocation) in the ASGI scope and on every answer as
``X-Correlation-Id``, with ``X-Agent-Version``. The handler (``agentrail_handlers.asgi``) adds the observability every
handler has (:func:`~agentrail_runtime.observability.observed`).

Only the ASGI handler imports this module: mangum ships in the optional ASGI layer (``AsgiLayer``) and the
``asgi`` extra, never in the dependencies layer (contract ``mangum-only-in-the-asgi-handler``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, Literal

from mangum import Mangum
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentrail_runtime.observability import correlate

#: The environment variable naming the app, ``module:attribute``.
ASGI_APP_ENV = "AGENT_ASGI_APP"
CORRELATION_HEADER = b"x-correlation-id"
AGENT_VERSION_HEADER = b"x-agent-version"
#: Where :func:`correlated` puts the correlation id in the ASGI scope (Starlette's ``request.state.correlation_id``).
CORRELATION_SCOPE_KEY = "correlation_id"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AsgiAppError(RuntimeError):
    """``AGENT_ASGI_APP`` names nothing that imports, or something that is not an ASGI app."""


class AsgiSettings(BaseSettings):
    """What the ASGI handler reads from the environment, validated at cold start."""

    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore", frozen=True)

    #: ``AGENT_ASGI_APP``: the app, as ``module:attribute`` (``fastapi_agent.main:app``).
    asgi_app: str = Field(pattern=r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
    #: ``AGENT_ASGI_LIFESPAN``: mangum's lifespan mode. ``off`` by default: mangum 0.22 runs the app's startup and
    #: shutdown around every invocation, so what an app builds there would be built and torn down per request.
    asgi_lifespan: Literal["off", "auto", "on"] = "off"
    #: ``AGENT_VERSION``, sent back as ``X-Agent-Version`` (stamped by the construct at synth).
    version: str | None = None


def load_asgi_settings() -> AsgiSettings:
    """The settings, or an :class:`AsgiAppError` that names the variable and what it must hold."""
    try:
        return AsgiSettings()  # type: ignore[call-arg]  # read from the environment
    except ValidationError as error:
        raise AsgiAppError(
            f"{ASGI_APP_ENV} must name the ASGI app as module:attribute (e.g. fastapi_agent.main:app): {error.errors()[0]['msg']}"
        ) from None


def load_app(path: str, *, handler_module: str | None = None) -> AsgiApp:
    """Import ``module:attribute`` and return the app.

    Parameters
    ----------
    path:
        ``module:attribute``, an attribute path after the colon (``pkg.main:api.app``) allowed.
    handler_module:
        The module name of the Lambda handler itself (``app``): a user module of that name would be shadowed by it.

    Raises
    ------
    AsgiAppError
        One sentence naming ``AGENT_ASGI_APP``, the path and why: the module does not import (with its error), the
        attribute is missing, or it is not callable.
    """
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise AsgiAppError(f"{ASGI_APP_ENV}={path!r} is not module:attribute (e.g. fastapi_agent.main:app)")
    if handler_module is not None and module_name.split(".")[0] == handler_module:
        raise AsgiAppError(
            f"{ASGI_APP_ENV}={path!r}: a top-level module named {handler_module!r} is the Lambda handler's own; rename it"
        )
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as error:
        raise AsgiAppError(
            f"{ASGI_APP_ENV}={path!r} does not import: {type(error).__name__}: {error} (sys.path: {_shown_path()})"
        ) from error
    for name in attribute.split("."):
        if not hasattr(found, name):
            raise AsgiAppError(f"{ASGI_APP_ENV}={path!r}: module {module_name!r} has no attribute {attribute!r}")
        found = getattr(found, name)
    if not callable(found):
        raise AsgiAppError(f"{ASGI_APP_ENV}={path!r} is a {type(found).__name__}, not an ASGI app")
    return found


def _shown_path() -> str:
    return ", ".join(p for p in sys.path[:6] if p and Path(p).is_dir()) or "(empty)"


def mount_point(event: dict[str, Any]) -> str:
    """The path prefix the client's URL has before the app's routes: the stage (``/v1``), or a custom domain's base
    path; ``""`` on a ``$default`` stage or a custom domain without one.

    A REST (payload 1.0) event carries both the client's path (``requestContext.path``, ``/v1/invoke``) and the
    resource's (``path``, ``/invoke``): the prefix is the difference. A payload 2.0 event's path includes the stage
    unless it is ``$default``.
    """
    context = event.get("requestContext") or {}
    if event.get("version") == "2.0":
        stage = str(context.get("stage") or "")
        path = str((context.get("http") or {}).get("path") or event.get("rawPath") or "")
        prefix = f"/{stage}"
        return prefix if stage and stage != "$default" and (path == prefix or path.startswith(f"{prefix}/")) else ""
    client_path, resource_path = str(context.get("path") or ""), str(event.get("path") or "")
    if resource_path and client_path.endswith(resource_path) and client_path != resource_path:
        return client_path[: -len(resource_path)].rstrip("/")
    return ""


def correlated(app: AsgiApp, *, agent_version: str | None = None) -> AsgiApp:
    """``app``, with the invocation's correlation id in its scope and on its answers.

    The id is API Gateway's request id (``requestContext.requestId`` of the event mangum puts in
    ``scope["aws.event"]``), the one ``observed`` set as the ``correlation_id`` of the invocation's log lines. The
    app reads it as ``scope["state"]["correlation_id"]`` (Starlette: ``request.state.correlation_id``); every answer
    carries ``X-Correlation-Id`` (and ``X-Agent-Version`` when the version is known), unless the app set them itself.

    The stage (or a custom domain's base path) is the app's ``root_path`` (:func:`mount_point`), and ``path`` starts
    with it, as ASGI servers mounted under a prefix do: routes match without it (an HTTP API's ``/v1/health`` is
    ``/health``), and the links the app builds (FastAPI's ``/docs`` to its ``/openapi.json``) keep it.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        event = scope.get("aws.event") or {}
        request_id = (event.get("requestContext") or {}).get("requestId") if isinstance(event, dict) else None
        if scope.get("type") != "http" or not request_id:
            await app(scope, receive, send)
            return
        correlate(request_id)
        root = mount_point(event)
        if root:
            scope["root_path"] = root
            path = str(scope.get("path") or "/")
            if path != root and not path.startswith(f"{root}/"):
                scope["path"] = f"{root}{path}"
        state = scope.setdefault("state", {})
        state[CORRELATION_SCOPE_KEY] = request_id
        extra = [(CORRELATION_HEADER, str(request_id).encode())]
        if agent_version:
            extra.append((AGENT_VERSION_HEADER, agent_version.encode()))

        async def send_with_headers(message: Message) -> None:
            if message.get("type") == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def asgi_handler(app: AsgiApp, settings: AsgiSettings) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """mangum over :func:`correlated` ``app``: a Lambda handler for REST (payload 1.0) and HTTP API (2.0) events."""
    return Mangum(correlated(app, agent_version=settings.version), lifespan=settings.asgi_lifespan)  # type: ignore[arg-type]


__all__ = [
    "AGENT_VERSION_HEADER",
    "ASGI_APP_ENV",
    "CORRELATION_HEADER",
    "CORRELATION_SCOPE_KEY",
    "AsgiAppError",
    "AsgiSettings",
    "asgi_handler",
    "correlated",
    "load_app",
    "load_asgi_settings",
    "mount_point",
]
