"""User feedback on an agent's answer: what is stored with a session turn or a task, and read back with it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

#: Longest ``comment`` a feedback may carry (characters).
MAX_FEEDBACK_COMMENT_CHARS = 2000
Thumbs = Literal["up", "down"]


class Feedback(BaseModel):
    """One user's rating: a 1-5 ``score`` or ``thumbs`` (exactly one), an optional comment, and when it was given."""

    score: int | None = Field(default=None, ge=1, le=5)
    thumbs: Thumbs | None = None
    comment: str | None = Field(default=None, max_length=MAX_FEEDBACK_COMMENT_CHARS)
    given_at: int


class FeedbackGiven(Exception):
    """This turn or task already has its feedback: the first one stands (racing submissions commit exactly one)."""


__all__ = ["MAX_FEEDBACK_COMMENT_CHARS", "Feedback", "FeedbackGiven", "Thumbs"]
