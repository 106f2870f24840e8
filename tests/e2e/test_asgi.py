"""The FastAPI example agent end to end: ``agentrail local`` serving the synthesized ``asgi`` pattern, called over HTTP
behind the stack's IAM auth, with no change to the example's code."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentrail_cli.client import AgentApiClient

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local(start_local_mode: Callable[..., Any]) -> Any:
    return start_local_mode("asgi")


@pytest.fixture
def client(local: Any) -> Iterator[AgentApiClient]:
    with local.client("asgi") as api:
        yield api


def test_a_signed_invoke_runs_the_agent_with_its_tools_and_answers_with_the_correlation_id(client: AgentApiClient) -> None:
    response = client.request("POST", "/invoke", json={"message": "Calculate (12 + 30) * 2"})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "completed"
    assert "84" in body["answer"]
    assert body["tools"] == ["calculator"]
    # the app read the correlation id from its scope, and every answer carries it
    assert body["correlation_id"] and response.headers["x-correlation-id"] == body["correlation_id"]
    assert response.headers["x-agent-version"]


def test_health_is_the_apps_own_route(client: AgentApiClient) -> None:
    response = client.request("GET", "/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_an_unsigned_request_is_refused_by_the_gateway_before_the_app(client: AgentApiClient) -> None:
    for method, path in (("POST", "/invoke"), ("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/")):
        response = client.request(method, path, json={"message": "hi"} if method == "POST" else None, authenticated=False)

        assert response.status_code == 403, (method, path)
        assert response.json()["error"] == "not_found_or_unauthenticated"


def test_a_blank_message_gets_fastapis_own_422_through_the_gateway(client: AgentApiClient) -> None:
    # given: a body the gateway's model accepts (a string of length 1 to 4000) but the app's validator refuses
    response = client.request("POST", "/invoke", json={"message": "   "})

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "message"] and "blank" in error["msg"]


def test_a_body_against_the_apps_schema_is_refused_by_the_gateway_with_the_model_generated_from_the_document(
    client: AgentApiClient,
) -> None:
    response = client.request("POST", "/invoke", json={"text": "no message field"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_the_openapi_document_is_served_behind_auth(client: AgentApiClient) -> None:
    response = client.request("GET", "/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "agentrail FastAPI agent"
    assert {"/health", "/invoke"} <= set(document["paths"])


def test_an_unknown_path_reaches_the_app_and_gets_its_404(client: AgentApiClient) -> None:
    response = client.request("GET", "/no-such-route")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_another_method_on_a_validated_path_reaches_the_app_and_gets_its_405(client: AgentApiClient) -> None:
    response = client.request("GET", "/invoke")

    assert response.status_code == 405


def test_a_path_below_a_validated_one_reaches_the_app_and_gets_its_404(client: AgentApiClient) -> None:
    response = client.request("GET", "/invoke/extra")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_the_apps_log_lines_carry_the_requests_correlation_id(local: Any, client: AgentApiClient) -> None:
    response = client.request("POST", "/invoke", json={"message": "What is the status of order A-1002?"})
    correlation_id = response.headers["x-correlation-id"]
    log_file: Path = local.function_log("AsgiAgentFunction", stack=local.api("asgi")["stack"])

    matching: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not matching and time.monotonic() < deadline:
        records = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
        matching = [r for r in records if r.get("correlation_id") == correlation_id and r.get("message") == "answered"]
        time.sleep(0.2)

    assert matching, "the app's own log line carries the correlation id"
    assert matching[0]["function_request_id"]  # and the Lambda context, from observed()


def test_agentrail_smoke_of_the_asgi_api_runs_its_scenario_and_exits_0(agentrail: Callable[..., list[str]], local: Any) -> None:
    # --pattern: the example's document has /invoke, which alone reads as the stateless API's
    command = agentrail("smoke", "--ready-file", str(local.ready_file), "--url", local.api("asgi")["url"], "--pattern", "asgi")
    finished = subprocess.run(command, cwd=local.state_dir, capture_output=True, text=True, timeout=300, check=False)

    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-2000:]
    assert "Smoke: asgi example app" in finished.stdout and "✗" not in finished.stdout
