"""Every pattern's API behind an HTTP API (``-c api=http``, payload 2.0) end to end: ``agentrail local`` serving the
synthesized app, called over HTTP with SigV4.

The stateless and stateful patterns run here; ``start_local_mode(..., api="http")`` starts any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local(start_local_mode: Callable[..., Any]) -> Any:
    started = start_local_mode("stateless,stateful", api="http")
    # Each pattern's API is an HTTP API in moto, not a REST API.
    assert len(started.aws("apigatewayv2").get_apis()["Items"]) == 2
    assert started.aws("apigateway").get_rest_apis()["items"] == []
    return started


def test_the_ready_file_lists_an_http_api_per_pattern_with_iam_auth(local: Any) -> None:
    apis = {api["pattern"]: api for api in local.ready["apis"]}

    assert set(apis) == {"stateless", "stateful"}
    assert {api["auth"] for api in apis.values()} == {"iam"}
    assert "POST /invoke" in apis["stateless"]["routes"]


def test_a_signed_invoke_runs_the_agent_through_the_http_api(local: Any) -> None:
    with local.client("stateless") as client:
        result = client.invoke("Calculate (12 + 30) * 2 and convert 10 km to mi")

    assert (result["status"], result["model"]) == ("completed", "local")
    assert "84" in result["answer"]
    assert {call["tool"] for call in result["tool_calls"]} == {"calculator", "convert_units"}


def test_without_request_validation_at_the_gateway_the_function_refuses_bad_bodies_itself(local: Any) -> None:
    with local.client("stateless") as client:
        malformed = client.request("POST", "/invoke", content='{"message": "hi')
        missing = client.request("POST", "/invoke", json={"model": "local"})
        plain = client.request("POST", "/invoke", content='{"message": "hi"}', headers={"Content-Type": "text/plain"})

    assert (malformed.status_code, malformed.json()["error"]) == (400, "invalid_json")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert (plain.status_code, plain.json()["error"]) == (415, "unsupported_media_type")


def test_an_unsigned_request_gets_the_http_apis_own_403(local: Any) -> None:
    with local.client("stateless") as client:
        response = client.request("POST", "/invoke", json={"message": "hello"}, authenticated=False)

    assert (response.status_code, response.json()) == (403, {"message": "Forbidden"})


def test_a_session_remembers_its_turns_and_is_invisible_to_another_caller(local: Any) -> None:
    with local.client("stateful") as sessions, local.client("stateful", principal="agentrail-other") as other:
        session_id = sessions.request("POST", "/sessions", json={}).json()["session_id"]
        told = sessions.request("POST", f"/sessions/{session_id}/messages", json={"message": "My name is Ada"})
        asked = sessions.request("POST", f"/sessions/{session_id}/messages", json={"message": "What is my name?"})
        read_by_other = other.request("GET", f"/sessions/{session_id}")

    assert told.status_code == asked.status_code == 200
    assert "Ada" in asked.json()["answer"] and asked.json()["turn"] == 2
    assert (read_by_other.status_code, read_by_other.json()["error"]) == (404, "session_not_found")


def test_the_served_openapi_document_is_the_same_as_behind_a_rest_api(local: Any) -> None:
    with local.client("stateless") as client:
        document: Any = client.request("GET", "/openapi.json").json()

    statuses = set(document["paths"]["/invoke"]["post"]["responses"])
    assert {"200", "400", "413", "415", "429", "500"} <= statuses
