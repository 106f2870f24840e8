"""One error contract for every route and pattern: ``agentrail_runtime.contract.API_ERRORS``.

The handlers answer only its pairs, the OpenAPI document lists per route every status it can answer (each with a
schema, never ``default``), the gateway responses of the constructs use its gateway codes, and the README's table is it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from agentrail_constructs.api import _GATEWAY_RESPONSES
from agentrail_local.apigateway.responses import _HTTP_API_RESPONSES, _http_api_response
from agentrail_runtime.api import sessions
from agentrail_runtime.api.errors import AgentResolver, ApiError, event_kind, json_depth
from agentrail_runtime.api.gateway_models import _placeholder_environment, openapi_documents
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.contract import API_ERRORS, HTTP_API_GATEWAY_ERRORS, MAX_JSON_DEPTH, api_error, http_api_gateway_error

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()
EVERY_ROUTE_STATUSES = {"401", "403", "413", "429", "500", "502", "504"}
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture(scope="module")
def documents(env_module: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The served OpenAPI document of each pattern, the async one with webhook decisions configured."""
    env_module.setenv("AGENT_APPROVAL_WEBHOOK_SECRET", "agentrail/approval-webhook")
    env_module.setenv("AGENT_APPROVAL_WEBHOOK_GROUPS", '["approvers"]')
    return openapi_documents()


@pytest.fixture(scope="module")
def env_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def operations(documents: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (pattern, method.upper(), path, operation)
        for pattern, document in documents.items()
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_no_route_documents_a_default_response_and_every_status_has_a_schema(documents: dict[str, dict[str, Any]]) -> None:
    for pattern, method, path, operation in operations(documents):
        for status, response in operation["responses"].items():
            assert status != "default", f"{pattern} {method} {path}"
            if status == "204":
                assert "content" not in response, f"{pattern} {method} {path}: a 204 has no body"
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            assert schema, f"{pattern} {method} {path} {status} has no schema"
            if int(status) >= 400 and (path, status) != ("/health", "503"):  # the health report names what failed
                assert schema == ERROR_BODY, f"{pattern} {method} {path} {status} is not the error body"


def test_validation_is_documented_as_400_and_422_only_where_an_idempotency_key_is_reused(
    documents: dict[str, dict[str, Any]],
) -> None:
    with_422 = {(method, path) for _, method, path, operation in operations(documents) if "422" in operation["responses"]}

    assert with_422 == {("POST", "/tasks"), ("POST", "/sessions/{session_id}/messages")}
    for document in documents.values():
        assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_route_lists_what_any_route_can_answer_and_routes_with_input_list_400_and_415(
    documents: dict[str, dict[str, Any]],
) -> None:
    for pattern, method, path, operation in operations(documents):
        statuses = set(operation["responses"])
        assert statuses >= EVERY_ROUTE_STATUSES, f"{pattern} {method} {path}"
        assert any(s.startswith("2") for s in statuses), f"{pattern} {method} {path} documents no success"
        if method in ("POST", "PUT", "PATCH"):
            assert {"400", "415"} <= statuses, f"{pattern} {method} {path}"
        if operation.get("parameters"):
            assert "400" in statuses, f"{pattern} {method} {path}"


def test_each_route_lists_the_errors_of_its_domain(documents: dict[str, dict[str, Any]]) -> None:
    def codes(pattern: str, method: str, path: str, status: str) -> set[str]:
        description = documents[pattern]["paths"][path][method.lower()]["responses"][status]["description"]
        return set(re.findall(r"`([a-z_]+)` \(", description))

    assert {"state_conflict"} <= codes("stateful", "PUT", "/sessions/{session_id}/state", "409")
    assert {"turn_in_progress"} <= codes("stateful", "POST", "/sessions/{session_id}/messages", "409")
    assert {"task_finished"} <= codes("async", "DELETE", "/tasks/{task_id}", "409")
    assert {"unknown_model", "invalid_json", "nesting_too_deep", "invalid_request"} <= codes(
        "stateless", "POST", "/invoke", "400"
    )
    assert {"unsupported_media_type"} <= codes("stateless", "POST", "/invoke", "415")
    assert {"throttled", "quota_exceeded"} <= codes("stateless", "GET", "/health", "429")
    assert {"invalid_signature"} <= codes("async", "POST", "/approvals/{approval_id}/webhook", "401")


def test_a_429_and_a_409_that_ask_to_retry_document_retry_after(documents: dict[str, dict[str, Any]]) -> None:
    messages = documents["stateful"]["paths"]["/sessions/{session_id}/messages"]["post"]["responses"]

    assert "Retry-After" in messages["429"]["headers"]
    assert "Retry-After" in messages["409"]["headers"]


def test_every_code_in_the_documents_is_one_of_the_contract(documents: dict[str, dict[str, Any]]) -> None:
    contract = {(str(spec.status), spec.code) for spec in API_ERRORS}
    for pattern, method, path, operation in operations(documents):
        for status, response in operation["responses"].items():
            for code in re.findall(r"`([a-z_]+)` \(", response["description"]):
                assert (status, code) in contract, f"{pattern} {method} {path}: {status} {code}"


def test_an_error_outside_the_contract_cannot_be_raised_or_registered() -> None:
    with pytest.raises(KeyError, match="not in the API error contract"):
        ApiError(418, "teapot", "I am a teapot.")
    app = AgentResolver(max_request_bytes=1024)
    with pytest.raises(KeyError, match="not in the API error contract"):
        app.answer(LookupError, 404, "no_such_thing", "Nothing here.")


def test_the_gateway_responses_of_the_constructs_are_the_contracts_gateway_answers() -> None:
    gateway = {(spec.status, spec.code) for spec in API_ERRORS if spec.source == "gateway"}
    for response_type, status, code, _ in _GATEWAY_RESPONSES:
        if status is not None:
            assert (int(status), code) in gateway, f"{response_type.response_type}: {status} {code}"
        else:
            assert any(c == code for _, c in gateway), f"{response_type.response_type}: {code}"


def test_the_throttled_gateway_response_carries_retry_after() -> None:
    assert api_error(429, "throttled").retry_after


def test_the_readme_error_table_is_the_contract() -> None:
    section = README.split("### The error contract", 1)[1].split("\n#", 1)[0]
    rows = [
        [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| Status")
    ]

    assert [(int(status), code, source) for status, code, source, _ in rows] == [
        (spec.status, spec.code, spec.source) for spec in API_ERRORS
    ]


def test_the_readme_http_api_table_is_the_contracts_http_api_gateway_answers() -> None:
    section = README.split("#### Behind an HTTP API", 1)[1].split("\n#", 1)[0]
    rows = [
        [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| Status")
    ]

    assert [(int(status), json.loads(body)) for status, body, _ in rows] == [
        (spec.status, {"message": spec.message}) for spec in HTTP_API_GATEWAY_ERRORS
    ]


@pytest.mark.parametrize("response_type", [*_HTTP_API_RESPONSES, "INTEGRATION_FAILURE"])
def test_every_answer_local_modes_http_api_gives_for_itself_is_in_the_contract(response_type: str) -> None:
    reply = _http_api_response(response_type, {"requestId": "r"})

    http_api_gateway_error(reply.status, json.loads(reply.body)["message"])
    assert all(name.lower() != "retry-after" for name, _ in reply.headers)


def test_behind_an_http_api_every_route_documents_the_gateways_own_answers_instead_of_the_rest_gateway_rows() -> None:
    with _placeholder_environment():
        app = sessions.create_sessions_app(settings=RuntimeSettings(api_kind="http"))
    document = app.get_openapi_schema().model_dump(mode="json", by_alias=True, exclude_none=True)
    rest_gateway_codes = {spec.code for spec in API_ERRORS if spec.source == "gateway"} - {
        spec.code for spec in API_ERRORS if spec.source == "function"
    }
    gateway_message = {"$ref": "#/components/schemas/GatewayMessage"}

    assert document["components"]["schemas"]["GatewayMessage"]["required"] == ["message"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for spec in HTTP_API_GATEWAY_ERRORS:
                response = responses[str(spec.status)]
                schema = response["content"]["application/json"]["schema"]
                assert schema == gateway_message or gateway_message in schema["anyOf"], f"{method} {path} {spec.status}"
                assert f'{{"message": "{spec.message}"}}' in response["description"]
            documented = set(re.findall(r"`([a-z_]+)` \(", json.dumps([r["description"] for r in responses.values()])))
            assert not documented & rest_gateway_codes, f"{method} {path}"
            # The gateway's 429 carries no Retry-After; a route's own budget_exceeded (a function answer) does.
            budget_route = "`budget_exceeded` (function)" in responses["429"]["description"]
            assert ("Retry-After" in responses["429"].get("headers", {})) == budget_route, f"{method} {path}"


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('"[[[[["', 0),
        ('{"a": "x\\"[[[["}', 1),
        ("[" * 5000 + "]" * 5000, 5000),
    ],
    ids=["object", "nested", "brackets-in-a-string", "escaped-quote", "deeper-than-the-recursion-limit"],
)
def test_json_depth_counts_nesting_without_recursion_and_ignores_brackets_in_strings(text: str, depth: int) -> None:
    assert json_depth(text) == depth


def test_the_nesting_limit_is_far_below_the_parsers_recursion_limit() -> None:
    assert 32 <= MAX_JSON_DEPTH < 500


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({"httpMethod": "GET", "path": "/health", "requestContext": {"requestId": "r"}}, None),
        ({}, "an empty event"),
        ([], "a JSON list, not an object"),
        ({"version": "2.0", "routeKey": "POST /invoke", "requestContext": {"http": {"method": "POST"}}}, "HTTP API"),
        ({"httpMethod": "GET", "path": "/", "requestContext": {"elb": {"targetGroupArn": "arn"}}}, "Load Balancer"),
        ({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}, "aws:sqs"),
        ({"action": "start"}, "another kind"),
    ],
    ids=["rest-v1", "empty", "list", "http-api-v2", "alb", "sqs", "direct-invoke"],
)
def test_event_kind_names_what_an_event_that_is_not_a_rest_proxy_event_looks_like(event: Any, kind: str | None) -> None:
    found = event_kind(event)

    if kind is None:
        assert found is None
    else:
        assert found is not None and kind in found


def test_a_created_session_or_task_links_to_every_route_that_takes_its_id(documents: dict[str, dict[str, Any]]) -> None:
    created = {("POST", "/sessions", "201", "session_id"), ("POST", "/tasks", "202", "task_id")}
    for pattern, method, path, operation in operations(documents):
        for status, response in operation["responses"].items():
            for created_method, created_path, created_status, parameter in created:
                if (method, path, status) != (created_method, created_path, created_status):
                    continue
                takers = {
                    f"#/paths/{other.replace('/', '~1')}/{other_method}"
                    for other, item in documents[pattern]["paths"].items()
                    for other_method in item
                    if f"{{{parameter}}}" in other and other.startswith(created_path)
                }
                links = response.get("links", {}).values()
                assert {link["operationRef"] for link in links} == takers, f"{pattern} {method} {path}"
                assert all(link["parameters"] == {parameter: f"$response.body#/{parameter}"} for link in links)
