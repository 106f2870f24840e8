"""The session store interface: sessions, turns, a bounded history window and a versioned state document."""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentrail_runtime.agent.loop import ToolCallRecord
from agentrail_runtime.metering.feedback import Feedback
from agentrail_runtime.models.base import Message, Usage

SESSION_ID_PATTERN = r"^[0-9a-f]{32}$"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)

TruncationStrategy = Literal["truncate", "summary"]


def is_session_id(value: str) -> bool:
    return bool(_SESSION_ID.match(value))


class SessionNotFound(Exception):
    """No such session for this caller: missing, expired, deleted, or owned by someone else (all look the same)."""


class TurnConflict(Exception):
    """Another turn of the same session was committed first (optimistic locking)."""


class StateConflict(Exception):
    """The state document changed since it was read."""


class MessageIdReused(Exception):
    """A message id (the ``Idempotency-Key``) already names another message of this session."""


class TurnTooLarge(Exception):
    """A turn exceeds what one item can hold and no offload bucket is configured."""


class TurnNotFound(Exception):
    """The session has no such turn (yet)."""


class InFlightTurn(BaseModel):
    """A turn that reached a tool with side effects and is not committed yet: what a retry of its message continues.

    ``checkpoint`` is the agent's checkpoint (JSON) holding the turn's own messages only, not the history before it.
    """

    message_id: str
    checkpoint: str
    updated_at: int
    #: When the invocation that wrote it ends at the latest: after that, nothing can still be running the turn.
    lease_until: int


class Turn(BaseModel):
    """One exchange: the user's message and everything the agent added answering it.

    Frozen, as its messages are: a store may hand the same turn to every read of it (see
    :class:`~agentrail_runtime.sessions.dynamodb.ParsedTurns`), so its lists are not to be changed either.
    """

    model_config = ConfigDict(frozen=True)

    number: int
    created_at: int
    message_id: str | None = None
    messages: list[Message]
    answer: str | None = None
    status: str
    model: str
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    tokens: int = 0
    steps: int = 0
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    #: The owner's rating of this turn (``POST /sessions/{id}/feedback``), once given.
    feedback: Feedback | None = None
    #: The version of the agent that answered (``agent_version``); ``None`` on turns stored before it was recorded.
    agent_version: str | None = None

    @property
    def user_text(self) -> str:
        return self.messages[0].text if self.messages else ""


class StateDocument(BaseModel):
    version: int = 0
    data: dict[str, Any] = Field(default_factory=dict)


class SessionInfo(BaseModel):
    session_id: str
    owner: str
    created_at: int
    updated_at: int
    expires_at: int
    turns: int


class Window(BaseModel):
    """What one read gives a turn: the session, its state, a summary and the latest turns (oldest first)."""

    session: SessionInfo
    state: StateDocument
    summary: str | None = None
    summary_through: int = 0
    turns: list[Turn]
    truncated: bool = False
    #: Turns the read returned but the token budget left out (oldest first): never shown to the model;
    #: the ``summary`` strategy folds them into the summary at the next commit.
    older: list[Turn] = Field(default_factory=list)
    #: The session's uncommitted turn, if one reached a tool with side effects (see :class:`InFlightTurn`).
    in_flight: InFlightTurn | None = None

    def history(self, detail: Literal["compact", "full"] = "compact") -> list[Message]:
        """Messages to give the model: an optional summary, then each turn (compact: question and answer only)."""
        messages: list[Message] = []
        if self.summary:
            messages.append(Message.user(f"[Summary of our earlier conversation]\n{self.summary}"))
            messages.append(Message.assistant("Understood."))
        for turn in self.turns:
            if detail == "full" or turn.answer is None:
                messages.extend(turn.messages)
            else:
                messages.extend(_exchange(turn.user_text, turn.answer))
        return messages


@lru_cache(maxsize=512)
def _exchange(question: str, answer: str) -> tuple[Message, Message]:
    """A turn as compact history shows it. Messages are frozen, so the windows of a warm process share them: the turn
    after this one shows the model the same exchange again."""
    return Message.user(question), Message.assistant(answer)


def forget_compact_history() -> None:
    """Drop the compact exchanges :meth:`Window.history` keeps for the turns it showed (a store's erasure does)."""
    _exchange.cache_clear()


class SessionPage(BaseModel):
    """A session's metadata, state and one page of its history (oldest first)."""

    session: SessionInfo
    state: StateDocument
    turns: list[Turn]
    next_cursor: str | None = None


@dataclass(frozen=True)
class ErasedSession:
    """What erasing one session deleted: its metadata item (0 when it was gone already), its other items (turns,
    state, summary, in-flight turn), how many turns carried feedback, and its offloaded S3 objects."""

    sessions: int
    items: int
    feedback: int
    objects: int


class SessionStore(abc.ABC):
    """Sessions with one item per turn.

    Implementations guarantee: one read per turn (:meth:`load_window`), one
    atomic write per turn (:meth:`commit_turn`), no half-written turn if the
    writer dies, and expired sessions invisible before the backing store
    deletes them.
    """

    @abc.abstractmethod
    def create(self, *, owner: str, state: dict[str, Any] | None = None) -> SessionInfo: ...

    @abc.abstractmethod
    def get_session(self, session_id: str, *, owner: str) -> SessionInfo:
        """The session's metadata. Raises :class:`SessionNotFound`."""

    @abc.abstractmethod
    def load_window(self, session_id: str, *, owner: str) -> Window:
        """Raises :class:`SessionNotFound`."""

    @abc.abstractmethod
    def save_in_flight(self, window: Window, in_flight: InFlightTurn, *, claim: bool) -> None:
        """Store the session's uncommitted turn durably (one write).

        With ``claim`` the slot must be free; without, it must hold ``in_flight.message_id`` already.

        Raises
        ------
        TurnConflict
            The slot holds another message's turn (or lost this one's).
        TurnTooLarge
            The turn cannot be stored.
        """

    @abc.abstractmethod
    def release_in_flight(self, session_id: str, message_id: str) -> bool:
        """Empty the in-flight slot if ``message_id`` holds it (a turn that failed before its first step, whose
        message is not kept); ``False`` when the slot held another message or nothing."""

    @abc.abstractmethod
    def commit_turn(
        self, window: Window, turn: Turn, *, state: dict[str, Any] | None = None, release: str | None = None
    ) -> SessionInfo:
        """Append ``turn`` after ``window`` atomically, with ``state`` if it changed; with ``release`` (a message
        id), the same write empties the in-flight slot that message holds.

        Raises
        ------
        TurnConflict
            Another turn was committed since ``window`` was read.
        SessionNotFound
            The session expired or was deleted meanwhile.
        TurnTooLarge
            The turn cannot be stored.
        """

    @abc.abstractmethod
    def read_page(self, session_id: str, *, owner: str, limit: int, cursor: str | None) -> SessionPage:
        """Metadata, state and a page of turns, oldest first. Raises :class:`SessionNotFound`, ``ValueError`` for a bad cursor."""

    @abc.abstractmethod
    def update_state(self, session_id: str, *, owner: str, data: dict[str, Any], expected_version: int) -> StateDocument:
        """Replace the state document. Raises :class:`StateConflict` or :class:`SessionNotFound`."""

    @abc.abstractmethod
    def give_feedback(self, session_id: str, *, owner: str, turn: int | None, feedback: Feedback) -> int:
        """Store the owner's feedback on ``turn`` (default: the last committed turn); the first feedback stands.

        Returns the turn's number.

        Raises
        ------
        SessionNotFound
            No such session for ``owner``.
        TurnNotFound
            The session has no such committed turn.
        FeedbackGiven
            The turn already has feedback.
        """

    @abc.abstractmethod
    def delete(self, session_id: str, *, owner: str) -> None:
        """Erase the session and all its turns now. Raises :class:`SessionNotFound`."""

    @abc.abstractmethod
    def purge(self, session_id: str) -> int:
        """Delete every remaining item of a session whose metadata is gone (expiry clean-up). Returns the count."""

    @abc.abstractmethod
    def read_turn(self, session_id: str, *, owner: str, number: int) -> Turn:
        """Turn ``number`` of ``owner``'s session.

        Raises
        ------
        SessionNotFound, TurnNotFound
        """

    @abc.abstractmethod
    def recent_sessions(self, owner: str, *, limit: int) -> list[SessionInfo]:
        """``owner``'s live sessions, the most recently updated first: up to ``limit``."""

    @abc.abstractmethod
    def owned_sessions(self, owner: str) -> Iterator[str]:
        """The ids of every session ``owner`` has, expired ones not yet deleted included."""

    @abc.abstractmethod
    def erase_session(self, session_id: str, *, owner: str) -> ErasedSession:
        """Delete everything of ``owner``'s session, its metadata last (so that an erasure that stops halfway finds
        the session again through :meth:`owned_sessions`). Idempotent: a session already gone counts zero."""


def summarize_turns(previous: str | None, dropped: Sequence[Turn], *, max_chars: int = 2000) -> str:
    """A deterministic extractive summary: what the user said in the turns leaving the window.

    Newest lines are kept when the summary outgrows ``max_chars``.
    """
    lines = [line for line in (previous or "").splitlines() if line]
    lines.extend(f"- turn {turn.number}: the user said: {turn.user_text[:240]}" for turn in dropped)
    while lines and len("\n".join(lines)) > max_chars:
        lines.pop(0)
    return "\n".join(lines)
