"""The body of ``POST /sessions/{id}/feedback`` and ``POST /tasks/{id}/feedback``, and the feedback as read back.

Exactly one of ``score`` (an integer 1-5) and ``thumbs`` (``"up"``/``"down"``), and an optional ``comment``. The
JSON Schema says the same (``oneOf``, no ``null``), so API Gateway's validation and pydantic refuse the same bodies.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from agentrail_runtime.metering.feedback import MAX_FEEDBACK_COMMENT_CHARS, Feedback, Thumbs

_RATINGS = ("score", "thumbs")


class FeedbackRequest(BaseModel):
    """A rating: exactly one of ``score`` and ``thumbs``, and an optional comment."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["score"]}, {"required": ["thumbs"]}]},
    )
    score: Annotated[int, Field(ge=1, le=5, strict=True)] | SkipJsonSchema[None] = Field(
        default=None, description="1 (worst) to 5 (best), a JSON integer (4, not 4.0); give score or thumbs, not both."
    )
    thumbs: Thumbs | SkipJsonSchema[None] = Field(default=None, description="up or down; give score or thumbs, not both.")
    comment: str | None = Field(default=None, max_length=MAX_FEEDBACK_COMMENT_CHARS)

    @model_validator(mode="after")
    def _exactly_one_rating(self) -> FeedbackRequest:
        given = [name for name in _RATINGS if name in self.model_fields_set]
        if len(given) != 1:
            raise ValueError("give exactly one of score (1 to 5) and thumbs (up or down)")
        if getattr(self, given[0]) is None:
            raise ValueError(f"{given[0]} may not be null")
        return self

    def feedback(self, *, given_at: int) -> Feedback:
        return Feedback(score=self.score, thumbs=self.thumbs, comment=self.comment, given_at=given_at)


class FeedbackOut(BaseModel):
    """Feedback as its owner reads it back."""

    score: int | None
    thumbs: str | None
    comment: str | None
    given_at: int

    @classmethod
    def of(cls, feedback: Feedback | None) -> FeedbackOut | None:
        if feedback is None:
            return None
        return cls(score=feedback.score, thumbs=feedback.thumbs, comment=feedback.comment, given_at=feedback.given_at)


__all__ = ["FeedbackOut", "FeedbackRequest"]
