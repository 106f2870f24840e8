"""The OpenAI-compatible provider: httpx MockTransport for the HTTP side, its API key from Secrets Manager (moto)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from agentrail_runtime.agent.loop import Agent, AgentStatus
from agentrail_runtime.demo import calculator
from agentrail_runtime.models.base import UNTRUSTED_NOTICE, ModelRequestError, ModelThrottledError
from agentrail_runtime.models.openai import OpenAIChatModel
from agentrail_runtime.models.retry import Retrier

SECRET_NAME = "agentrail/openai-api-key"
API_KEY = "sk-test-4f8a2c9e1b7d"
BASE_URL = "https://llm.example.test/v1"


def completion(message: dict, finish_reason: str, prompt_tokens: int = 120, completion_tokens: int = 18) -> dict:
    """A chat-completions response as the OpenAI API returns it."""
    return {
        "id": "chatcmpl-9xYzA1b2C3d4E5f6",
        "object": "chat.completion",
        "created": 1795860000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


ANSWER = completion({"content": "The answer is 84.", "refusal": None}, "stop")
TOOL_CALL = completion(
    {
        "content": None,
        "tool_calls": [
            {
                "id": "call_Qx7vK2",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "(12 + 30) * 2"}'},
            }
        ],
    },
    "tool_calls",
)


class Endpoint:
    """Answers each POST with the next queued response and keeps every request it saw."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0)

    def bodies(self) -> list[dict]:
        return [json.loads(request.content) for request in self.requests]


@pytest.fixture
def secret() -> Iterator[str]:
    parameters.clear_caches()
    with mock_aws():
        boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=API_KEY)
        yield SECRET_NAME
    parameters.clear_caches()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def model_for(secret, sleeps) -> Callable[[Endpoint], OpenAIChatModel]:
    def build(endpoint: Endpoint) -> OpenAIChatModel:
        return OpenAIChatModel(
            "gpt-4o-mini",
            api_key_secret=secret,
            base_url=BASE_URL,
            http_client=httpx.Client(transport=httpx.MockTransport(endpoint)),
            retrier=Retrier(max_attempts=3, sleep=sleeps.append),
        )

    return build


def test_the_api_key_is_read_from_secrets_manager_into_the_authorization_header(model_for):
    endpoint = Endpoint(httpx.Response(200, json=ANSWER))

    result = Agent(model=model_for(endpoint)).run("Hello")

    [request] = endpoint.requests
    assert request.url == f"{BASE_URL}/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert result.answer == "The answer is 84."
    assert (result.usage.input_tokens, result.usage.output_tokens) == (120, 18)


def test_a_429_is_retried_after_its_retry_after_and_then_succeeds(model_for, sleeps):
    endpoint = Endpoint(
        httpx.Response(429, headers={"Retry-After": "2"}, json={"error": {"message": "Rate limit reached", "type": "requests"}}),
        httpx.Response(200, json=ANSWER),
    )

    result = Agent(model=model_for(endpoint)).run("Hello")

    assert result.status is AgentStatus.COMPLETED
    assert len(endpoint.requests) == 2
    assert len(sleeps) == 1 and sleeps[0] >= 2.0


def test_a_server_error_is_retried(model_for, sleeps):
    endpoint = Endpoint(httpx.Response(502, text="Bad Gateway"), httpx.Response(200, json=ANSWER))

    assert Agent(model=model_for(endpoint)).run("Hello").answer == "The answer is 84."
    assert len(endpoint.requests) == 2


def test_429_on_every_attempt_raises_model_throttled(model_for):
    endpoint = Endpoint(*(httpx.Response(429, json={"error": {"message": "Rate limit reached"}}) for _ in range(3)))

    with pytest.raises(ModelThrottledError, match="Model 'openai:gpt-4o-mini' is throttling requests after 3 attempts"):
        Agent(model=model_for(endpoint)).run("Hello")


def test_a_400_is_not_retried_and_names_the_model(model_for, sleeps):
    endpoint = Endpoint(httpx.Response(400, json={"error": {"message": "Invalid 'messages'"}}))

    with pytest.raises(ModelRequestError, match=r"Model 'openai:gpt-4o-mini' rejected the request \(HTTP 400\)"):
        Agent(model=model_for(endpoint)).run("Hello")

    assert (len(endpoint.requests), sleeps) == (1, [])


def test_tool_calls_round_trip_as_tool_use_blocks_and_tool_role_results(model_for):
    endpoint = Endpoint(httpx.Response(200, json=TOOL_CALL), httpx.Response(200, json=ANSWER))

    result = Agent(model=model_for(endpoint), tools=[calculator], system_prompt="Be brief.").run("What is (12 + 30) * 2?")

    first, second = endpoint.bodies()
    assert first["tools"] == [
        {
            "type": "function",
            "function": {"name": "calculator", "description": calculator.description, "parameters": calculator.spec.input_schema},
        }
    ]
    assert second["messages"][:3] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is (12 + 30) * 2?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_Qx7vK2",
                    "type": "function",
                    "function": {"name": "calculator", "arguments": '{"expression": "(12 + 30) * 2"}'},
                }
            ],
        },
    ]
    tool_message = second["messages"][3]
    assert (tool_message["role"], tool_message["tool_call_id"], tool_message["content"]) == (
        "tool",
        "call_Qx7vK2",
        f"<untrusted-tool-result>\n84\n</untrusted-tool-result>\n{UNTRUSTED_NOTICE}",
    )
    assert [(c.tool, c.tool_use_id, c.outcome) for c in result.tool_calls] == [("calculator", "call_Qx7vK2", "success")]
    assert result.answer == "The answer is 84."


def test_the_secret_is_read_once_per_execution_environment_not_per_call(model_for, secret):
    endpoint = Endpoint(httpx.Response(200, json=ANSWER), httpx.Response(200, json=ANSWER))
    model = model_for(endpoint)
    Agent(model=model).run("Hello")

    boto3.client("secretsmanager").put_secret_value(SecretId=secret, SecretString="sk-rotated")
    Agent(model=model).run("Hello again")

    assert [r.headers["Authorization"] for r in endpoint.requests] == [f"Bearer {API_KEY}"] * 2


def test_the_prompt_tokens_openai_read_from_its_own_cache_are_reported_as_cache_reads(model_for):
    answer = completion({"content": "The answer is 84.", "refusal": None}, "stop", prompt_tokens=2048)
    answer["usage"]["prompt_tokens_details"] = {"cached_tokens": 1920}
    endpoint = Endpoint(httpx.Response(200, json=answer))

    result = Agent(model=model_for(endpoint)).run("Hello")

    assert (result.usage.input_tokens, result.usage.cache_read_tokens, result.usage.cache_write_tokens) == (128, 1920, 0)
    assert result.usage.all_input_tokens == 2048
