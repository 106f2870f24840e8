"""A function that serves no HTTP loads no HTTP code at cold start: Powertools' resolver and OpenAPI stay unimported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: What the constructs set for these functions, as far as their settings validate at import.
SETTINGS = {
    "AGENT_TASK_TABLE": "agentrail-tasks",
    "AGENT_TASK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/agentrail-tasks",
    "AGENT_TASK_IDEMPOTENCY_TABLE": "agentrail-idempotency",
    "AGENT_TASK_WEBHOOK_SECRET": "agentrail/webhook",
    "AGENT_SESSION_TABLE": "agentrail-sessions",
}
#: Settings of one handler only (the approval table alone would make the workflow handler expect every approval setting).
HANDLER_SETTINGS = {
    "approval_metrics": {"AGENT_APPROVAL_TABLE": "agentrail-approvals"},
    "canary_hook": {"AGENT_VERSION": "v1", "AGENT_CANARY_MIN_EVAL_SCORE": "0.8", "AWS_DEFAULT_REGION": "us-east-1"},
    "shadow_worker": {"AGENT_SHADOW_FUNCTION": "agentrail-agent:shadow", "AGENT_SHADOW_TABLE": "agentrail-shadow"},
    "stream_authorizer": {"AGENT_STREAM_TICKET_TABLE": "agentrail-tickets"},
    "stream_socket": {
        "AGENT_STREAM_CONNECTION_TABLE": "agentrail-connections",
        "AGENT_STREAM_EVENT_TABLE": "agentrail-events",
        "AGENT_STREAM_CONNECTIONS_URL": "https://abc.execute-api.us-east-1.amazonaws.com/live",
        "AGENT_STREAM_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/agentrail-stream",
        "AWS_DEFAULT_REGION": "us-east-1",
    },
    "stream_worker": {
        "AGENT_STREAM_CONNECTION_TABLE": "agentrail-connections",
        "AGENT_STREAM_EVENT_TABLE": "agentrail-events",
        "AGENT_STREAM_CONNECTIONS_URL": "https://abc.execute-api.us-east-1.amazonaws.com/live",
        "AWS_DEFAULT_REGION": "us-east-1",
    },
}
WITHOUT_HTTP = [
    "task_worker",
    "task_workflow",
    "task_notifier",
    "router",
    "specialist",
    "orchestrator",
    "supervisor",
    "session_worker",
    "session_cleanup",
    "approval_metrics",
    "canary_hook",
    "shadow_worker",
    "stream_authorizer",
    "stream_socket",
    "stream_worker",
]
HTTP_CODE = ("aws_lambda_powertools.event_handler", "agentrail_runtime.api")
PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("aws_lambda_powertools", "agentrail_runtime", "agentrail_handlers", "mangum", "fastapi", "starlette"))))
"""


def modules_after_importing(module: str, extra: dict[str, str] | None = None) -> list[str]:
    """The Powertools, runtime and handler modules loaded by importing ``module`` in a fresh interpreter, as a cold start does."""
    handler = module.split(".")[1]
    environment = (
        {name: value for name, value in os.environ.items() if not name.startswith("AGENT_")}
        | SETTINGS
        | HANDLER_SETTINGS.get(handler, {})
        | (extra or {})
    )
    run = subprocess.run(
        [sys.executable, "-c", PROBE, module], env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("handler", WITHOUT_HTTP)
def test_a_handler_that_serves_no_http_never_loads_the_http_resolver_or_the_api_layer(handler: str):
    # given / when: the handler module imported in a fresh process
    loaded = modules_after_importing(f"agentrail_handlers.{handler}.app")

    # then: it initialized, and nothing of the HTTP layer came with it
    assert f"agentrail_handlers.{handler}.app" in loaded
    assert [m for m in loaded if m.startswith(HTTP_CODE)] == []


def test_the_probe_sees_the_http_resolver_where_a_handler_serves_http():
    # A positive control: the same probe on the async API's handler finds the resolver.
    loaded = modules_after_importing("agentrail_handlers.tasks.app")

    assert "aws_lambda_powertools.event_handler" in loaded
    assert "agentrail_runtime.api.tasks" in loaded


@pytest.mark.parametrize("handler", ["stateless", "shadow_worker"])
def test_a_function_that_samples_or_replays_shadow_requests_loads_neither_the_evals_nor_the_sessions_package(handler: str):
    # given / when: the stateless API (which samples and replays) or the shadow worker imported in a fresh process
    loaded = modules_after_importing(f"agentrail_handlers.{handler}.app")

    # then: the shadow came with it, but neither the report's evals nor the sessions domain
    assert "agentrail_runtime.shadow.sampler" in loaded
    assert [m for m in loaded if m.startswith(("agentrail_runtime.evals", "agentrail_runtime.sessions"))] == []


def test_the_shadow_worker_loads_neither_the_agent_service_nor_the_candidate_it_invokes_by_its_alias():
    # given / when: the shadow worker imported in a fresh process (it invokes the candidate through Lambda)
    loaded = modules_after_importing("agentrail_handlers.shadow_worker.app")

    # then: its own modules came, and nothing that runs an agent
    assert "agentrail_runtime.shadow.worker" in loaded
    assert [m for m in loaded if m in ("agentrail_runtime.service", "agentrail_runtime.shadow.candidate")] == []


def test_a_live_function_that_samples_requests_loads_neither_the_worker_nor_the_comparison_table():
    # given / when: the stateless API imported in a fresh process
    loaded = modules_after_importing("agentrail_handlers.stateless.app")

    # then: the sampler came, the worker's modules did not
    assert "agentrail_runtime.shadow.sampler" in loaded
    assert [m for m in loaded if m in ("agentrail_runtime.shadow.worker", "agentrail_runtime.shadow.comparisons")] == []


def test_the_sessions_handler_loads_no_task_or_approval_code():
    # given / when: the stateful API's handler imported in a fresh process (it serves POST /erase too)
    loaded = modules_after_importing("agentrail_handlers.sessions.app")

    # then: erasure brought none of the async pattern's stores with it
    assert "agentrail_runtime.erasure" in loaded
    assert [m for m in loaded if m.startswith(("agentrail_runtime.tasks", "agentrail_runtime.approvals"))] == []


@pytest.mark.parametrize("handler", ["stateless", "sessions", "session_worker"])
def test_a_function_that_streams_nothing_never_loads_the_event_models(handler: str):
    # given / when: a handler whose runs take no event sink, imported in a fresh process
    loaded = modules_after_importing(f"agentrail_handlers.{handler}.app")

    # then: the agent loop came, the streaming events (loaded with the first sink) did not
    assert "agentrail_runtime.agent.loop" in loaded
    assert "agentrail_runtime.agent.events" not in loaded


#: The ASGI adapter and what it needs: in the optional ASGI layer, which only the ASGI handler's function carries.
ASGI_CODE = ("mangum", "fastapi", "starlette", "agentrail_runtime.asgi")
EVERY_HANDLER_BUT_ASGI = [*WITHOUT_HTTP, "stateless", "sessions", "tasks"]


@pytest.mark.parametrize("handler", EVERY_HANDLER_BUT_ASGI)
def test_no_handler_but_the_asgi_one_loads_mangum_or_an_asgi_framework(handler: str):
    # given / when: the handler module imported in a fresh process, as a function without the ASGI layer runs it
    loaded = modules_after_importing(f"agentrail_handlers.{handler}.app")

    # then: it initialized without the ASGI layer's packages
    assert f"agentrail_handlers.{handler}.app" in loaded
    assert [m for m in loaded if m.startswith(ASGI_CODE)] == []


def test_the_probe_sees_mangum_where_the_asgi_handler_serves_an_app(repo_root):
    # A positive control: the ASGI handler, with the example app on its path, loads mangum and the adapter.
    environment = {"AGENT_ASGI_APP": "fastapi_agent.main:app", "PYTHONPATH": str(repo_root / "examples" / "fastapi_agent")}
    loaded = modules_after_importing("agentrail_handlers.asgi.app", environment)

    assert "mangum" in loaded and "agentrail_runtime.asgi" in loaded and "fastapi" in loaded
    # and it routes through the app, never through Powertools' resolver or the runtime's HTTP layer
    assert [m for m in loaded if m.startswith(HTTP_CODE)] == []
