"""Test models that stream: scripted deltas, and one that holds its stream open until the test lets it finish."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from agentrail_runtime.models.base import (
    Message,
    ModelProvider,
    ModelResponse,
    TextBlock,
    TextSink,
    ToolSpec,
    ToolUseBlock,
    Usage,
)

#: Seconds a test waits for the other side of a hand-off between threads before it fails (never a timing assertion).
HAND_OFF_TIMEOUT = 30.0


def words(text: str) -> list[str]:
    """``text`` as deltas: each word with the spaces after it; joined, ``text``."""
    return re.findall(r"\S+\s*|\s+", text)


def answer(text: str, *, tokens: tuple[int, int] = (100, 20)) -> ModelResponse:
    return ModelResponse(
        message=Message.assistant(text),
        stop_reason="end_turn",
        usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]),
        model="streaming",
    )


def asks(call_id: str, name: str, arguments: dict[str, Any], *, text: str = "") -> ModelResponse:
    blocks: list[Any] = [TextBlock(text=text)] if text else []
    blocks.append(ToolUseBlock(id=call_id, name=name, input=arguments))
    return ModelResponse(
        message=Message(role="assistant", content=blocks),
        stop_reason="tool_use",
        usage=Usage(input_tokens=100, output_tokens=20),
        model="streaming",
    )


class ScriptedStreamingModel(ModelProvider):
    """Streams each queued response's text in the given deltas (default: its words), calling ``between(i)`` before
    delta ``i``; ``converse`` answers the same without streaming, and counts the calls of each."""

    name = "streaming"

    def __init__(
        self, *script: ModelResponse | tuple[ModelResponse, Sequence[str]], between: Callable[[int], None] | None = None
    ) -> None:
        self.script = [item if isinstance(item, tuple) else (item, words(item.message.text)) for item in script]
        self.between = between
        self.streamed = 0
        self.conversed = 0

    def converse(self, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int) -> ModelResponse:
        self.conversed += 1
        return self.script.pop(0)[0]

    def stream(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
        on_text: TextSink,
    ) -> ModelResponse:
        self.streamed += 1
        response, deltas = self.script.pop(0)
        for index, delta in enumerate(deltas):
            if self.between is not None:
                self.between(index)
            on_text(delta)
        return response

    def check(self) -> None:
        return None


class HeldStreamModel(ModelProvider):
    """Streams ``first`` deltas, then holds its stream open at a barrier the test also waits at, then streams the
    rest and returns. ``finished`` is set when the model call returns: a test that sees a token event while it is
    still clear has proved the event arrived while the model call was running."""

    name = "held"

    def __init__(self, text: str, *, first: int) -> None:
        self.pieces = words(text)
        self.first = first
        self.text = text
        self.barrier = threading.Barrier(2, timeout=HAND_OFF_TIMEOUT)
        self.finished = threading.Event()

    def converse(self, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int) -> ModelResponse:
        raise AssertionError("a run with an event sink must stream")

    def stream(
        self,
        *,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
        on_text: TextSink,
    ) -> ModelResponse:
        for piece in self.pieces[: self.first]:
            on_text(piece)
        self.barrier.wait()  # the stream stays open until the test has seen the first token event
        for piece in self.pieces[self.first :]:
            on_text(piece)
        self.finished.set()
        return answer(self.text)

    def check(self) -> None:
        return None
