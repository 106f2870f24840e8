"""The WebSocket API's routes: ``$connect``, ``$disconnect``, ``sendMessage``, ``resume`` and ``$default``.

Every route answers in well under a second: ``sendMessage`` checks the frame, the session's owner and its
concurrency policy, then queues the turn for a worker and answers ``accepted``; the turn's events follow over
``@connections`` (see :mod:`agentrail_runtime.streams.turns`), so a run may take longer than API Gateway's
29-second integration timeout. Bad input gets an ``error`` reply (:mod:`agentrail_runtime.streams.frames`), never a
crash; a frame over 32 KB never reaches a route (API Gateway closes the connection with 1009).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from agentrail_runtime import aws
from agentrail_runtime.aws import principal_of
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.observability import logger
from agentrail_runtime.sessions.queue import QueuedMessage, send_queued
from agentrail_runtime.sessions.service import reserve_turn
from agentrail_runtime.sessions.store import MessageIdReused, SessionNotFound, SessionStore, TurnConflict, TurnTooLarge
from agentrail_runtime.streaming import (
    ConnectionNotFound,
    ConnectionPublisher,
    ConnectionStore,
    EventLog,
)
from agentrail_runtime.streams.frames import Accepted, ErrorEvent, FrameRejected, Resume, Resumed, SendMessage, parse_frame

#: What ``$connect`` answers a connection without a principal (an IAM route always has one; a ticket's authorizer
#: puts it in ``requestContext.authorizer.principal``).
FORBIDDEN = {"statusCode": 403, "body": "Forbidden"}
OK: dict[str, Any] = {"statusCode": 200}


def _reply(body: BaseModel) -> dict[str, Any]:
    return {"statusCode": 200, "body": body.wire() if isinstance(body, ErrorEvent) else body.model_dump_json()}


class StreamSocket:
    """The routes of one WebSocket API, over the connections table, the sessions and the event log.

    Parameters
    ----------
    connections, log, publisher:
        The connections table, the event log and the ``@connections`` publisher.
    sessions:
        The session store (who owns a session, and its in-flight slot).
    concurrency:
        The sessions' policy: ``reject`` reserves the session's slot when the message is accepted (a second message
        meanwhile gets ``turn_in_progress``) and queues it on ``queue_url``; ``enqueue`` queues it on the sessions'
        FIFO queue (``queue_url``), one turn after another.
    queue_url:
        Where the turns wait for a worker.
    lease_seconds:
        How long a reservation holds the slot before its worker starts (``reject``).
    store_redacted:
        Keep the reserved message redacted in the slot.
    iam_identity:
        How an IAM caller is named (as the REST API names it).
    """

    queue = aws.LazyClient("sqs")

    def __init__(
        self,
        *,
        connections: ConnectionStore,
        log: EventLog,
        publisher: ConnectionPublisher,
        sessions: SessionStore,
        concurrency: Literal["reject", "enqueue"],
        queue_url: str,
        lease_seconds: float,
        store_redacted: bool = False,
        iam_identity: Literal["role", "session"] = "role",
        queue_client: Any | None = None,
        clock: Clock = now,
    ) -> None:
        self.connections = connections
        self.log = log
        self.publisher = publisher
        self.sessions = sessions
        self.concurrency = concurrency
        self.queue_url = queue_url
        self.lease_seconds = lease_seconds
        self.store_redacted = store_redacted
        self.iam_identity = iam_identity
        self.queue = queue_client
        self._clock = clock

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Serve one WebSocket event (its ``requestContext.routeKey`` says which route)."""
        context = event.get("requestContext") or {}
        route = context.get("routeKey")
        connection_id = str(context.get("connectionId") or "")
        if route == "$connect":
            return self.connect(connection_id, context)
        if route == "$disconnect":
            self.connections.delete(connection_id)
            return OK
        try:
            frame = parse_frame(event.get("body"))
        except FrameRejected as rejected:
            return _reply(rejected.error)
        if isinstance(frame, SendMessage):
            return _reply(self.send_message(connection_id, frame, request_id=str(context.get("requestId") or "")))
        return _reply(self.resume(connection_id, frame))

    def connect(self, connection_id: str, context: dict[str, Any]) -> dict[str, Any]:
        """Record the connection under its principal (the ticket's, or the IAM caller's) and the ticket's session."""
        authorizer = context.get("authorizer") or {}
        principal = authorizer.get("principal") or principal_of(context, iam_identity=self.iam_identity)
        if not principal:
            return FORBIDDEN
        self.connections.put(connection_id, str(principal), session_id=authorizer.get("session_id") or None)
        return OK

    def send_message(self, connection_id: str, frame: SendMessage, *, request_id: str) -> Accepted | ErrorEvent:
        """Accept a turn: the owner's session, its policy, then the queue. The connection follows the session."""
        session_id = frame.session_id
        message_id = frame.message_id or uuid.uuid4().hex
        ids = {"session_id": session_id, "message_id": message_id}
        connection = self.connections.get(connection_id)
        if connection is None:
            return ErrorEvent.of("not_connected", **ids)
        owner = connection.principal
        reserved = False  # claimed by this call: released if the message cannot be queued
        try:
            if self.concurrency == "reject":
                reserved = (
                    reserve_turn(
                        self.sessions,
                        session_id,
                        owner=owner,
                        message=frame.text,
                        message_id=message_id,
                        lease_seconds=self.lease_seconds,
                        store_redacted=self.store_redacted,
                        clock=self._clock,
                    )
                    == "reserved"
                )
            else:
                self.sessions.get_session(session_id, owner=owner)
            self.connections.follow(connection_id, session_id, principal=owner)
            queued = QueuedMessage(
                session_id=session_id,
                owner=owner,
                message=frame.text,
                model=frame.model,
                message_id=message_id,
                correlation_id=request_id or message_id,
                stream=True,
            )
            send_queued(self.queue, self.queue_url, queued, fifo=self.concurrency == "enqueue")
        except SessionNotFound:
            return ErrorEvent.of("session_not_found", **ids)
        except TurnConflict:
            return ErrorEvent.of("turn_in_progress", **ids)
        except MessageIdReused:
            return ErrorEvent.of("idempotency_key_reused", **ids)
        except TurnTooLarge:
            return ErrorEvent.of("turn_too_large", **ids)
        except ConnectionNotFound:
            self._release(reserved, session_id, owner, message_id)
            return ErrorEvent.of("not_connected", **ids)
        except (ClientError, BotoCoreError) as error:
            logger.warning("turn not queued", extra={"event": "stream_queue_failed", "error": type(error).__name__})
            self._release(reserved, session_id, owner, message_id)
            return ErrorEvent.of("unavailable", **ids)
        logger.info("streamed message accepted", extra={"event": "stream_accepted", **ids})
        return Accepted(session_id=session_id, message_id=message_id, correlation_id=queued.correlation_id or message_id)

    def resume(self, connection_id: str, frame: Resume) -> Resumed | ErrorEvent:
        """Follow the session, then post every event kept after ``last_event_id`` to this connection, in order."""
        session_id = frame.session_id
        connection = self.connections.get(connection_id)
        if connection is None:
            return ErrorEvent.of("not_connected", session_id=session_id)
        try:
            self.sessions.get_session(session_id, owner=connection.principal)
            self.connections.follow(connection_id, session_id, principal=connection.principal)
        except SessionNotFound:
            return ErrorEvent.of("session_not_found", session_id=session_id)
        except ConnectionNotFound:
            return ErrorEvent.of("not_connected", session_id=session_id)
        last = frame.last_event_id
        gap = False
        for event in self.log.after(session_id, frame.last_event_id):
            if last == frame.last_event_id and frame.last_event_id > 0:
                gap = event.event_id != frame.last_event_id + 1
            if self.publisher.send(connection_id, event.wire()) != "delivered":
                break
            last = event.event_id
        return Resumed(session_id=session_id, last_event_id=last, gap=gap)

    def _release(self, reserved: bool, session_id: str, owner: str, message_id: str) -> None:
        if reserved:
            self.sessions.release_in_flight(session_id, message_id)


__all__ = ["StreamSocket"]
