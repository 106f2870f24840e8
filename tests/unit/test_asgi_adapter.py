"""The ASGI adapter of the runtime: its settings, the app loader's one-sentence errors, and the wrapping that puts the
correlation id in the app's scope and on its answers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mangum import Mangum

from agentrail_runtime.asgi import AsgiAppError, AsgiSettings, asgi_handler, correlated, load_app, load_asgi_settings, mount_point


def test_settings_read_the_app_path_and_default_lifespan_to_off(monkeypatch):
    monkeypatch.setenv("AGENT_ASGI_APP", "fastapi_agent.main:app")

    settings = load_asgi_settings()

    assert (settings.asgi_app, settings.asgi_lifespan) == ("fastapi_agent.main:app", "off")


@pytest.mark.parametrize("value", [None, "fastapi_agent.main", "fastapi agent:app", "pkg.:app"])
def test_a_missing_or_malformed_app_path_fails_the_cold_start_naming_the_variable(monkeypatch, value: str | None):
    if value is None:
        monkeypatch.delenv("AGENT_ASGI_APP", raising=False)
    else:
        monkeypatch.setenv("AGENT_ASGI_APP", value)

    with pytest.raises(AsgiAppError, match=r"^AGENT_ASGI_APP must name the ASGI app as module:attribute"):
        load_asgi_settings()


def test_an_unknown_lifespan_is_refused(monkeypatch):
    monkeypatch.setenv("AGENT_ASGI_APP", "m:app")
    monkeypatch.setenv("AGENT_ASGI_LIFESPAN", "sometimes")

    with pytest.raises(AsgiAppError, match=r"^AGENT_ASGI_APP must name the ASGI app as module:attribute"):
        load_asgi_settings()


def write_module(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.py").write_text(text)


def test_load_app_imports_the_module_and_follows_the_attribute_path(tmp_path, monkeypatch):
    write_module(
        tmp_path,
        "asgi_unit_nested",
        "class Holder:\n    async def app(self, scope, receive, send):\n        pass\nholder = Holder()\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    app = load_app("asgi_unit_nested:holder.app")

    assert callable(app)


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("raise RuntimeError('no config')\n", "asgi_unit_raises:app", r"does not import: RuntimeError: no config"),
        ("value = 1\n", "asgi_unit_missing:app", r"has no attribute 'app'"),
        ("app = 42\n", "asgi_unit_number:app", r"is a int, not an ASGI app"),
    ],
)
def test_load_app_fails_in_one_sentence_naming_the_variable(tmp_path, monkeypatch, text: str, path: str, message: str):
    write_module(tmp_path, path.partition(":")[0], text)
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(AsgiAppError, match=rf"^AGENT_ASGI_APP='{path}'.*{message}"):
        load_app(path)


def test_a_module_named_like_the_handler_is_refused_as_it_would_be_shadowed():
    with pytest.raises(AsgiAppError, match=r"is the Lambda handler's own; rename it"):
        load_app("app:app", handler_module="app")


async def echo_app(scope: dict, receive: Any, send: Any) -> None:
    """Answers with the correlation id it found in its scope, and a header of its own."""
    state = scope.get("state") or {}
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": str(state.get("correlation_id")).encode()})


def run(app: Any, scope: dict) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_the_wrapping_puts_the_request_id_in_the_scope_and_on_the_answer_with_the_agent_version():
    scope = {"type": "http", "aws.event": {"requestContext": {"requestId": "req-7"}}}

    start, body = run(correlated(echo_app, agent_version="v-9"), scope)

    assert body["body"] == b"req-7"
    assert dict(start["headers"]) == {b"x-app": b"1", b"x-correlation-id": b"req-7", b"x-agent-version": b"v-9"}


def test_the_wrapping_keeps_a_correlation_header_the_app_set_itself():
    async def own_header(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-correlation-id", b"mine")]})
        await send({"type": "http.response.body", "body": b""})

    start, _ = run(correlated(own_header), {"type": "http", "aws.event": {"requestContext": {"requestId": "req-8"}}})

    assert start["headers"] == [(b"x-correlation-id", b"mine")]


def test_a_scope_without_an_api_gateway_event_passes_through_untouched():
    # under uvicorn there is no Lambda event: the app runs as it would without agentrail
    start, body = run(correlated(echo_app, agent_version="v-9"), {"type": "http"})

    assert start["headers"] == [(b"x-app", b"1")]
    assert body["body"] == b"None"


def test_the_handler_is_mangum_with_the_configured_lifespan():
    handler = asgi_handler(echo_app, AsgiSettings(asgi_app="m:app", asgi_lifespan="auto"))

    assert isinstance(handler, Mangum)
    assert handler.lifespan == "auto"


@pytest.mark.parametrize(
    ("event", "mounted"),
    [
        ({"path": "/invoke", "requestContext": {"path": "/v1/invoke", "stage": "v1"}}, "/v1"),
        ({"path": "/invoke", "requestContext": {"path": "/api/invoke", "stage": "v1"}}, "/api"),  # a custom domain's base path
        ({"path": "/invoke", "requestContext": {"path": "/invoke", "stage": "v1"}}, ""),  # a custom domain without one
        ({"version": "2.0", "rawPath": "/v1/health", "requestContext": {"stage": "v1", "http": {"path": "/v1/health"}}}, "/v1"),
        ({"version": "2.0", "rawPath": "/health", "requestContext": {"stage": "$default", "http": {"path": "/health"}}}, ""),
    ],
)
def test_the_mount_point_is_the_prefix_of_the_clients_path_before_the_apps_routes(event: dict, mounted: str):
    assert mount_point(event) == mounted


def test_the_wrapping_mounts_the_app_under_the_stage_so_its_routes_match_and_its_links_keep_it():
    seen: dict[str, Any] = {}

    async def record(scope: dict, receive: Any, send: Any) -> None:
        seen.update(path=scope["path"], root_path=scope.get("root_path"))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    event = {"path": "/health", "requestContext": {"requestId": "r-1", "path": "/v1/health", "stage": "v1"}}
    run(correlated(record), {"type": "http", "path": "/health", "aws.event": event})

    assert seen == {"path": "/v1/health", "root_path": "/v1"}
