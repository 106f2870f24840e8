"""Token estimates without a tokenizer (about four characters a token): what the agent loop checks a model call
against the token budget with, what sessions size their history windows by, and what the local model reports."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from functools import wraps
from typing import TypeVar

from agentrail_runtime.models.base import Message, ToolSpec

__all__ = ["by_identity", "count_tokens", "estimate_input_tokens", "tools_json"]

T = TypeVar("T")
R = TypeVar("R")

#: The JSON of the tool specs of recent model calls, by their identities (kept with them, so an id is never reused):
#: every call of an agent sends the same specs (frozen, built once per tool), and serializing them was most of the
#: work of each estimate and of each simulated cache lookup.
_TOOLS_JSON: dict[tuple[int, ...], tuple[tuple[ToolSpec, ...], str]] = {}
_REMEMBERED_TOOL_SETS = 64


def tools_json(tools: Sequence[ToolSpec]) -> str:
    """The tool specs as a model call's input holds them (JSON, without the local model's patterns)."""
    key = tuple(map(id, tools))
    known = _TOOLS_JSON.get(key)
    if known is not None and all(kept is tool for kept, tool in zip(known[0], tools, strict=True)):
        return known[1]
    text = json.dumps([t.model_dump(mode="json", exclude={"local_patterns"}) for t in tools])
    if len(_TOOLS_JSON) >= _REMEMBERED_TOOL_SETS:
        _TOOLS_JSON.clear()
    _TOOLS_JSON[key] = (tuple(tools), text)
    return text


def by_identity(maxsize: int) -> Callable[[Callable[[T], R]], Callable[[T], R]]:
    """Remember what a function gives for each of the last ``maxsize`` objects (about) it was called with, by the
    object's identity, the object kept with it (so its id is never reused meanwhile). For frozen objects an agent
    passes again and again: each step of a run re-sends the transcript so far, whose messages the step before
    already measured and serialized."""

    def decorate(function: Callable[[T], R]) -> Callable[[T], R]:
        known: dict[int, tuple[T, R]] = {}

        @wraps(function)
        def remembered(item: T) -> R:
            hit = known.get(id(item))
            if hit is not None and hit[0] is item:
                return hit[1]
            value = function(item)
            if len(known) >= maxsize:
                known.clear()
            known[id(item)] = (item, value)
            return value

        return remembered

    return decorate


@by_identity(256)
def _json_length(message: Message) -> int:
    return len(json.dumps(message.model_dump(mode="json")))


def count_tokens(text: str) -> int:
    """About one token per four characters; 0 for no text."""
    return math.ceil(len(text) / 4) if text else 0


def estimate_input_tokens(system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int:
    """The input tokens of one model call: the system prompt, the transcript and the tool specs. A provider's
    tokenizer may count differently."""
    # The length of json.dumps(list of the messages' dicts), without building it: "[", the items joined by ", ", "]".
    transcript = 2 + sum(map(_json_length, messages)) + 2 * max(0, len(messages) - 1)
    return math.ceil((len(system) + transcript + len(tools_json(tools))) / 4)
