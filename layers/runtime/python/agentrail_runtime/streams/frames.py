"""What a client sends over the WebSocket (its frames) and what it gets back besides the run's events.

Client frames are JSON objects whose ``action`` selects the route (``$request.body.action``):

``{"action": "sendMessage", "session_id": "...", "text": "...", "model"?: "...", "message_id"?: "..."}``
    Take a turn: answered at once with ``accepted`` (or an ``error``); the turn's events follow as it runs.
``{"action": "resume", "session_id": "...", "last_event_id": 0}``
    Follow the session and get every event kept after ``last_event_id``; then ``resumed``.

Replies carry a ``type``: ``accepted``, ``resumed`` or ``error`` (``code`` and ``message``, never the input echoed).
Events of a run carry ``event_id`` too (see :mod:`agentrail_runtime.streaming.events`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agentrail_runtime.agent.results import MAX_MESSAGE_CHARS
from agentrail_runtime.sessions.store import SESSION_ID_PATTERN

#: The error codes a client may get, and what each means.
ERROR_CODES: dict[str, str] = {
    "malformed_frame": "The frame is not a JSON object with an 'action'.",
    "unknown_action": "No such action: send 'sendMessage' or 'resume'.",
    "invalid_frame": "The frame's fields are not valid for its action.",
    "not_connected": "This connection is not known (it expired or was erased): connect again.",
    "session_not_found": "No such session (it may have expired or been deleted).",
    "turn_in_progress": "Another message of this session is being answered; send yours again when it is done.",
    "idempotency_key_reused": "This message_id was used with another message.",
    "input_blocked": "The message was blocked by the agent's input guards.",
    "unknown_model": "The model is not one this agent may use.",
    "budget_exceeded": "A daily budget is spent; try again tomorrow.",
    "turn_too_large": "This turn is too large to store.",
    "model_error": "The model failed to answer; send the message again.",
    "unavailable": "The message could not be queued; send it again.",
}


class SendMessage(BaseModel):
    """``sendMessage``: one turn of a session the connection's principal owns."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    action: Literal["sendMessage"]
    session_id: str = Field(pattern=SESSION_ID_PATTERN)
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=r"\S")
    model: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")
    #: Names the message across retries (as REST's ``Idempotency-Key``). Default: a new id per frame.
    message_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")


class Resume(BaseModel):
    """``resume``: follow the session and get the events after ``last_event_id``."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["resume"]
    session_id: str = Field(pattern=SESSION_ID_PATTERN)
    last_event_id: int = Field(default=0, ge=0, strict=True)


Frame = Annotated[SendMessage | Resume, Field(discriminator="action")]
_FRAMES: TypeAdapter[SendMessage | Resume] = TypeAdapter(Frame)


class Accepted(BaseModel):
    type: Literal["accepted"] = "accepted"
    session_id: str
    message_id: str
    #: The id the worker's logs and trace carry for this turn.
    correlation_id: str


class Resumed(BaseModel):
    type: Literal["resumed"] = "resumed"
    session_id: str
    #: The last event sent (the ``last_event_id`` given when nothing newer was kept).
    last_event_id: int
    #: True when the first event kept is not ``last_event_id + 1``: events expired, reload the session instead.
    gap: bool = False


class ErrorEvent(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str
    session_id: str | None = None
    message_id: str | None = None
    #: For ``invalid_frame``: where the frame is wrong (field names, never their values).
    fields: list[str] | None = None

    @classmethod
    def of(cls, code: str, **fields: Any) -> ErrorEvent:
        return cls(code=code, message=ERROR_CODES[code], **fields)

    def wire(self) -> str:
        return self.model_dump_json(exclude_none=True)


class FrameRejected(Exception):
    """The frame is not one the routes take: ``error`` says why."""

    def __init__(self, error: ErrorEvent) -> None:
        super().__init__(error.code)
        self.error = error


def parse_frame(body: str | None) -> SendMessage | Resume:
    """The frame in ``body``.

    Raises
    ------
    FrameRejected
        ``malformed_frame`` (no JSON object), ``unknown_action`` or ``invalid_frame`` (naming the fields, not values).
    """
    try:
        document = json.loads(body or "")
    except ValueError:
        raise FrameRejected(ErrorEvent.of("malformed_frame")) from None
    if not isinstance(document, dict) or not isinstance(document.get("action"), str):
        raise FrameRejected(ErrorEvent.of("malformed_frame"))
    if document["action"] not in ("sendMessage", "resume"):
        raise FrameRejected(ErrorEvent.of("unknown_action"))
    try:
        return _FRAMES.validate_python(document)
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"][1:]) or "frame" for e in error.errors()})
        raise FrameRejected(ErrorEvent.of("invalid_frame", fields=fields)) from None


__all__ = ["ERROR_CODES", "Accepted", "ErrorEvent", "FrameRejected", "Resume", "Resumed", "SendMessage", "parse_frame"]
