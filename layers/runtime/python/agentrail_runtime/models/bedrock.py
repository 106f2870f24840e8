"""Amazon Bedrock Converse and ConverseStream, with tool use."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EventStreamError

from agentrail_runtime import aws
from agentrail_runtime.models.base import (
    INFERENCE_PROFILE_PREFIXES,
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
from agentrail_runtime.models.caching import CacheRules, cache_points, rules_for
from agentrail_runtime.models.retry import Retrier, RetryState, context_from_exception

_REJECTED = {"ValidationException", "AccessDeniedException", "ResourceNotFoundException"}
_THROTTLED = {"ThrottlingException", "ModelNotReadyException", "TooManyRequestsException"}
_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "guardrail_intervened",
    "content_filtered": "content_filtered",
}
#: The HTTP status a ConverseStream exception event stands for (it arrives inside a 200 response).
_STREAM_EXCEPTION_STATUS = {
    "ThrottlingException": 429,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
    "ModelStreamErrorException": 424,
    "ValidationException": 400,
}


def client_config(read_timeout: float) -> Config:
    # One attempt per botocore call: the Retrier owns retries (see models/retry.py).
    return Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=read_timeout,
        user_agent_extra="agentrail",
    )


class BedrockConverseModel(ModelProvider):
    """``bedrock:<model-id>``: the Bedrock Converse API.

    Parameters
    ----------
    model_id:
        A foundation model id or an inference profile id (``us.amazon.nova-lite-v1:0``).
    client:
        A ``bedrock-runtime`` client; one with a single attempt is created by default.
    retrier:
        Retries throttling and transient errors with jittered backoff. Default: 4 attempts.
    guardrail:
        A Bedrock guardrail's id (or ARN) and version, sent with every call as Converse's ``guardrailConfig`` (with
        its trace on). When the guardrail intervenes, the response's ``stop_reason`` is ``guardrail_intervened`` and
        its text is the guardrail's blocked message. :meth:`stream` asks for its ``sync`` mode: the guardrail judges
        each chunk before Bedrock sends it. Default: none.
    prompt_caching:
        Send cache points (:func:`~agentrail_runtime.models.caching.cache_points`: after the tools, the system prompt,
        the stable history and the last message, where each prefix reaches the model's minimum) when the model
        caches prompts (:func:`~agentrail_runtime.models.caching.rules_for`); a model that does not is sent none.
        The response's cache-read and cache-write tokens are reported in :class:`Usage`. Default: on.
    """

    def __init__(
        self,
        model_id: str,
        *,
        client: Any = None,
        control_client: Any = None,
        retrier: Retrier | None = None,
        read_timeout: float = 60.0,
        temperature: float | None = None,
        guardrail: tuple[str, str] | None = None,
        prompt_caching: bool = True,
    ) -> None:
        self.model_id = model_id
        #: The model's prompt-caching rules; ``None`` when it does not cache prompts or caching is off.
        self.cache_rules: CacheRules | None = rules_for(model_id) if prompt_caching else None
        self.name = f"bedrock:{model_id}"
        self._client = client or aws.client("bedrock-runtime", config=client_config(read_timeout))
        self._control_client = control_client
        service = self._client.meta.service_model
        operation, streaming = service.operation_model("Converse"), service.operation_model("ConverseStream")
        self._retrier = retrier or Retrier()
        self._classify = lambda exc, attempt: context_from_exception(exc, attempt, operation)
        self._classify_stream = lambda exc, attempt: context_from_exception(exc, attempt, streaming)
        self._temperature = temperature
        self.guardrail = guardrail

    def converse(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
    ) -> ModelResponse:
        request = self._request(system, messages, tools, max_tokens)
        state = RetryState()
        try:
            response = self._retrier.call(
                lambda: self._client.converse(**request), what="bedrock:Converse", state=state, classify=self._classify
            )
        except ClientError as error:
            raise self._translate(error, state) from None
        except BotoCoreError as error:
            raise self._unreachable(error) from None
        return from_converse_response(response, self.name)

    def stream(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
        on_text: TextSink,
    ) -> ModelResponse:
        """One model turn through ConverseStream: text deltas go to ``on_text`` as Bedrock sends them, tool-use input
        deltas are assembled into :class:`ToolUseBlock`, usage comes from the stream's ``metadata`` event.

        A throttled or failed call is retried like :meth:`converse` (an exception event counts as the error it names)
        as long as no text went to ``on_text``; after that, the error is raised at once, so no text is sent twice.
        """
        request = self._request(system, messages, tools, max_tokens)
        if "guardrailConfig" in request:
            request["guardrailConfig"]["streamProcessingMode"] = "sync"
        state = RetryState()
        sent = False

        def text(delta: str) -> None:
            nonlocal sent
            sent = True
            on_text(delta)

        def call() -> ModelResponse:
            events = self._client.converse_stream(**request)["stream"]
            try:
                return from_converse_stream(events, self.name, text)
            except EventStreamError as error:
                raise _as_client_error(error) from None
            finally:
                events.close()  # a stream left half read would hold its connection until collected

        try:
            return self._retrier.call(
                call,
                what="bedrock:ConverseStream",
                state=state,
                classify=lambda exc, attempt: None if sent else self._classify_stream(exc, attempt),
            )
        except ClientError as error:
            raise self._translate(error, state) from None
        except BotoCoreError as error:
            raise self._unreachable(error) from None

    def _request(self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int) -> dict[str, Any]:
        request: dict[str, Any] = {
            "modelId": self.model_id,
            "messages": [to_converse_message(m) for m in messages],
            "inferenceConfig": {"maxTokens": max_tokens},
        }
        if self._temperature is not None:
            request["inferenceConfig"]["temperature"] = self._temperature
        if system:
            request["system"] = [{"text": system}]
        if self.guardrail is not None:
            identifier, version = self.guardrail
            request["guardrailConfig"] = {"guardrailIdentifier": identifier, "guardrailVersion": version, "trace": "enabled"}
        if tools:
            request["toolConfig"] = {
                "tools": [
                    {"toolSpec": {"name": t.name, "description": t.description, "inputSchema": {"json": t.input_schema}}}
                    for t in tools
                ]
            }
        for point in cache_points(self.cache_rules, system=system, messages=messages, tools=tools):
            if point.field == "tools":
                request["toolConfig"]["tools"].append(dict(_CACHE_POINT))
            elif point.field == "system":
                request["system"].append(dict(_CACHE_POINT))
            else:
                request["messages"][point.index]["content"].append(dict(_CACHE_POINT))
        return request

    def _unreachable(self, error: BotoCoreError) -> ModelUnavailableError:
        return ModelUnavailableError(
            f"Model '{self.name}' could not be reached ({type(error).__name__}).", model=self.name, retryable=True
        )

    def check(self) -> None:
        if self._control_client is None:
            self._control_client = aws.client("bedrock", config=client_config(5.0))
        client = self._control_client
        try:
            if self.model_id.startswith(INFERENCE_PROFILE_PREFIXES):
                client.get_inference_profile(inferenceProfileIdentifier=self.model_id)
            else:
                client.get_foundation_model(modelIdentifier=self.model_id)
        except ClientError as error:
            raise ModelRequestError(
                f"Model '{self.name}' is not available ({error.response['Error']['Code']}).", model=self.name
            ) from None
        except BotoCoreError as error:
            raise ModelUnavailableError(f"Bedrock could not be reached ({type(error).__name__}).", model=self.name) from None

    def _translate(self, error: ClientError, state: RetryState) -> Exception:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        if code in _THROTTLED:
            return ModelThrottledError(
                f"Model '{self.name}' is throttling requests after {state.attempts} attempts.", model=self.name
            )
        if code in _REJECTED:
            return ModelRequestError(f"Model '{self.name}' rejected the request ({code}).", model=self.name)
        return ModelUnavailableError(
            f"Model '{self.name}' failed ({code}) after {state.attempts} attempts.", model=self.name, retryable=True
        )


#: A cache point as Converse takes it in ``system``, ``toolConfig.tools`` and a message's ``content``.
_CACHE_POINT = {"cachePoint": {"type": "default"}}


def usage_of(usage: dict[str, Any]) -> Usage:
    """Converse's ``usage`` (or ConverseStream's metadata usage): ``inputTokens`` is the input neither read from nor
    written to the prompt cache; the cache's tokens are reported apart."""
    return Usage(
        input_tokens=usage.get("inputTokens", 0),
        output_tokens=usage.get("outputTokens", 0),
        cache_read_tokens=usage.get("cacheReadInputTokens", 0),
        cache_write_tokens=usage.get("cacheWriteInputTokens", 0),
    )


def to_converse_message(message: Message) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            content.append({"text": block.text})
        elif isinstance(block, ToolUseBlock):
            content.append({"toolUse": {"toolUseId": block.id, "name": block.name, "input": block.input}})
        elif isinstance(block, ToolResultBlock):
            body = [{"text": untrusted_tool_result(block)}]
            content.append({"toolResult": {"toolUseId": block.tool_use_id, "content": body, "status": block.status}})
    return {"role": message.role, "content": content}


def from_converse_response(response: dict[str, Any], model: str) -> ModelResponse:
    blocks: list[Any] = []
    for item in response["output"]["message"]["content"]:
        if "text" in item:
            blocks.append(TextBlock(text=item["text"]))
        elif "toolUse" in item:
            use = item["toolUse"]
            blocks.append(ToolUseBlock(id=use["toolUseId"], name=use["name"], input=use.get("input") or {}))
    return ModelResponse(
        message=Message(role="assistant", content=blocks),
        stop_reason=_STOP_REASONS.get(response.get("stopReason", "end_turn"), "end_turn"),
        usage=usage_of(response.get("usage", {})),
        model=model,
    )


def _as_client_error(error: EventStreamError) -> ClientError:
    """An exception event of a stream as the ``ClientError`` a failed call would have raised: its code in the usual
    case (``throttlingException`` -> ``ThrottlingException``) and the HTTP status it stands for, so that retries and
    error mapping treat both alike."""
    detail = error.response.get("Error", {})
    code = str(detail.get("Code") or "ModelStreamErrorException")
    code = code[:1].upper() + code[1:]
    status = _STREAM_EXCEPTION_STATUS.get(code, 500)
    response: Any = {
        "Error": {"Code": code, "Message": detail.get("Message", "")},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "ConverseStream")


def from_converse_stream(events: Iterable[dict[str, Any]], model: str, on_text: TextSink) -> ModelResponse:
    """Assemble a ConverseStream's events into the response Converse would have given, calling ``on_text`` with each
    text delta as it is read (and ``"\\n"`` between two text blocks, as :attr:`Message.text` joins them).

    Raises
    ------
    EventStreamError
        When the stream carries an exception event.
    """
    texts: dict[int, list[str]] = {}
    uses: dict[int, tuple[dict[str, Any], list[str]]] = {}
    stop_reason = "end_turn"
    usage: dict[str, Any] = {}
    for event in events:
        if "contentBlockDelta" in event:
            body = event["contentBlockDelta"]
            index, delta = body.get("contentBlockIndex", 0), body.get("delta", {})
            if "text" in delta:
                if index not in texts:
                    if texts:
                        on_text("\n")
                    texts[index] = []
                texts[index].append(delta["text"])
                on_text(delta["text"])
            elif "toolUse" in delta and index in uses:
                uses[index][1].append(delta["toolUse"].get("input", ""))
        elif "contentBlockStart" in event:
            body = event["contentBlockStart"]
            start = body.get("start", {}).get("toolUse")
            if start is not None:
                uses[body.get("contentBlockIndex", 0)] = (start, [])
        elif "messageStop" in event:
            stop_reason = event["messageStop"].get("stopReason", "end_turn")
        elif "metadata" in event:
            usage = event["metadata"].get("usage", {})
    blocks: list[Any] = []
    for index in sorted({*texts, *uses}):
        if index in texts:
            blocks.append(TextBlock(text="".join(texts[index])))
        else:
            start, parts = uses[index]
            blocks.append(ToolUseBlock(id=start["toolUseId"], name=start["name"], input=_tool_input("".join(parts))))
    return ModelResponse(
        message=Message(role="assistant", content=blocks),
        stop_reason=_STOP_REASONS.get(stop_reason, "end_turn"),
        usage=usage_of(usage),
        model=model,
    )


def _tool_input(text: str) -> dict[str, Any]:
    """A tool call's input from the JSON its deltas spelled; ``{}`` when there is none (or it is no JSON object)."""
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
