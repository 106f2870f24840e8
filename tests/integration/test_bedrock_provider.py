"""Bedrock Converse through a real bedrock-runtime client with botocore's Stubber (moto has no Converse)."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY, Stubber

from agentrail_runtime.agent.loop import Agent, AgentStatus
from agentrail_runtime.api.stateless import create_stateless_app
from agentrail_runtime.demo import calculator
from agentrail_runtime.metering.pricing import ModelPrice, PriceTable
from agentrail_runtime.models.base import UNTRUSTED_NOTICE, ModelThrottledError
from agentrail_runtime.models.bedrock import BedrockConverseModel
from agentrail_runtime.models.retry import Retrier

MODEL_ID = "us.amazon.nova-lite-v1:0"
PROMPT = "What is (12 + 30) * 2?"
TOOL_USE_ID = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"


def converse_response(content: list[dict], stop_reason: str, input_tokens: int, output_tokens: int) -> dict:
    """A Converse response as Bedrock returns it."""
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens},
        "metrics": {"latencyMs": 812},
    }


TOOL_TURN = converse_response(
    [
        {"text": "I'll use the calculator."},
        {"toolUse": {"toolUseId": TOOL_USE_ID, "name": "calculator", "input": {"expression": "(12 + 30) * 2"}}},
    ],
    "tool_use",
    412,
    61,
)
ANSWER_TURN = converse_response([{"text": "(12 + 30) * 2 = 84."}], "end_turn", 498, 14)


def tool_result_message(result: object, status: str) -> dict:
    """The user message that hands the calculator's result (or error) back to Converse, marked as untrusted data."""
    marked = f"<untrusted-tool-result>\n{json.dumps(result)}\n</untrusted-tool-result>\n{UNTRUSTED_NOTICE}"
    return {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": TOOL_USE_ID, "content": [{"text": marked}], "status": status}}],
    }


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def model(client, sleeps) -> BedrockConverseModel:
    return BedrockConverseModel(MODEL_ID, client=client, retrier=Retrier(max_attempts=3, sleep=sleeps.append))


def throttle(stub: Stubber) -> None:
    stub.add_client_error(
        "converse",
        service_error_code="ThrottlingException",
        service_message="Too many requests, please wait before trying again.",
        http_status_code=429,
    )


def test_a_tool_use_turn_runs_the_tool_and_feeds_the_result_back_in_converse_shape(stub, model):
    stub.add_response(
        "converse",
        TOOL_TURN,
        expected_params={
            "modelId": MODEL_ID,
            "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 1024},
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "calculator",
                            "description": calculator.description,
                            "inputSchema": {"json": calculator.spec.input_schema},
                        }
                    }
                ]
            },
        },
    )
    stub.add_response(
        "converse",
        ANSWER_TURN,
        expected_params={
            "modelId": MODEL_ID,
            "messages": [
                {"role": "user", "content": [{"text": PROMPT}]},
                {
                    "role": "assistant",
                    "content": [
                        {"text": "I'll use the calculator."},
                        {"toolUse": {"toolUseId": TOOL_USE_ID, "name": "calculator", "input": {"expression": "(12 + 30) * 2"}}},
                    ],
                },
                tool_result_message(84, "success"),
            ],
            "system": ANY,
            "inferenceConfig": {"maxTokens": 1024},
            "toolConfig": ANY,
        },
    )
    prices = PriceTable({"bedrock:amazon.nova-lite": ModelPrice(input_per_million=1.0, output_per_million=2.0)})

    result = Agent(model=model, tools=[calculator], system_prompt="Be brief.", prices=prices).run(PROMPT)

    assert result.status is AgentStatus.COMPLETED
    assert result.answer == "(12 + 30) * 2 = 84."
    assert result.model == f"bedrock:{MODEL_ID}"
    assert [(c.tool, c.tool_use_id, c.outcome) for c in result.tool_calls] == [("calculator", TOOL_USE_ID, "success")]
    assert (result.usage.input_tokens, result.usage.output_tokens) == (412 + 498, 61 + 14)
    assert result.cost_usd == pytest.approx((910 * 1.0 + 75 * 2.0) / 1e6)


def test_a_failed_tool_goes_back_to_bedrock_as_an_error_tool_result(stub, model):
    stub.add_response(
        "converse",
        converse_response(
            [{"toolUse": {"toolUseId": TOOL_USE_ID, "name": "calculator", "input": {"expression": "1 / 0"}}}], "tool_use", 300, 30
        ),
    )
    stub.add_response(
        "converse",
        ANSWER_TURN,
        expected_params={
            "modelId": MODEL_ID,
            "messages": [
                ANY,
                ANY,
                tool_result_message({"error": "division by zero"}, "error"),
            ],
            "inferenceConfig": ANY,
            "toolConfig": ANY,
        },
    )

    result = Agent(model=model, tools=[calculator]).run("What is 1 / 0?")

    assert [c.outcome for c in result.tool_calls] == ["error"]


def test_throttling_is_retried_and_the_call_then_succeeds(stub, model, sleeps):
    throttle(stub)
    stub.add_response("converse", ANSWER_TURN)

    result = Agent(model=model).run(PROMPT)

    assert result.status is AgentStatus.COMPLETED
    assert result.answer == "(12 + 30) * 2 = 84."
    assert len(sleeps) == 1


def test_throttling_on_every_attempt_raises_model_throttled_naming_the_model(stub, model, sleeps):
    for _ in range(3):
        throttle(stub)

    with pytest.raises(
        ModelThrottledError, match=rf"Model 'bedrock:{MODEL_ID}' is throttling requests after 3 attempts"
    ) as raised:
        Agent(model=model).run(PROMPT)

    assert raised.value.retry_after_seconds > 0
    assert len(sleeps) == 2


def test_throttling_through_the_stateless_app_is_a_503_with_retry_after(
    stub, model, demo_service, load_event, lambda_context, headers_of
):
    for _ in range(3):
        throttle(stub)
    service = demo_service(model, model=f"bedrock:{MODEL_ID}")
    app = create_stateless_app(service=service, settings=service.settings)

    response = app.resolve(load_event("stateless/invoke.json"), lambda_context)

    body = json.loads(response["body"])
    assert response["statusCode"] == 503
    assert headers_of(response)["Retry-After"] == "5"
    assert body["error"] == "model_throttled"
    assert f"bedrock:{MODEL_ID}" in body["message"]


def test_a_rejected_request_through_the_stateless_app_is_a_502_naming_the_model_without_a_trace(
    stub, model, demo_service, load_event, lambda_context, headers_of
):
    provider_detail = "Malformed input request: #: extraneous key [temperature] is not permitted"
    stub.add_client_error(
        "converse", service_error_code="ValidationException", service_message=provider_detail, http_status_code=400
    )
    service = demo_service(model, model=f"bedrock:{MODEL_ID}")
    app = create_stateless_app(service=service, settings=service.settings)
    event = load_event("stateless/invoke.json")

    response = app.resolve(event, lambda_context)

    body = json.loads(response["body"])
    assert response["statusCode"] == 502
    assert body == {
        "error": "model_rejected_request",
        "message": f"Model 'bedrock:{MODEL_ID}' rejected the request (ValidationException).",
        "request_id": event["requestContext"]["requestId"],
    }
    assert "Traceback" not in response["body"]
    assert provider_detail not in response["body"]
    assert headers_of(response)["X-Correlation-Id"] == event["requestContext"]["requestId"]


def test_usage_and_cost_are_reported_by_the_stateless_app(stub, model, demo_service, load_event, lambda_context):
    stub.add_response("converse", TOOL_TURN)
    stub.add_response("converse", ANSWER_TURN)
    service = demo_service(
        model,
        model=f"bedrock:{MODEL_ID}",
        price_table={"bedrock:amazon.nova-lite": {"input_per_million": 1.0, "output_per_million": 2.0}},
    )
    app = create_stateless_app(service=service, settings=service.settings)

    response = app.resolve(load_event("stateless/invoke.json"), lambda_context)

    body = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert body["model"] == f"bedrock:{MODEL_ID}"
    assert body["usage"] == {
        "input_tokens": 910,
        "output_tokens": 75,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "total_tokens": 985,
    }
    assert body["cost_usd"] == pytest.approx((910 * 1.0 + 75 * 2.0) / 1e6)
    assert [(c["tool"], c["outcome"]) for c in body["tool_calls"]] == [("calculator", "success")]
