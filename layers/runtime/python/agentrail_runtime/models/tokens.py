"""Token estimates without a tokenizer (about four characters a token): what the agent loop checks a model call
against the token budget with, what sessions size their history windows by, and what the local model reports."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from agentrail_runtime.models.base import Message, ToolSpec

__all__ = ["count_tokens", "estimate_input_tokens"]


def count_tokens(text: str) -> int:
    """About one token per four characters; 0 for no text."""
    return math.ceil(len(text) / 4) if text else 0


def estimate_input_tokens(system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int:
    """The input tokens of one model call: the system prompt, the transcript and the tool specs. A provider's
    tokenizer may count differently."""
    return count_tokens(
        system
        + json.dumps([m.model_dump(mode="json") for m in messages])
        + json.dumps([t.model_dump(mode="json", exclude={"local_patterns"}) for t in tools])
    )
