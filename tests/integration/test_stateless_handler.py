"""The stateless Lambda handler, invoked with the shared API Gateway events in events/stateless/."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import boto3
import pytest
from aws_lambda_powertools.metrics.provider import cold_start
from moto import mock_aws
from openapi_spec_validator import validate as validate_openapi

from agentrail_handlers.stateless.app import handler
from agentrail_runtime.api.stateless import create_stateless_app

# Requests that never reach the agent (health, bad input) flush only ColdStart, and Powertools warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def invoke(load_event, lambda_context, headers_of):
    """Invoke the handler with an event from events/; returns (status, headers, parsed body, event)."""

    def call(name: str):
        event = load_event(f"stateless/{name}.json")
        response = handler(event, lambda_context)
        return response["statusCode"], headers_of(response), json.loads(response["body"]), event

    return call


def test_invoke_runs_the_tools_and_reports_answer_usage_cost_and_tool_calls(invoke):
    status, headers, body, event = invoke("invoke")

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["status"] == "completed"
    assert body["answer"] == 'calculator returned 84; convert_units returned {"unit": "mi", "value": 6.2137}.'
    assert body["model"] == "local"
    assert body["steps"] == 3
    usage = body["usage"]
    # Local mode's model simulates the prompt cache: the later steps read the prefix the first one sent.
    assert usage["cache_read_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == sum(
        usage[k] for k in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
    )
    assert body["cost_usd"] == 0.0
    assert [(c["step"], c["tool"], c["outcome"]) for c in body["tool_calls"]] == [
        (1, "calculator", "success"),
        (2, "convert_units", "success"),
    ]
    assert body["request_id"] == headers["X-Correlation-Id"] == event["requestContext"]["requestId"]


def test_a_base64_encoded_body_is_decoded(invoke):
    status, _, body, event = invoke("invoke-base64")

    assert event["isBase64Encoded"] is True
    assert status == 200
    assert body["answer"] == 'calculator returned 84; convert_units returned {"unit": "mi", "value": 6.2137}.'


BAD_REQUESTS = [
    # event, status, error code, details, text of the request that must not come back
    ("invalid-json", 400, "invalid_json", None, '"model": '),
    ("missing-field", 400, "invalid_request", [{"field": "message", "problem": "Field required"}], None),
    ("wrong-type", 400, "invalid_request", [{"field": "message", "problem": "Input should be a valid string"}], "73519"),
    (
        "unknown-field",
        400,
        "invalid_request",
        [{"field": "(unknown field)", "problem": "Unknown fields are not allowed."}],
        "scorching-hot-9000",
    ),
    ("unknown-model", 400, "unknown_model", None, "secret-model"),
    ("unknown-route", 404, "not_found", None, "admin/users"),
    ("oversized", 413, "payload_too_large", None, "€€€"),
]


@pytest.mark.parametrize(("name", "status", "code", "details", "echo"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_a_short_4xx_without_echo_or_trace_and_are_logged_with_the_correlation_id(
    invoke, stdout_records, name, status, code, details, echo
):
    got_status, headers, body, event = invoke(name)

    request_id = event["requestContext"]["requestId"]
    assert got_status == status
    assert body["error"] == code
    assert body["request_id"] == request_id
    assert body.get("details") == details
    assert set(body) <= {"error", "message", "request_id", "details"}
    assert len(body["message"]) < 120
    assert headers["X-Correlation-Id"] == request_id
    text = json.dumps(body, ensure_ascii=False)
    assert "Traceback" not in text and 'File "' not in text
    records = stdout_records()
    if echo:
        assert echo not in text
        assert echo not in json.dumps(records, ensure_ascii=False)
    [failure] = [r for r in records if r.get("event") == "request_error"]
    assert (failure["level"], failure["status"], failure["error"]) == ("WARNING", status, code)
    assert failure["correlation_id"] == request_id


def test_unknown_field_details_do_not_name_the_callers_field(invoke):
    _, _, body, _ = invoke("unknown-field")

    assert "temperature" not in json.dumps(body)


def test_unknown_model_lists_the_configured_models(invoke):
    _, _, body, _ = invoke("unknown-model")

    assert body["message"] == "Choose one of the configured models: local."


def test_the_oversized_event_breaks_only_the_byte_limit_not_the_message_length(load_event):
    event = load_event("stateless/oversized.json")
    message = json.loads(event["body"])["message"]

    assert len(message) <= 8000 < 16_384 < len(event["body"].encode())


def test_health_reports_the_local_model(invoke):
    status, headers, body, event = invoke("health")

    assert status == 200
    assert body["status"] == "ok"
    assert [(c["name"], c["ok"]) for c in body["checks"]] == [("model:local", True)]
    assert headers["X-Correlation-Id"] == event["requestContext"]["requestId"]


def test_openapi_document_is_valid_openapi_3_with_the_invoke_request_schema(invoke):
    status, _, document, _ = invoke("openapi")

    assert status == 200
    validate_openapi(document)
    assert document["openapi"].startswith("3.")
    invoke_operation = document["paths"]["/invoke"]["post"]
    assert invoke_operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InvokeRequest"
    }
    request_schema = document["components"]["schemas"]["InvokeRequest"]
    assert request_schema["required"] == ["message"]
    assert request_schema["additionalProperties"] is False
    assert request_schema["properties"]["message"]["maxLength"] == 8000
    assert "/health" in document["paths"]
    assert "/openapi.json" not in document["paths"]


def test_an_invocation_emits_cold_start_tokens_cost_steps_and_tool_calls_as_emf(invoke, stdout_records):
    cold_start.reset_cold_start_flag()

    invoke("invoke")

    blobs = [r for r in stdout_records() if "_aws" in r]
    by_metric = {
        metric["Name"]: (blob, directive["Dimensions"])
        for blob in blobs
        for directive in blob["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    assert {"ColdStart", "InputTokens", "OutputTokens", "CostUSD", "Steps"} <= set(by_metric)
    assert by_metric["ColdStart"][0]["ColdStart"] == [1.0]
    assert by_metric["Steps"][0]["Steps"] == [3.0]
    tool_calls = [b for b in blobs if "ToolCalls" in b]
    assert sorted((b["tool"], b["outcome"], b["ToolCalls"]) for b in tool_calls) == [
        ("calculator", "success", [1.0]),
        ("convert_units", "success", [1.0]),
    ]
    assert all(["service", "agent", "tool", "outcome"] in b["_aws"]["CloudWatchMetrics"][0]["Dimensions"] for b in tool_calls)


def test_a_warm_invocation_emits_no_cold_start(invoke, stdout_records):
    invoke("health")
    stdout_records()

    invoke("invoke")

    names = {m["Name"] for b in stdout_records() if "_aws" in b for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert "ColdStart" not in names
    assert "InputTokens" in names


# -- health with AWS dependencies (moto) -----------------------------------------------


@pytest.fixture
def aws():
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="agentrail-sessions",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        queue_url = boto3.client("sqs").create_queue(QueueName="agentrail-tasks")["QueueUrl"]
        yield {"queue_url": queue_url}


def health_app(demo_service, agent_env, checks):
    agent_env.setenv("AGENT_HEALTH_CHECKS", json.dumps(checks))
    service = demo_service()
    return create_stateless_app(service=service, settings=service.settings)


@pytest.mark.parametrize(
    ("table", "status_code", "status", "failed"),
    [
        ("agentrail-sessions", 200, "ok", []),
        ("agentrail-missing", 503, "degraded", [("dynamodb:agentrail-missing", "ResourceNotFoundException")]),
    ],
    ids=["ok-when-every-dependency-is-reachable", "503-degraded-naming-the-dependency-that-failed"],
)
def test_health_checks_every_dependency_and_is_503_degraded_naming_one_that_failed(
    aws, demo_service, agent_env, load_event, lambda_context, table, status_code, status, failed
):
    app = health_app(demo_service, agent_env, [{"kind": "dynamodb", "name": table}, {"kind": "sqs", "name": aws["queue_url"]}])

    response = app.resolve(load_event("stateless/health.json"), lambda_context)

    body = json.loads(response["body"])
    assert response["statusCode"] == status_code
    assert body["status"] == status
    assert [(c["name"], c["ok"]) for c in body["checks"]] == [
        ("model:local", True),
        (f"dynamodb:{table}", not failed),
        ("sqs:agentrail-tasks", True),
    ]
    assert [(c["name"], c["detail"]) for c in body["checks"] if not c["ok"]] == failed


# -- cold start --------------------------------------------------------------------------


def test_a_bad_agent_model_fails_the_cold_start_with_a_message_naming_the_setting_and_the_fix():
    env = {name: value for name, value in os.environ.items() if not name.startswith("AGENT_")} | {"AGENT_MODEL": "foo:bar"}

    done = subprocess.run(
        [sys.executable, "-c", "import agentrail_handlers.stateless.app"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "AGENT_MODEL: unknown model 'foo:bar': use 'local', 'bedrock:<model-id>' or 'openai:<model>'" in output
    # Powertools logs the uncaught error as one JSON line, which is what CloudWatch shows for the failed init.
    [logged] = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"level":"ERROR"')]
    assert logged["message"].startswith("1 validation error for RuntimeSettings")
    assert "AGENT_MODEL" in logged["message"]


@pytest.mark.parametrize("name", ["invoke", "missing-field", "health", "unknown-route"])
def test_every_answer_names_the_agent_version_that_gave_it_in_x_agent_version(invoke, name):
    from agentrail_handlers.stateless.app import app

    status, headers, _, _ = invoke(name)

    assert status in (200, 400, 404)
    assert headers["X-Agent-Version"] == app.agent_version
    assert re.fullmatch(r"[0-9a-f]{12}", app.agent_version)


def test_every_log_line_of_a_run_carries_the_agent_version(invoke, stdout_records):
    from agentrail_handlers.stateless.app import app

    invoke("invoke")

    logs = [record for record in stdout_records() if "level" in record]
    assert logs, "the run logs its steps"
    assert {record.get("agent_version") for record in logs} == {app.agent_version}


def test_the_openapi_document_lists_x_agent_version_on_every_success_response():
    document = create_stateless_app().get_openapi_schema().model_dump(by_alias=True, exclude_none=True)

    successes = [
        response
        for operations in document["paths"].values()
        for operation in operations.values()
        for status, response in operation["responses"].items()
        if str(status).startswith("2")
    ]
    assert successes
    assert all("X-Agent-Version" in response.get("headers", {}) for response in successes)
