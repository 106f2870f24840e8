"""Stored records as ``store_redacted`` keeps them: a pydantic model redacted (:func:`redact_record`) once, as a
model or as its JSON."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel

from agentrail_runtime.redaction import redact_record

Model = TypeVar("Model", bound=BaseModel)


def redacted_model(model: Model) -> Model:
    """``model`` with what users, models and tools wrote redacted (:func:`redact_record` of its JSON form)."""
    return type(model).model_validate(redact_record(model.model_dump(mode="json")))


def redacted_json(model: BaseModel) -> str:
    """The JSON of :func:`redacted_model` (what a store keeps), without building the model again."""
    return json.dumps(redact_record(model.model_dump(mode="json")))


__all__ = ["redacted_json", "redacted_model"]
