"""Bedrock ConverseStream through a real bedrock-runtime client fed real event-stream bytes (no Stubber, no moto)."""

from __future__ import annotations

from typing import Any

import pytest

from agentrail_runtime.agent.events import TokenEvent
from agentrail_runtime.agent.loop import Agent, AgentStatus
from agentrail_runtime.demo import calculator
from agentrail_runtime.models.base import (
    Message,
    ModelRequestError,
    ModelThrottledError,
    ModelUnavailableError,
    TextBlock,
    ToolUseBlock,
    Usage,
)
from agentrail_runtime.models.bedrock import BedrockConverseModel
from agentrail_runtime.models.retry import Retrier
from tests.integration.event_stream import StreamEndpoint, event, exception, metadata, text_turn

MODEL_ID = "us.amazon.nova-lite-v1:0"
TOOL_USE_ID = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"

TOOL_TURN = [
    event("messageStart", {"role": "assistant"}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "I'll use "}}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "the calculator."}}),
    event("contentBlockStop", {"contentBlockIndex": 0}),
    event("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": TOOL_USE_ID, "name": "calculator"}}}),
    event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"expression": '}}}),
    event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '"(12 + 30) * 2"}'}}}),
    event("contentBlockStop", {"contentBlockIndex": 1}),
    event("messageStop", {"stopReason": "tool_use"}),
    metadata(412, 61),
]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def endpoint(client) -> StreamEndpoint:
    return StreamEndpoint(client)


@pytest.fixture
def model(client, sleeps) -> BedrockConverseModel:
    return BedrockConverseModel(MODEL_ID, client=client, retrier=Retrier(max_attempts=3, sleep=sleeps.append))


def stream(model: BedrockConverseModel, text: str = "Hi") -> tuple[Any, list[str]]:
    pieces: list[str] = []
    response = model.stream(system="Be brief.", messages=[Message.user(text)], tools=[], max_tokens=300, on_text=pieces.append)
    return response, pieces


def test_a_text_answer_streams_each_delta_and_returns_the_whole_response_with_usage(endpoint, model):
    # given: Bedrock answers in three deltas
    endpoint.queue(text_turn("The answer ", "is ", "84.", usage=(410, 12)))
    # when: the model streams a turn
    response, pieces = stream(model)
    # then: each delta went out in order, and the response is what Converse would have returned
    assert pieces == ["The answer ", "is ", "84."]
    assert response.message == Message.assistant("The answer is 84.")
    assert (response.stop_reason, response.usage, response.model) == (
        "end_turn",
        Usage(input_tokens=410, output_tokens=12),
        f"bedrock:{MODEL_ID}",
    )
    assert endpoint.requests == [
        {
            "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            "inferenceConfig": {"maxTokens": 300},
            "system": [{"text": "Be brief."}],
        }
    ]


def test_each_delta_is_handed_on_before_the_rest_of_the_stream_has_been_read(endpoint, model):
    # given: a stream whose chunks are counted as botocore reads them
    pieces: list[str] = []
    seen_before_chunk: dict[int, list[str]] = {}
    endpoint.before_chunk = lambda index: seen_before_chunk.setdefault(index, list(pieces))
    endpoint.queue(text_turn("one ", "two ", "three"))
    # when: the model streams it
    model.stream(system="", messages=[Message.user("count")], tools=[], max_tokens=100, on_text=pieces.append)
    # then: when the third delta's chunk was read, the first two had already been handed on
    assert seen_before_chunk[3] == ["one ", "two "]
    assert pieces == ["one ", "two ", "three"]


def test_tool_use_deltas_are_assembled_into_a_tool_use_block_after_the_text(endpoint, model):
    endpoint.queue(TOOL_TURN)
    # when: the model streams a turn that asks for a tool, its input spread over two deltas
    response, pieces = stream(model, "What is (12 + 30) * 2?")
    # then: the text streamed; the tool call carries the whole parsed input
    assert pieces == ["I'll use ", "the calculator."]
    assert response.message.content == [
        TextBlock(text="I'll use the calculator."),
        ToolUseBlock(id=TOOL_USE_ID, name="calculator", input={"expression": "(12 + 30) * 2"}),
    ]
    assert (response.stop_reason, response.usage.output_tokens) == ("tool_use", 61)


def test_two_text_blocks_stream_with_the_newline_that_joins_them_in_the_message(endpoint, model):
    endpoint.queue(
        [
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "First."}}),
            event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Second."}}),
            event("messageStop", {"stopReason": "end_turn"}),
        ]
    )
    response, pieces = stream(model)
    assert "".join(pieces) == response.message.text == "First.\nSecond."


def test_an_agent_run_on_converse_stream_streams_tool_events_and_answer_tokens(endpoint, model, clock):
    # given: Bedrock asks for the calculator, then answers
    endpoint.queue(TOOL_TURN, text_turn("(12 + 30) * 2 ", "= 84.", usage=(498, 14)))
    events: list[Any] = []
    # when: the agent runs with a sink
    result = Agent(model=model, tools=[calculator]).run("What is (12 + 30) * 2?", on_event=events.append)
    # then: the events follow the run, and the usage adds both calls
    assert [e.type for e in events] == ["step_started", "token", "tool_call", "tool_result", "step_started", "token", "final"]
    assert result.status is AgentStatus.COMPLETED and result.answer == "(12 + 30) * 2 = 84."
    assert [e.text for e in events if isinstance(e, TokenEvent)] == ["I'll use the calculator.", "(12 + 30) * 2 = 84."]
    assert events[-1].usage == Usage(input_tokens=910, output_tokens=75)
    assert endpoint.requests[1]["messages"][2]["content"][0]["toolResult"]["toolUseId"] == TOOL_USE_ID


def test_an_exception_event_after_text_raises_at_once_without_a_retry(endpoint, model, sleeps):
    # given: a stream that breaks with modelStreamErrorException after its first delta
    endpoint.queue(
        [
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "The answer"}}),
            exception("modelStreamErrorException", "The model stopped."),
        ],
        text_turn("never sent"),
    )
    pieces: list[str] = []
    # when: the model streams it
    with pytest.raises(
        ModelUnavailableError, match=rf"Model 'bedrock:{MODEL_ID}' failed \(ModelStreamErrorException\) after 1 attempts"
    ):
        model.stream(system="", messages=[Message.user("Hi")], tools=[], max_tokens=100, on_text=pieces.append)
    # then: what was sent stays sent once; nothing was retried; the broken stream's connection was let go
    assert pieces == ["The answer"]
    assert (len(endpoint.requests), sleeps) == (1, [])
    assert [raw.closed for raw in endpoint.streams] == [True]


def test_a_validation_exception_event_is_a_rejected_request(endpoint, model):
    endpoint.queue([exception("validationException", "The model does not support tool use in streaming mode.")])
    with pytest.raises(ModelRequestError, match=r"rejected the request \(ValidationException\)"):
        stream(model)


def test_throttling_before_the_stream_begins_is_retried_and_the_text_is_sent_once(endpoint, model, sleeps):
    # given: a 429 ThrottlingException, then a throttling exception event before any text, then an answer
    endpoint.queue(
        (429, "ThrottlingException", "Too many requests, please wait before trying again."),
        [exception("throttlingException", "Too many tokens, please wait before trying again.")],
        text_turn("Fine ", "now."),
    )
    # when: the model streams a turn
    response, pieces = stream(model)
    # then: two retries with a backoff each; the answer's text went out once
    assert len(endpoint.requests) == 3 and len(sleeps) == 2
    assert pieces == ["Fine ", "now."] and response.message.text == "Fine now."


def test_throttling_on_every_attempt_raises_model_throttled_naming_the_model(endpoint, model):
    endpoint.queue(*[(429, "ThrottlingException", "Too many requests.")] * 3)
    with pytest.raises(ModelThrottledError, match=rf"Model 'bedrock:{MODEL_ID}' is throttling requests after 3 attempts"):
        stream(model)


def test_a_guardrail_is_asked_to_judge_each_chunk_before_it_is_sent(endpoint, client):
    # given: a model with a Bedrock guardrail
    model = BedrockConverseModel(MODEL_ID, client=client, guardrail=("gr-1", "3"))
    endpoint.queue(text_turn("Sorry, I can't help with that.", stop_reason="guardrail_intervened"))
    # when: it streams a turn
    response, _ = stream(model)
    # then: the guardrail runs in sync mode, and the stop reason says it intervened
    assert endpoint.requests[0]["guardrailConfig"] == {
        "guardrailIdentifier": "gr-1",
        "guardrailVersion": "3",
        "trace": "enabled",
        "streamProcessingMode": "sync",
    }
    assert response.stop_reason == "guardrail_intervened"
