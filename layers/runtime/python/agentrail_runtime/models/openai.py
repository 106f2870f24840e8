"""OpenAI-compatible chat completions over httpx, with tool (function) calling.

The API key is read from AWS Secrets Manager through Powertools parameters
(cached per execution environment), never from a plain environment variable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import httpx
from botocore.retries import standard

from agentrail_runtime.aws import read_secret
from agentrail_runtime.models.base import (
    Message,
    ModelProvider,
    ModelRequestError,
    ModelResponse,
    ModelThrottledError,
    ModelUnavailableError,
    StopReason,
    TextBlock,
    TextSink,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
    untrusted_tool_result,
)
from agentrail_runtime.models.retry import Retrier, RetryState, http_response

T = TypeVar("T")

_FINISH_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "length": "max_tokens",
    "content_filter": "content_filtered",
}


def _classify(exc: BaseException, attempt: int) -> standard.RetryContext | None:
    if isinstance(exc, httpx.HTTPStatusError):
        headers = {}
        retry_after = exc.response.headers.get("retry-after")
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            headers["x-amz-retry-after"] = str(int(float(retry_after) * 1000))
        return standard.RetryContext(attempt_number=attempt, http_response=http_response(exc.response.status_code, headers))
    if isinstance(exc, httpx.TransportError):
        # No response at all: classify like a 503 so the standard policy treats it as transient.
        return standard.RetryContext(attempt_number=attempt, http_response=http_response(503))
    return None


class OpenAIChatModel(ModelProvider):
    """``openai:<model>``: any endpoint that speaks the OpenAI chat-completions API.

    Parameters
    ----------
    model_id:
        The ``model`` field of the request, e.g. ``gpt-4o-mini``.
    api_key_secret:
        Name or ARN of the Secrets Manager secret holding the API key.
    base_url:
        Default: ``https://api.openai.com/v1``.
    """

    def __init__(
        self,
        model_id: str,
        *,
        api_key_secret: str,
        base_url: str = "https://api.openai.com/v1",
        timeout: float = 60.0,
        retrier: Retrier | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.model_id = model_id
        self.name = f"openai:{model_id}"
        self._secret = api_key_secret
        self._base_url = base_url.rstrip("/")
        self._http = http_client or httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0))
        self._retrier = retrier or Retrier()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {read_secret(self._secret)}"}

    def converse(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
    ) -> ModelResponse:
        body = self._body(system, messages, tools, max_tokens)

        def post() -> dict[str, Any]:
            response = self._http.post(f"{self._base_url}/chat/completions", json=body, headers=self._headers())
            response.raise_for_status()
            return response.json()

        return from_chat_completion(self._call(post, _classify), self.name)

    def stream(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
        on_text: TextSink,
    ) -> ModelResponse:
        """One model turn with ``stream: true`` (server-sent events, usage asked for with ``stream_options``): content
        deltas go to ``on_text`` as they arrive, tool-call deltas are assembled into :class:`ToolUseBlock`.

        Errors are mapped and retried as :meth:`converse` does, as long as no text went to ``on_text``; after that
        (a dropped connection, an ``error`` event) the error is raised at once, so no text is sent twice.
        """
        body = self._body(system, messages, tools, max_tokens) | {"stream": True, "stream_options": {"include_usage": True}}
        sent = False

        def text(delta: str) -> None:
            nonlocal sent
            sent = True
            on_text(delta)

        def post() -> ModelResponse:
            with self._http.stream("POST", f"{self._base_url}/chat/completions", json=body, headers=self._headers()) as response:
                if response.is_error:
                    response.read()
                    response.raise_for_status()
                return from_chat_stream(response.iter_lines(), self.name, text)

        return self._call(post, lambda exc, attempt: None if sent else _classify(exc, attempt))

    def _body(self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_id, "messages": to_chat_messages(system, messages), "max_tokens": max_tokens}
        if tools:
            body["tools"] = [
                {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}
                for t in tools
            ]
        return body

    def _call(self, post: Callable[[], T], classify: Callable[[BaseException, int], standard.RetryContext | None]) -> T:
        """``post()`` under the retrier, its HTTP and transport errors mapped to :class:`ModelError` subclasses."""
        state = RetryState()
        try:
            return self._retrier.call(post, what="openai:chat.completions", state=state, classify=classify)
        except httpx.HTTPStatusError as error:
            status = error.response.status_code
            if status == 429:
                raise ModelThrottledError(
                    f"Model '{self.name}' is throttling requests after {state.attempts} attempts.", model=self.name
                ) from None
            if 400 <= status < 500:
                raise ModelRequestError(f"Model '{self.name}' rejected the request (HTTP {status}).", model=self.name) from None
            raise ModelUnavailableError(f"Model '{self.name}' failed (HTTP {status}).", model=self.name, retryable=True) from None
        except httpx.TransportError as error:
            raise ModelUnavailableError(
                f"Model '{self.name}' could not be reached ({type(error).__name__}).", model=self.name, retryable=True
            ) from None

    def check(self) -> None:
        try:
            response = self._http.get(f"{self._base_url}/models", headers=self._headers(), timeout=5.0)
        except httpx.TransportError as error:
            raise ModelUnavailableError(f"Model endpoint unreachable ({type(error).__name__}).", model=self.name) from None
        if response.status_code >= 400:
            raise ModelRequestError(f"Model endpoint answered HTTP {response.status_code}.", model=self.name)


def to_chat_messages(system: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        if message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            if message.tool_uses:
                entry["tool_calls"] = [
                    {"id": tu.id, "type": "function", "function": {"name": tu.name, "arguments": json.dumps(tu.input)}}
                    for tu in message.tool_uses
                ]
            out.append(entry)
            continue
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": untrusted_tool_result(block)})
            elif isinstance(block, TextBlock):
                out.append({"role": "user", "content": block.text})
    return out


def from_chat_completion(payload: dict[str, Any], model: str) -> ModelResponse:
    choice = payload["choices"][0]
    message = choice["message"]
    blocks: list[Any] = []
    if message.get("content"):
        blocks.append(TextBlock(text=message["content"]))
    for call in message.get("tool_calls") or []:
        try:
            arguments = json.loads(call["function"].get("arguments") or "{}")
        except json.JSONDecodeError:
            arguments = {}
        blocks.append(
            ToolUseBlock(id=call["id"], name=call["function"]["name"], input=arguments if isinstance(arguments, dict) else {})
        )
    usage = payload.get("usage") or {}
    return ModelResponse(
        message=Message(role="assistant", content=blocks),
        stop_reason=_FINISH_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        usage=_usage(usage),
        model=model,
    )


def from_chat_stream(lines: Iterable[str], model: str, on_text: TextSink) -> ModelResponse:
    """Assemble the server-sent events of a streamed chat completion (``data: {chunk}`` lines up to ``data: [DONE]``)
    into the response the non-streamed call would have given, calling ``on_text`` with each content delta.

    Raises
    ------
    ModelUnavailableError
        When the stream carries an ``error`` object instead of a chunk.
    """
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish_reason: str | None = None
    usage: dict[str, Any] = {}
    for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, ": keep-alive" comments, event names
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("error"):
            error = chunk["error"] if isinstance(chunk["error"], dict) else {}
            kind = error.get("type") or error.get("code") or "error"
            raise ModelUnavailableError(f"Model '{model}' failed while streaming ({kind}).", model=model, retryable=True)
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                content.append(delta["content"])
                on_text(delta["content"])
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call.get("index", 0), {"id": "", "name": "", "arguments": []})
                function = call.get("function") or {}
                entry["id"] = entry["id"] or call.get("id") or ""
                entry["name"] = entry["name"] or function.get("name") or ""
                entry["arguments"].append(function.get("arguments") or "")
            finish_reason = choice.get("finish_reason") or finish_reason
    message: dict[str, Any] = {"content": "".join(content) or None}
    if calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": "".join(c["arguments"])}}
            for _, c in sorted(calls.items())
        ]
    return from_chat_completion({"choices": [{"message": message, "finish_reason": finish_reason}], "usage": usage}, model)


def _usage(usage: dict[str, Any]) -> Usage:
    """A Chat Completions ``usage``: OpenAI caches long prompts by itself and counts the tokens it read from its cache
    in ``prompt_tokens_details.cached_tokens``, part of ``prompt_tokens``; they are reported as cache reads (it
    charges no cache write)."""
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = min(prompt, int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0))
    return Usage(input_tokens=prompt - cached, output_tokens=int(usage.get("completion_tokens") or 0), cache_read_tokens=cached)
