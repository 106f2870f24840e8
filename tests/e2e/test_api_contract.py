"""The error contract over HTTP against ``agentrail local``: what API Gateway and the handlers answer together."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentrail_cli.client import AgentApiClient

pytestmark = pytest.mark.slow
DEEP = "[" * 990 + "]" * 990


@pytest.fixture
def stateless(local: Any) -> Iterator[AgentApiClient]:
    with local.client("stateless") as api:
        yield api


@pytest.fixture
def sessions(local: Any) -> Iterator[AgentApiClient]:
    with local.client("stateful") as api:
        yield api


def _new_session(sessions: AgentApiClient) -> str:
    created = sessions.request("POST", "/sessions", json={"state": {"budget": 10}})
    assert created.status_code == 201, created.text
    return str(created.json()["session_id"])


def assert_json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) >= {"error", "message", "request_id"}
    return body


def test_a_body_nested_990_levels_deep_is_a_400_through_the_gateway_and_not_a_500(stateless: AgentApiClient) -> None:
    response = stateless.request("POST", "/invoke", content=f'{{"message": {DEEP}}}')

    assert_json_error(response, 400)


def test_a_state_nested_990_levels_deep_reaches_the_function_and_is_a_400(sessions: AgentApiClient) -> None:
    session_id = _new_session(sessions)

    response = sessions.request(
        "PUT", f"/sessions/{session_id}/state", content=f'{{"data": {{"x": {DEEP}}}, "expected_version": 1}}'
    )

    assert assert_json_error(response, 400)["error"] in ("invalid_request", "nesting_too_deep")


def test_a_state_with_nan_is_a_400_and_the_state_is_unchanged(sessions: AgentApiClient) -> None:
    session_id = _new_session(sessions)

    response = sessions.request(
        "PUT", f"/sessions/{session_id}/state", content='{"data": {"budget": NaN}, "expected_version": 1}'
    )

    assert_json_error(response, 400)
    assert sessions.request("GET", f"/sessions/{session_id}").json()["state"]["data"] == {"budget": 10}


def test_text_plain_is_a_415(stateless: AgentApiClient) -> None:
    response = stateless.request("POST", "/invoke", content='{"message": "hi"}', headers={"Content-Type": "text/plain"})

    assert assert_json_error(response, 415)["error"] == "unsupported_media_type"


def test_an_erased_session_answers_204_without_a_content_type(sessions: AgentApiClient) -> None:
    session_id = _new_session(sessions)

    response = sessions.request("DELETE", f"/sessions/{session_id}")

    assert (response.status_code, response.content) == (204, b"")
    assert "content-type" not in response.headers


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
def test_a_method_no_resource_has_gets_the_gateways_json_answer_not_html(stateless: AgentApiClient, method: str) -> None:
    response = stateless.request(method, "/invoke")

    assert assert_json_error(response, 403)["error"] == "not_found_or_unauthenticated"


def test_the_served_document_closes_model_to_the_configured_models(stateless: AgentApiClient) -> None:
    document = stateless.request("GET", "/openapi.json").json()

    model = document["components"]["schemas"]["InvokeRequest"]["properties"]["model"]
    assert [branch.get("enum") for branch in model["anyOf"] if branch.get("type") == "string"] == [["local"]]
    assert "400" in document["paths"]["/invoke"]["post"]["responses"]
    assert "default" not in json.dumps(document["paths"])
