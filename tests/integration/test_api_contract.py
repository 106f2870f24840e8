"""The shared API entry keeps the error contract before any route runs: content types, JSON, nesting, event kinds.

The stateless handler stands for every agent API here (they share ``AgentResolver``); the sessions and tasks
folders check their own routes. AWS's own sample events (``events/sam/``) get the documented answers too.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from agentrail_handlers.stateless.app import handler
from agentrail_runtime.api import gateway_models, sessions, stateless, tasks
from agentrail_runtime.api.errors import UnsupportedEventError
from agentrail_runtime.contract import API_ERRORS

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def invoke_event(load_event) -> Any:
    """``POST /invoke`` (events/stateless/invoke.json) with another body and content type, if given."""

    def build(body: str | None = None, *, content_type: str | None = "application/json", base64_body: bool = False) -> dict:
        event = load_event("stateless/invoke.json")
        if body is not None:
            event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
            event["isBase64Encoded"] = base64_body
        for headers in (event["headers"], event.get("multiValueHeaders") or {}):
            for name in [n for n in headers if n.lower() == "content-type"]:
                del headers[name]
        if content_type is not None:
            event["headers"]["Content-Type"] = content_type
            event.setdefault("multiValueHeaders", {})["Content-Type"] = [content_type]
        return event

    return build


def answer(event: dict, lambda_context: Any) -> tuple[int, dict[str, str], Any]:
    response = handler(copy.deepcopy(event), lambda_context)
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()} | (response.get("headers") or {})
    return response["statusCode"], headers, json.loads(response["body"]) if response.get("body") else None


def assert_in_contract(status: int, body: dict) -> None:
    assert (status, body["error"]) in {(spec.status, spec.code) for spec in API_ERRORS if spec.source == "function"}
    assert set(body) <= {"error", "message", "request_id", "details"}


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "multipart/form-data", "application/x-www-form-urlencoded"],
    ids=["text", "xml", "multipart-without-boundary", "form"],
)
def test_a_body_that_is_not_json_by_its_content_type_is_a_415_not_a_500(invoke_event, lambda_context, content_type):
    status, _, body = answer(invoke_event('{"message": "hi"}', content_type=content_type), lambda_context)

    assert (status, body["error"]) == (415, "unsupported_media_type")
    assert_in_contract(status, body)


def test_json_with_a_charset_or_without_a_content_type_is_served(invoke_event, lambda_context):
    with_charset = answer(invoke_event('{"message": "hi"}', content_type="application/json; charset=utf-8"), lambda_context)
    without = answer(invoke_event('{"message": "hi"}', content_type=None), lambda_context)

    assert (with_charset[0], without[0]) == (200, 200)


@pytest.mark.parametrize("body", ['[{"message": "hi"}]', '[{"message": "hi"}, 5]', "[null, null]", "[]"])
def test_a_body_that_is_a_json_array_is_a_400_not_its_first_item(invoke_event, lambda_context, body):
    """Powertools validates a body field that is not a list against a list body's first item; every agent API's body
    is an object, so an array is refused before any route runs (behind a REST API the gateway's model refuses it
    too, behind an HTTP API only the function does)."""
    status, _, answered = answer(invoke_event(body), lambda_context)

    assert (status, answered["error"]) == (400, "invalid_request")
    assert_in_contract(status, answered)


@pytest.mark.parametrize("depth", [65, 990, 5000])
def test_json_nested_deeper_than_the_limit_is_a_400_whatever_the_depth(invoke_event, lambda_context, depth):
    nested = "[" * depth + "]" * depth

    status, _, body = answer(invoke_event(f'{{"message": {nested}}}'), lambda_context)

    assert (status, body["error"]) == (400, "nesting_too_deep")


def test_json_nested_within_the_limit_reaches_validation(invoke_event, lambda_context):
    status, _, body = answer(invoke_event('{"message": ' + "[" * 60 + "]" * 60 + "}"), lambda_context)

    assert (status, body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_and_get_400_invalid_json(invoke_event, lambda_context, constant):
    status, _, body = answer(invoke_event(f'{{"message": "hi", "model": {constant}}}'), lambda_context)

    assert (status, body["error"]) == (400, "invalid_json")


def test_a_base64_body_that_is_not_utf8_is_a_400(invoke_event, lambda_context):
    event = invoke_event()
    event["body"], event["isBase64Encoded"] = base64.b64encode(b'{"message": "\xff"}').decode(), True

    status, _, body = answer(event, lambda_context)

    assert (status, body["error"]) == (400, "invalid_json")


def test_an_http_api_v2_event_is_answered_with_a_logged_500_unsupported_event_not_a_key_error(
    load_event, lambda_context, stdout_records
):
    event = {
        "version": "2.0",
        "routeKey": "POST /invoke",
        "rawPath": "/invoke",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/invoke"}, "requestId": "v2-request"},
        "body": '{"message": "hi"}',
        "isBase64Encoded": False,
    }

    status, headers, body = answer(event, lambda_context)

    assert (status, body["error"]) == (500, "unsupported_event")
    assert "HTTP API (payload 2.0)" in body["message"] and headers["Content-Type"] == "application/json"
    [logged] = [r for r in stdout_records() if r.get("event") == "unsupported_event"]
    assert logged["level"] == "ERROR"


@pytest.mark.parametrize(
    ("event", "kind"),
    [({}, "an empty event"), ({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}, "aws:sqs")],
    ids=["empty", "sqs-batch"],
)
def test_an_event_that_is_not_http_fails_the_invocation_cleanly_so_its_source_retries(
    lambda_context, stdout_records, event, kind
):
    with pytest.raises(UnsupportedEventError, match=kind):
        handler(event, lambda_context)

    [logged] = [r for r in stdout_records() if r.get("event") == "unsupported_event"]
    assert kind in logged["message"]


# -- AWS's own sample events (events/sam/, as `sam local generate-event apigateway aws-proxy` makes them) -------


def test_the_stock_sam_proxy_event_gets_a_json_404_for_its_made_up_path(load_event, lambda_context):
    status, _, body = answer(load_event("sam/aws-proxy.json"), lambda_context)

    assert (status, body["error"]) == (404, "not_found")
    assert body["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def test_the_sam_invoke_event_with_its_base64_body_and_browser_headers_runs_the_agent(load_event, lambda_context):
    status, _, body = answer(load_event("sam/stateless/invoke.json"), lambda_context)

    assert status == 200
    assert body["answer"] == "calculator returned 84."


def test_the_sam_health_event_is_a_get_whose_sample_body_is_ignored(load_event, lambda_context):
    event = load_event("sam/stateless/health.json")

    status, _, body = answer(event, lambda_context)

    assert event["body"] and event["httpMethod"] == "GET"
    assert (status, body["status"]) == (200, "ok")


def test_calculating_past_the_float_range_says_so_instead_of_answering_1(load_event, lambda_context):
    status, _, body = answer(load_event("sam/stateless/calculate-overflow.json"), lambda_context)

    assert status == 200
    assert body["answer"] == "calculator was not completed: result too large."
    assert [(c["tool"], c["outcome"]) for c in body["tool_calls"]] == [("calculator", "error")]


@pytest.mark.parametrize("pattern", ["stateless", "stateful", "async"])
def test_every_agent_api_refuses_an_http_api_event_and_an_sqs_batch_through_the_shared_entry(pattern, lambda_context):
    # The resolvers, built offline as `make schemas` builds them: the refusal comes before any route or AWS call.
    factories = {
        "stateless": stateless.create_stateless_app,
        "stateful": sessions.create_sessions_app,
        "async": tasks.create_tasks_app,
    }
    with gateway_models._placeholder_environment():
        app = factories[pattern]()
    v2 = {"version": "2.0", "routeKey": "GET /health", "requestContext": {"http": {"method": "GET"}}}

    answered = app.resolve(v2, lambda_context)
    with pytest.raises(UnsupportedEventError, match="aws:sqs"):
        app.resolve({"Records": [{"eventSource": "aws:sqs"}]}, lambda_context)

    assert (answered["statusCode"], json.loads(answered["body"])["error"]) == (500, "unsupported_event")


def test_sams_own_http_api_v2_event_to_the_rest_handler_is_a_clean_500_unsupported_event(load_event, lambda_context):
    status, _, body = answer(load_event("sam/http-api-v2.json"), lambda_context)

    assert (status, body["error"]) == (500, "unsupported_event")
