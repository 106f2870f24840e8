"""Stored records as ``store_redacted`` keeps them: a pydantic model redacted (:func:`redact_record`) once, as a
model or as its JSON; a run's checkpoints with each message redacted once (:class:`RedactedMessages`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from agentrail_runtime.redaction import redact_record

Model = TypeVar("Model", bound=BaseModel)


def redacted_model(model: Model) -> Model:
    """``model`` with what users, models and tools wrote redacted (:func:`redact_record` of its JSON form)."""
    return type(model).model_validate(redact_record(model.model_dump(mode="json")))


def redacted_json(model: BaseModel) -> str:
    """The JSON of :func:`redacted_model` (what a store keeps), without building the model again."""
    return json.dumps(redact_record(model.model_dump(mode="json")))


class RedactedMessages:
    """The redacted JSON forms of one run's messages, each redacted once: a run checkpointed after every tool call
    redacts what each checkpoint adds, not its whole transcript again. Messages are frozen, so one still in the same
    place (the same object) is the one redacted before. One per run (a checkpoint sink's), never shared."""

    def __init__(self) -> None:
        self._redacted: list[tuple[BaseModel, dict[str, Any]]] = []

    def of(self, messages: Sequence[BaseModel]) -> list[dict[str, Any]]:
        """The redacted JSON form of each of ``messages``, in order."""
        done = self._redacted
        for index, message in enumerate(messages):
            if index < len(done) and done[index][0] is message:
                continue
            redacted = (message, redact_record(message.model_dump(mode="json")))
            if index < len(done):
                done[index] = redacted
            else:
                done.append(redacted)
        del done[len(messages) :]
        return [redacted for _, redacted in done]

    def json_of(self, checkpoint: BaseModel) -> str:
        """:func:`redacted_json` of ``checkpoint`` (a model with a ``messages`` list), its messages from this memo."""
        rest = redact_record(checkpoint.model_dump(mode="json", exclude={"messages"}))
        return json.dumps({"messages": self.of(checkpoint.messages), **rest})  # type: ignore[attr-defined]


__all__ = ["RedactedMessages", "redacted_json", "redacted_model"]
