"""A function configured for an HTTP API (``AGENT_API_KIND=http``) answers payload 2.0 events with the same contract.

The same handlers serve REST (payload 1.0) and HTTP APIs (payload 2.0); the construct tells a function which
one it sits behind. AWS's own HTTP API sample event (``events/sam/http-api-v2.json``, as
``sam local generate-event apigateway http-api-proxy`` makes it) gets the documented answer.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from agentrail_runtime.api import stateless
from agentrail_runtime.api.errors import principal_of
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.contract import API_ERRORS, HTTP_API_GATEWAY_ERRORS
from agentrail_runtime.models.base import ModelProvider, ModelThrottledError

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

HTTP = {"AGENT_API_KIND": "http"}
CALLER_ARN = "arn:aws:sts::123456789012:assumed-role/agentrail-caller/agentrail-client"


def v2_event(
    method: str = "POST",
    path: str = "/invoke",
    body: str | None = '{"message": "Calculate (12 + 30) * 2"}',
    *,
    content_type: str | None = "application/json",
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A payload 2.0 event as an HTTP API with IAM auth on stage ``v1`` sends it (headers lower-cased)."""
    headers = {"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8"}
    if content_type is not None:
        headers["content-type"] = content_type
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": f"/v1{path}",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "authorizer": authorizer if authorizer is not None else {"iam": {"userArn": CALLER_ARN}},
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {"method": method, "path": f"/v1{path}", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7"},
            "requestId": "v2-request-id",
            "routeKey": f"{method} {path}",
            "stage": "v1",
            "time": "12/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1583348638390,
        },
        "body": body,
        "isBase64Encoded": False,
    }


@pytest.fixture
def http_handler(handler_module, lambda_context) -> Callable[[dict], tuple[int, dict[str, str], Any]]:
    """The stateless handler, cold-started with ``AGENT_API_KIND=http``: ``(status, headers, body)`` of an event."""
    module = handler_module("stateless", HTTP)

    def answer(event: dict) -> tuple[int, dict[str, str], Any]:
        response = module.handler(copy.deepcopy(event), lambda_context)
        return (
            response["statusCode"],
            response.get("headers") or {},
            json.loads(response["body"]) if response.get("body") else None,
        )

    return answer


def test_sams_own_http_api_v2_event_runs_the_agent_when_the_function_serves_an_http_api(http_handler, load_event):
    event = load_event("sam/http-api-v2.json")

    status, headers, body = http_handler(event)

    assert status == 200
    assert body["answer"] == "calculator returned 84."
    assert body["request_id"] == "id" and headers["X-Correlation-Id"] == "id"


def test_a_v2_request_through_a_named_stage_is_routed_without_the_stage_in_its_path(http_handler):
    status, _, body = http_handler(v2_event("GET", "/health", None, content_type=None))

    assert (status, body["status"]) == (200, "ok")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (v2_event(content_type="text/plain"), (415, "unsupported_media_type")),
        (v2_event(body='{"message": ' + "[" * 990 + "]" * 990 + "}"), (400, "nesting_too_deep")),
        (v2_event(body='{"message": NaN}'), (400, "invalid_json")),
        (v2_event(body='{"message": "hi", "temperature": 2}'), (400, "invalid_request")),
        (v2_event(body='{"message": "' + "x" * 17_000 + '"}'), (413, "payload_too_large")),
        (v2_event("GET", "/admin/users", None), (404, "not_found")),
    ],
    ids=["text-plain", "deep-nesting", "nan", "unknown-field", "oversized", "unknown-route"],
)
def test_a_v2_event_gets_the_same_documented_error_answers_as_a_rest_event(http_handler, event, expected):
    status, _, body = http_handler(event)

    assert (status, body["error"]) == expected
    assert (status, body["error"]) in {(spec.status, spec.code) for spec in API_ERRORS if spec.source == "function"}
    assert body["request_id"] == "v2-request-id"


def test_a_base64_v2_body_is_decoded(http_handler):
    event = v2_event(body=base64.b64encode(b'{"message": "Calculate 2 + 2"}').decode())
    event["isBase64Encoded"] = True

    status, _, body = http_handler(event)

    assert (status, body["answer"]) == (200, "calculator returned 4.")


def test_a_rest_v1_event_to_a_function_that_serves_an_http_api_is_a_logged_500_unsupported_event(
    http_handler, load_event, stdout_records
):
    status, _, body = http_handler(load_event("stateless/invoke.json"))

    assert (status, body["error"]) == (500, "unsupported_event")
    assert "REST API (payload 1.0)" in body["message"] and "AGENT_API_KIND" in body["message"]
    [logged] = [r for r in stdout_records() if r.get("event") == "unsupported_event"]
    assert logged["level"] == "ERROR"


class _Throttled(ModelProvider):
    name = "local:throttled"

    def converse(self, *args: Any, **kwargs: Any) -> Any:
        raise ModelThrottledError("slow down", model=self.name, retry_after_seconds=7)

    def check(self) -> None:
        return None


def test_the_functions_own_throttling_answer_carries_retry_after_on_an_http_api_too(agents_with, lambda_context):
    app = stateless.create_stateless_app(agents_with(_Throttled()), RuntimeSettings(api_kind="http"))

    response = app.resolve(v2_event(), lambda_context)

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"] == "model_throttled"
    assert response["headers"]["Retry-After"] == "7"


def test_the_openapi_document_of_an_http_api_function_has_the_same_routes_and_bodies_and_the_gateways_own_answers(
    agent_env,
):
    rest_app = stateless.create_stateless_app(settings=RuntimeSettings())
    http_app = stateless.create_stateless_app(settings=RuntimeSettings(api_kind="http"))

    rest, http = (app.get_openapi_schema(title="t", version="1").model_dump(mode="json") for app in (rest_app, http_app))

    assert (rest_app.api, http_app.api) == ("rest", "http")
    assert http["paths"].keys() == rest["paths"].keys()
    rest_invoke, http_invoke = rest["paths"]["/invoke"]["post"], http["paths"]["/invoke"]["post"]
    assert http_invoke["requestBody"] == rest_invoke["requestBody"]
    assert http_invoke["responses"]["200"] == rest_invoke["responses"]["200"]
    assert {"400", "413", "415", "429"} <= set(http_invoke["responses"])
    assert {str(spec.status) for spec in HTTP_API_GATEWAY_ERRORS} <= set(http_invoke["responses"])
    assert "GatewayMessage" in http["components"]["schemas"] and "GatewayMessage" not in rest["components"]["schemas"]


# -- who the caller is, from an HTTP API's authorizer context ------------------------------------------------


def test_an_http_api_iam_caller_is_named_like_a_rest_api_one():
    rest = principal_of({"identity": {"userArn": CALLER_ARN}})
    http = principal_of({"authorizer": {"iam": {"userArn": CALLER_ARN, "accessKey": "AKIA"}}})

    assert http == rest == "iam:arn:aws:iam::123456789012:role/agentrail-caller"


def test_an_http_api_jwt_caller_is_its_cognito_sub_like_a_rest_api_cognito_caller():
    claims = {"sub": "8f2c1d4e-0000-4000-8000-000000000001", "client_id": "4abc", "scope": "agents/invoke"}

    http = principal_of({"authorizer": {"jwt": {"claims": claims, "scopes": ["agents/invoke"]}}})

    assert http == principal_of({"authorizer": {"claims": claims}}) == "cognito:8f2c1d4e-0000-4000-8000-000000000001"
