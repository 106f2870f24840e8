"""The OpenAI-compatible provider streaming from a real HTTP server on 127.0.0.1 (server-sent events), its API key
from Secrets Manager (moto)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from agentrail_runtime.agent.events import TokenEvent
from agentrail_runtime.agent.loop import Agent
from agentrail_runtime.demo import calculator
from agentrail_runtime.models.base import (
    Message,
    ModelThrottledError,
    ModelUnavailableError,
    TextBlock,
    ToolUseBlock,
    Usage,
)
from agentrail_runtime.models.openai import OpenAIChatModel
from agentrail_runtime.models.retry import Retrier
from tests.streaming_models import HAND_OFF_TIMEOUT

SECRET_NAME = "agentrail/openai-api-key"
API_KEY = "sk-test-4f8a2c9e1b7d"


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
    """One ``data:`` line of a streamed chat completion, as the OpenAI API sends it."""
    body = {
        "id": "chatcmpl-9xYzA1b2C3d4E5f6",
        "object": "chat.completion.chunk",
        "created": 1795860000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    return f"data: {json.dumps(body)}\n\n"


def usage(prompt_tokens: int, completion_tokens: int) -> str:
    body = {
        "id": "chatcmpl-9xYzA1b2C3d4E5f6",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return f"data: {json.dumps(body)}\n\n"


DONE = "data: [DONE]\n\n"


def text_stream(*pieces: str, tokens: tuple[int, int] = (120, 9)) -> list[str]:
    return [
        chunk({"role": "assistant", "content": ""}),
        *[chunk({"content": piece}) for piece in pieces],
        chunk({}, "stop"),
        usage(*tokens),
        DONE,
    ]


TOOL_STREAM = [
    chunk(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"index": 0, "id": "call_Qx7vK2", "type": "function", "function": {"name": "calculator", "arguments": ""}}
            ],
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"expression'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '": "(12 + 30) * 2"}'}}]}),
    chunk({}, "tool_calls"),
    usage(150, 22),
    DONE,
]


class Server:
    """A chat-completions endpoint on 127.0.0.1: answers each POST with the next queued reply and keeps the bodies.

    A reply is a list of SSE frames (written one by one, each flushed; ``hold`` before frame ``hold_at`` waits until
    the test sets it) or a ``(status, body)`` tuple.
    """

    def __init__(self) -> None:
        self.replies: list[list[str] | tuple[int, dict[str, Any]]] = []
        self.bodies: list[dict[str, Any]] = []
        self.hold = threading.Event()
        self.hold_at: int | None = None
        self.held_until_released: bool | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                server.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                reply = server.replies.pop(0)
                if isinstance(reply, tuple):
                    status, body = reply
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(json.dumps(body).encode())
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for index, frame in enumerate(reply):
                    if index == server.hold_at:
                        server.held_until_released = server.hold.wait(HAND_OFF_TIMEOUT)
                    self.wfile.write(frame.encode())
                    self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def secret() -> Iterator[str]:
    parameters.clear_caches()
    with mock_aws():
        boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=API_KEY)
        yield SECRET_NAME
    parameters.clear_caches()


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def model(secret, server, sleeps) -> Iterator[OpenAIChatModel]:
    with httpx.Client(timeout=HAND_OFF_TIMEOUT, trust_env=False) as http:
        yield OpenAIChatModel(
            "gpt-4o-mini",
            api_key_secret=secret,
            base_url=server.url,
            http_client=http,
            retrier=Retrier(max_attempts=3, sleep=sleeps.append),
        )


def stream(model: OpenAIChatModel, on_text: Any = None) -> tuple[Any, list[str]]:
    pieces: list[str] = []
    response = model.stream(
        system="Be brief.", messages=[Message.user("Hi")], tools=[], max_tokens=200, on_text=on_text or pieces.append
    )
    return response, pieces


def test_a_streamed_answer_hands_on_each_content_delta_and_reports_usage_from_the_last_chunk(model, server):
    server.replies.append(text_stream("The answer ", "is ", "84."))
    # when: the model streams a turn
    response, pieces = stream(model)
    # then: each delta in order; the response as the non-streamed call would give it; the request asked for usage
    assert pieces == ["The answer ", "is ", "84."]
    assert response.message == Message.assistant("The answer is 84.")
    assert (response.stop_reason, response.usage) == ("end_turn", Usage(input_tokens=120, output_tokens=9))
    assert server.bodies[0]["stream"] is True and server.bodies[0]["stream_options"] == {"include_usage": True}
    assert server.bodies[0]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def test_the_first_delta_is_handed_on_while_the_server_still_holds_the_stream_open(model, server):
    # given: a server that stops after the first content delta until the client has handed that delta on
    server.replies.append(text_stream("first ", "second"))
    server.hold_at = 2

    def on_text(piece: str) -> None:
        pieces.append(piece)
        server.hold.set()

    pieces: list[str] = []
    # when: the model streams the turn
    stream(model, on_text)
    # then: the server was released by the client's first delta, not by its timeout
    assert server.held_until_released is True
    assert pieces == ["first ", "second"]


def test_tool_call_deltas_are_assembled_into_a_tool_use_block(model, server):
    server.replies.append(TOOL_STREAM)
    response, pieces = stream(model)
    assert pieces == []
    assert response.message.content == [ToolUseBlock(id="call_Qx7vK2", name="calculator", input={"expression": "(12 + 30) * 2"})]
    assert (response.stop_reason, response.usage) == ("tool_use", Usage(input_tokens=150, output_tokens=22))


def test_an_agent_run_on_a_streamed_endpoint_streams_its_events(model, server, clock):
    server.replies.extend([TOOL_STREAM, text_stream("(12 + 30) * 2 ", "= 84.", tokens=(190, 10))])
    events: list[Any] = []
    result = Agent(model=model, tools=[calculator]).run("What is (12 + 30) * 2?", on_event=events.append)
    assert [e.type for e in events] == ["step_started", "tool_call", "tool_result", "step_started", "token", "final"]
    assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == result.answer == "(12 + 30) * 2 = 84."
    assert events[-1].usage == Usage(input_tokens=340, output_tokens=32)
    assert server.bodies[1]["messages"][-1]["role"] == "tool"


def test_a_429_before_the_stream_is_retried_and_the_text_is_sent_once(model, server, sleeps):
    server.replies.extend([(429, {"error": {"message": "Rate limit reached", "type": "requests"}}), text_stream("Fine.")])
    response, pieces = stream(model)
    assert (len(server.bodies), len(sleeps), pieces) == (2, 1, ["Fine."])
    assert response.message.content == [TextBlock(text="Fine.")]


def test_a_429_on_every_attempt_raises_model_throttled(model, server):
    server.replies.extend([(429, {"error": {"message": "Rate limit reached"}})] * 3)
    with pytest.raises(ModelThrottledError, match=r"Model 'openai:gpt-4o-mini' is throttling requests after 3 attempts"):
        stream(model)


def test_an_error_event_mid_stream_raises_at_once_without_a_retry(model, server, sleeps):
    server.replies.extend(
        [
            [
                chunk({"content": "The ans"}),
                f"data: {json.dumps({'error': {'type': 'server_error', 'message': 'overloaded'}})}\n\n",
            ],
            text_stream("never"),
        ]
    )
    pieces: list[str] = []
    with pytest.raises(ModelUnavailableError, match=r"failed while streaming \(server_error\)"):
        model.stream(system="", messages=[Message.user("Hi")], tools=[], max_tokens=100, on_text=pieces.append)
    assert (pieces, len(server.bodies), sleeps) == (["The ans"], 1, [])
