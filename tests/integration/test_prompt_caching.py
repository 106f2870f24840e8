"""Prompt caching on Bedrock Converse through a real bedrock-runtime client (botocore's Stubber: moto has no Converse),
the cache's tokens metered and priced apart, and kept on a task (moto's DynamoDB)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from agentrail_runtime.agent.loop import Agent
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.api.stateless import create_stateless_app
from agentrail_runtime.metering.pricing import PriceTable
from agentrail_runtime.models.base import Message, Usage
from agentrail_runtime.models.bedrock import BedrockConverseModel
from agentrail_runtime.models.retry import Retrier
from agentrail_runtime.tasks.models import TaskRecord
from agentrail_runtime.tasks.store import TaskStore
from tests.integration.conftest import create_table
from tests.integration.event_stream import StreamEndpoint, event

#: About 1,300 tokens: past the minimum of Claude Sonnet 4 (1,024) and Nova (1,000).
SYSTEM = "You answer questions about orders and refunds, briefly and exactly. " * 75
CACHE_POINT = {"cachePoint": {"type": "default"}}


@tool
def lookup(order_id: str) -> dict:
    """Look an order up by its id."""
    return {"order_id": order_id, "status": "shipped"}


TOOL_SPEC = {"toolSpec": {"name": "lookup", "description": lookup.description, "inputSchema": {"json": lookup.spec.input_schema}}}


def answer(text: str, *, input_tokens: int, cache_read: int = 0, cache_write: int = 0, output_tokens: int = 20) -> dict:
    """A Converse response with the cache's share of the input reported apart, as Bedrock does."""
    usage = {
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "totalTokens": input_tokens + cache_read + cache_write + output_tokens,
    }
    if cache_read or cache_write:
        usage |= {"cacheReadInputTokens": cache_read, "cacheWriteInputTokens": cache_write}
    message = {"role": "assistant", "content": [{"text": text}]}
    return {"output": {"message": message}, "stopReason": "end_turn", "usage": usage, "metrics": {"latencyMs": 700}}


def run(client, model_id: str, **options) -> None:
    model = BedrockConverseModel(model_id, client=client, retrier=Retrier(max_attempts=1), **options)
    Agent(model=model, tools=[lookup], system_prompt=SYSTEM).run("Where is my order?")


@pytest.mark.parametrize("model_id", ["us.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic.claude-3-7-sonnet-20250219-v1:0"])
def test_claude_is_sent_a_cache_point_after_its_system_prompt(stub, client, model_id):
    stub.add_response(
        "converse",
        answer("It shipped.", input_tokens=9, cache_write=1300),
        expected_params={
            "modelId": model_id,
            "messages": [{"role": "user", "content": [{"text": "Where is my order?"}, CACHE_POINT]}],
            "system": [{"text": SYSTEM}, CACHE_POINT],
            "inferenceConfig": {"maxTokens": 1024},
            # The one tool is under Claude's minimum alone: no point after it.
            "toolConfig": {"tools": [TOOL_SPEC]},
        },
    )

    run(client, model_id)


def test_nova_is_sent_cache_points_in_system_and_messages_never_in_its_tools(stub, client):
    big = tool(lookup.function, name="lookup", description="Look an order up by its id. " * 400)
    stub.add_response(
        "converse",
        answer("It shipped.", input_tokens=9),
        expected_params={
            "modelId": "us.amazon.nova-pro-v1:0",
            "messages": [{"role": "user", "content": [{"text": "Where is my order?"}, CACHE_POINT]}],
            "system": [{"text": SYSTEM}, CACHE_POINT],
            "inferenceConfig": {"maxTokens": 1024},
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "lookup",
                            "description": big.description,
                            "inputSchema": {"json": big.spec.input_schema},
                        }
                    }
                ]
            },
        },
    )
    model = BedrockConverseModel("us.amazon.nova-pro-v1:0", client=client, retrier=Retrier(max_attempts=1))

    Agent(model=model, tools=[big], system_prompt=SYSTEM).run("Where is my order?")


@pytest.mark.parametrize(
    ("model_id", "options"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", {}),  # no prompt caching on Bedrock
        ("meta.llama3-1-8b-instruct-v1:0", {}),
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", {"prompt_caching": False}),
    ],
)
def test_a_model_without_prompt_caching_or_with_it_off_is_sent_no_cache_point(stub, client, model_id, options):
    stub.add_response(
        "converse",
        answer("It shipped.", input_tokens=1320),
        expected_params={
            "modelId": model_id,
            "messages": [{"role": "user", "content": [{"text": "Where is my order?"}]}],
            "system": [{"text": SYSTEM}],
            "inferenceConfig": {"maxTokens": 1024},
            "toolConfig": {"tools": [TOOL_SPEC]},
        },
    )

    run(client, model_id, **options)


def test_a_prompt_under_the_model_s_minimum_is_sent_no_cache_point(stub, client):
    stub.add_response(
        "converse",
        answer("Hi.", input_tokens=12),
        expected_params={
            "modelId": "anthropic.claude-3-5-haiku-20241022-v1:0",  # 2,048 tokens at least
            "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            "system": [{"text": SYSTEM}],
            "inferenceConfig": {"maxTokens": 1024},
        },
    )
    model = BedrockConverseModel("anthropic.claude-3-5-haiku-20241022-v1:0", client=client, retrier=Retrier(max_attempts=1))

    Agent(model=model, system_prompt=SYSTEM).run("Hi")


def test_a_session_s_stable_history_gets_its_own_cache_point(stub, client):
    history = [Message.user("My order is 42."), Message.assistant("Noted: order 42.")]
    stub.add_response(
        "converse",
        answer("It shipped.", input_tokens=9, cache_read=1300, cache_write=30),
        expected_params={
            "modelId": "anthropic.claude-sonnet-4-20250514-v1:0",
            "messages": [
                {"role": "user", "content": [{"text": "My order is 42."}]},
                {"role": "assistant", "content": [{"text": "Noted: order 42."}, CACHE_POINT]},
                {"role": "user", "content": [{"text": "Where is it?"}, CACHE_POINT]},
            ],
            "system": [{"text": SYSTEM}, CACHE_POINT],
            "inferenceConfig": {"maxTokens": 1024},
        },
    )
    model = BedrockConverseModel("anthropic.claude-sonnet-4-20250514-v1:0", client=client, retrier=Retrier(max_attempts=1))

    result = Agent(model=model, system_prompt=SYSTEM).run("Where is it?", history=history)

    assert result.usage == Usage(input_tokens=9, cache_read_tokens=1300, cache_write_tokens=30, output_tokens=20)


def test_cache_tokens_are_priced_apart_and_reported_by_the_stateless_app(stub, client, demo_service, load_event, lambda_context):
    model = BedrockConverseModel("us.anthropic.claude-sonnet-4-20250514-v1:0", client=client, retrier=Retrier(max_attempts=1))
    stub.add_response("converse", answer("84.", input_tokens=100, cache_read=2000, cache_write=500, output_tokens=10))
    prices = {
        "bedrock:anthropic.claude-sonnet-4": {
            "input_per_million": 3.0,
            "output_per_million": 15.0,
            "cache_read_per_million": 0.3,
            "cache_write_per_million": 3.75,
        }
    }
    service = demo_service(model, model="bedrock:us.anthropic.claude-sonnet-4-20250514-v1:0", price_table=prices)
    app = create_stateless_app(service=service, settings=service.settings)

    body = json.loads(app.resolve(load_event("stateless/invoke.json"), lambda_context)["body"])

    assert body["usage"] == {
        "input_tokens": 100,
        "output_tokens": 10,
        "cache_read_tokens": 2000,
        "cache_write_tokens": 500,
        "total_tokens": 2610,
    }
    assert body["cost_usd"] == pytest.approx((100 * 3.0 + 2000 * 0.3 + 500 * 3.75 + 10 * 15.0) / 1e6)
    uncached = PriceTable().cost("bedrock:anthropic.claude-sonnet-4", Usage(input_tokens=2600, output_tokens=10))
    assert uncached is not None and body["cost_usd"] < uncached / 2


def test_converse_stream_reports_the_cache_s_tokens_from_its_metadata(client):
    endpoint = StreamEndpoint(client)
    usage = {"inputTokens": 7, "outputTokens": 3, "cacheReadInputTokens": 1400, "cacheWriteInputTokens": 0, "totalTokens": 1410}
    endpoint.queue(
        [
            event("messageStart", {"role": "assistant"}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Shipped."}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "end_turn"}),
            event("metadata", {"usage": usage, "metrics": {"latencyMs": 210}}),
        ]
    )
    model = BedrockConverseModel("anthropic.claude-sonnet-4-20250514-v1:0", client=client, retrier=Retrier(max_attempts=1))

    response = model.stream(system=SYSTEM, messages=[Message.user("Where?")], tools=[], max_tokens=100, on_text=lambda _: None)

    assert response.usage == Usage(input_tokens=7, output_tokens=3, cache_read_tokens=1400)
    assert endpoint.requests[0]["system"] == [{"text": SYSTEM}, CACHE_POINT]


def test_a_task_keeps_the_cache_s_tokens_of_each_agent_and_in_all():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        store = TaskStore(create_table(dynamodb, "tasks", "task_id"), client=dynamodb, clock=lambda: 1_800_000_000.0)
        store.create(TaskRecord(task_id="t-1", owner="alice", message="hi", created_at=1_800_000_000, updated_at=1_800_000_000))

        store.add_spend(
            "t-1", "router", Usage(input_tokens=10, output_tokens=2, cache_read_tokens=1000, cache_write_tokens=50), 0.001
        )
        store.add_spend("t-1", "router", Usage(input_tokens=5, output_tokens=1, cache_read_tokens=1050), 0.0005)
        store.add_spend("t-1", "billing", Usage(input_tokens=300, output_tokens=40), 0.002)  # no cache: no cache fields
        record = store.get("t-1")

    assert record is not None
    assert record.usage == Usage(input_tokens=315, output_tokens=43, cache_read_tokens=2050, cache_write_tokens=50)
    assert record.spend["router"].usage == Usage(input_tokens=15, output_tokens=3, cache_read_tokens=2050, cache_write_tokens=50)
    assert record.spend["billing"].usage == Usage(input_tokens=300, output_tokens=40)
