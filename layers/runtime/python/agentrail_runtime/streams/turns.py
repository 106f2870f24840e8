"""The worker side of a WebSocket message: take its turn and stream the turn's events to the session's connections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agentrail_runtime.budgets import BudgetExceeded
from agentrail_runtime.guardrails import GuardBlocked
from agentrail_runtime.models.base import ModelError
from agentrail_runtime.observability import correlate, logger
from agentrail_runtime.redaction import redact_record
from agentrail_runtime.service import UnknownModelError
from agentrail_runtime.sessions.queue import QueuedMessage, process_queued_message
from agentrail_runtime.sessions.service import SessionAgent
from agentrail_runtime.sessions.store import MessageIdReused, SessionNotFound, TurnConflict, TurnTooLarge
from agentrail_runtime.streaming import ConnectionPublisher, ConnectionStore, EventLog, StreamEvent, StreamSettings
from agentrail_runtime.streams.frames import ErrorEvent

if TYPE_CHECKING:
    from agentrail_runtime.agent.events import AgentEvent

#: What a failed turn tells the session's connections, by the exception the turn raised.
FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (SessionNotFound, "session_not_found"),
    (TurnConflict, "turn_in_progress"),
    (MessageIdReused, "idempotency_key_reused"),
    (GuardBlocked, "input_blocked"),
    (UnknownModelError, "unknown_model"),
    (BudgetExceeded, "budget_exceeded"),
    (TurnTooLarge, "turn_too_large"),
    (ModelError, "model_error"),
)
#: Seconds a worker waits for the last events of a turn to be posted before it returns.
DRAIN_SECONDS = 30.0


class SessionStream:
    """The event sink of one streamed turn: each event, tagged with the turn's ``message_id``, is numbered in the
    session's event log (stored redacted when the stack stores redacted data), then posted to every connection
    that follows the session. Posts never raise (see :class:`ConnectionPublisher`): a slow or gone client catches up
    from the log with ``resume``.

    Parameters
    ----------
    log, publisher:
        The event log and the ``@connections`` publisher.
    session_id, owner, message_id:
        The stream (a session), its owner (whom erasure finds) and the message whose turn this is.
    store_redacted:
        Keep the events redacted in the log (the live posts are as the run wrote them). Default: ``False``.
    """

    def __init__(
        self,
        log: EventLog,
        publisher: ConnectionPublisher,
        *,
        session_id: str,
        owner: str,
        message_id: str,
        store_redacted: bool = False,
    ) -> None:
        self.writer = log.writer(session_id, owner=owner)
        self.publisher = publisher
        self.session_id = session_id
        self.message_id = message_id
        self.store_redacted = store_redacted
        #: The numbers given to this turn's events, in order.
        self.event_ids: list[int] = []

    def __call__(self, event: AgentEvent | BaseModel) -> None:
        live: dict[str, Any] = {**event.model_dump(mode="json", exclude_none=True), "message_id": self.message_id}
        numbered = self.writer.append([redact_record(live) if self.store_redacted else live])
        self.event_ids += [n.event_id for n in numbered]
        self.publisher.publish_to_session(self.session_id, [StreamEvent(event_id=n.event_id, event=live) for n in numbered])


class StreamedTurns:
    """Takes the turns of queued WebSocket messages, streaming each to the session's connections.

    Delivery is at least once, and :meth:`SessionAgent.take_turn` makes a redelivery safe: a committed message is a
    replay (its ``final`` only), and a turn that died after a tool with side effects continues from its slot. A
    turn that fails ends with an ``error`` event in the stream (and frees the slot its message reserved when nothing
    of it ran); it is not retried, except a conflict under the ``enqueue`` policy (``exclusive``), which is raised so
    SQS retries the record in order.
    """

    def __init__(
        self,
        sessions: SessionAgent,
        log: EventLog,
        publisher: ConnectionPublisher,
        *,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.log = log
        self.publisher = publisher
        self.drain_seconds = drain_seconds

    @classmethod
    def from_settings(cls, sessions: SessionAgent, settings: StreamSettings) -> StreamedTurns:
        connections = ConnectionStore.from_settings(settings)
        return cls(sessions, EventLog.from_settings(settings), ConnectionPublisher.from_settings(settings, connections))

    def run(
        self, queued: QueuedMessage, *, exclusive: bool, conflict_retries: int = 0, deadline: float | None = None
    ) -> SessionStream:
        """Take ``queued``'s turn, streaming it; the stream it went to.

        Raises
        ------
        TurnConflict
            Only with ``exclusive`` (the FIFO worker): the record is retried.
        """
        correlate(queued.correlation_id, session_id=queued.session_id, message_id=queued.message_id)
        stream = SessionStream(
            self.log,
            self.publisher,
            session_id=queued.session_id,
            owner=queued.owner,
            message_id=queued.message_id,
            store_redacted=self.sessions.store_redacted,
        )
        # Deferred: the FIFO worker imports this module, and its turns that do not stream never need the event
        # models (milliseconds of its cold start).
        from agentrail_runtime.agent.events import BackgroundSink

        background = BackgroundSink(stream)
        failure: str | None = None
        try:
            if self.sessions.reserved_for_another_text(
                queued.session_id, owner=queued.owner, message_id=queued.message_id, message=queued.message
            ):
                raise MessageIdReused
            message = self.sessions.agents.check_input(queued.message)
            self.sessions.agents.model(queued.model)
            outcome = self.sessions.take_turn(
                queued.session_id,
                owner=queued.owner,
                message=message,
                model=queued.model,
                message_id=queued.message_id,
                conflict_retries=conflict_retries,
                correlation_id=queued.correlation_id,
                exclusive=exclusive,
                deadline=deadline,
                on_event=background,
            )
            logger.info(
                "streamed turn committed",
                extra={"event": "streamed_turn", "turn": outcome.turn.number, "replayed": outcome.replayed},
            )
        except TurnConflict:
            if exclusive:
                raise
            failure = "turn_in_progress"
        except tuple(kind for kind, _ in FAILURES) as error:
            failure = next(code for kind, code in FAILURES if isinstance(error, kind))
        finally:
            if not background.close(self.drain_seconds):
                logger.warning("events still unposted at the drain timeout", extra={"event": "stream_drain_timeout"})
        if failure is not None:
            logger.warning("streamed turn failed", extra={"event": "streamed_turn_failed", "code": failure})
            if failure not in ("session_not_found", "idempotency_key_reused"):  # the slot is not this message's
                self.sessions.cancel_reservation(queued.session_id, owner=queued.owner, message_id=queued.message_id)
            stream(ErrorEvent.of(failure, session_id=queued.session_id, message_id=queued.message_id))
        return stream


def _deadline(sessions: SessionAgent, context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return sessions.now() + remaining() / 1000 if callable(remaining) else None


def process_streamed_message(
    turns: StreamedTurns, body: str, *, exclusive: bool, conflict_retries: int = 0, context: Any = None
) -> SessionStream:
    """Take the turn a queued WebSocket message asks for (:meth:`StreamedTurns.run`), its slot leased until the
    invocation (``context``) ends. A body that is no :class:`QueuedMessage` raises, so SQS retries the record and, in
    the end, dead-letters it."""
    queued = QueuedMessage.model_validate_json(body)
    return turns.run(queued, exclusive=exclusive, conflict_retries=conflict_retries, deadline=_deadline(turns.sessions, context))


def process_session_message(
    sessions: SessionAgent, turns: StreamedTurns | None, body: str, *, conflict_retries: int, context: Any = None
) -> None:
    """The ``enqueue`` policy's FIFO worker: a message sent over the WebSocket API (``stream``) is streamed when the
    stack streams (``turns``); any other is taken as :func:`process_queued_message` takes it."""
    queued = QueuedMessage.model_validate_json(body)
    if queued.stream and turns is not None:
        turns.run(queued, exclusive=True, conflict_retries=conflict_retries, deadline=_deadline(sessions, context))
    else:
        process_queued_message(sessions, body, conflict_retries=conflict_retries)


__all__ = [
    "DRAIN_SECONDS",
    "FAILURES",
    "SessionStream",
    "StreamedTurns",
    "process_session_message",
    "process_streamed_message",
]
