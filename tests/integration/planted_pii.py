"""Planted personal and secret data, an agent that passes it through a tool and its answer, and the checks of
what logs and stores hold: shared by the session and task tests of ``store_redacted``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from agentrail_runtime.agent import AgentDefinition
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.models.base import Message, ModelProvider, ModelResponse, ToolSpec, ToolUseBlock, Usage
from agentrail_runtime.observability import logger

EMAIL = "ana.lopez@example.com"
CARD = "4111 1111 1111 1111"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
PLANTED = (EMAIL, CARD, ACCESS_KEY, "4111111111111111")
MARKERS = ("[REDACTED:email]", "[REDACTED:card_number]", "[REDACTED:aws_access_key]")
MESSAGE = f"Refund my card {CARD}; write to {EMAIL}. My key {ACCESS_KEY} leaked."


@tool(side_effects=True)
def open_refund(email: str, card: str) -> dict[str, str]:
    """Open a refund for the card, answering to the email."""
    logger.debug("refund requested", extra={"email": email, "card": card})  # as a tool's author might
    return {"refund": "R-1", "card": card, "contact": email, "key_seen": ACCESS_KEY}


DEFINITION = AgentDefinition(name="refunds", system_prompt="You open refunds.", tools=[open_refund])


class PlantedModel(ModelProvider):
    """Calls ``open_refund`` with the planted values, then answers with them; keeps what it was sent."""

    name = "local"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def converse(self, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int) -> ModelResponse:
        self.seen.append(json.dumps([m.model_dump(mode="json") for m in messages]))
        if not any(block.type == "tool_result" for m in messages for block in m.content):
            use = ToolUseBlock(id="tooluse_refund", name="open_refund", input={"email": EMAIL, "card": CARD})
            return ModelResponse(
                message=Message(role="assistant", content=[use]), stop_reason="tool_use", usage=Usage(), model="local"
            )
        answer = f"Refund R-1 opened for card {CARD}; we will write to {EMAIL}."
        return ModelResponse(message=Message.assistant(answer), stop_reason="end_turn", usage=Usage(), model="local")

    def check(self) -> None:
        return None


def planted_in(texts: Iterable[str]) -> list[str]:
    """The planted values found in any of ``texts``."""
    joined = "\n".join(texts)
    return [value for value in PLANTED if value in joined]


def markers_in(texts: Iterable[str]) -> list[str]:
    joined = "\n".join(texts)
    return [marker for marker in MARKERS if marker in joined]


def dumped(items: Iterable[Any]) -> list[str]:
    return [json.dumps(item) for item in items]


__all__ = ["CARD", "DEFINITION", "EMAIL", "MARKERS", "MESSAGE", "PLANTED", "PlantedModel", "dumped", "markers_in", "planted_in"]


def spy_on_redaction(monkeypatch: Any) -> list[str]:
    """Every text ``redaction.redact`` is asked to redact from now on, in order (it still redacts them)."""
    from agentrail_runtime import redaction

    asked: list[str] = []
    real = redaction.redact
    monkeypatch.setattr(redaction, "redact", lambda text: asked.append(text) or real(text))
    return asked
