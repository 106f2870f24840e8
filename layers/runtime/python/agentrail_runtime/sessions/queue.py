"""The ``enqueue`` policy's worker side: turns of one session, strictly in order, from an SQS FIFO queue."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from agentrail_runtime.observability import correlate, logger, sqs_trace_attributes
from agentrail_runtime.sessions.service import SessionAgent
from agentrail_runtime.sessions.store import SessionNotFound


class QueuedMessage(BaseModel):
    """The body the API puts on the FIFO queue (``MessageGroupId`` = session id)."""

    model_config = ConfigDict(extra="forbid")
    session_id: str
    owner: str
    message: str
    model: str | None = None
    message_id: str
    correlation_id: str | None = None
    #: Sent over the WebSocket API: the worker streams the turn's events to the session's connections.
    stream: bool = False


def send_queued(sqs: Any, queue_url: str, queued: QueuedMessage, *, fifo: bool) -> None:
    """Put ``queued`` on ``queue_url`` with the caller's trace: on a FIFO queue in its session's group (turns of one
    session in order), deduplicated by its message id."""
    ordering = {"MessageGroupId": queued.session_id, "MessageDeduplicationId": queued.message_id} if fifo else {}
    sqs.send_message(QueueUrl=queue_url, MessageBody=queued.model_dump_json(), **ordering, **sqs_trace_attributes())


def process_queued_message(sessions: SessionAgent, body: str, *, conflict_retries: int) -> None:
    """Take the turn a queued message asks for.

    Delivery is at least once: a redelivered message whose turn was already
    committed is recognised by its ``message_id`` and does nothing, and one whose
    turn died after a tool with side effects continues from the session's
    in-flight slot, so that tool never runs twice. A conflict
    is re-read and re-run up to ``conflict_retries`` times, then raised so the
    record is retried by SQS and, in the end, dead-lettered.
    """
    queued = QueuedMessage.model_validate_json(body)
    correlate(queued.correlation_id, session_id=queued.session_id, message_id=queued.message_id)
    try:
        outcome = sessions.take_turn(
            queued.session_id,
            owner=queued.owner,
            message=queued.message,
            model=queued.model,
            message_id=queued.message_id,
            conflict_retries=conflict_retries,
            correlation_id=queued.correlation_id,
            exclusive=True,  # FIFO: nothing else answers this session while this message is in flight
        )
    except SessionNotFound:
        # Deleted or expired while the message waited: there is nobody left to answer.
        logger.warning("session gone; message dropped", extra={"event": "queued_message_dropped"})
        return
    logger.info(
        "queued turn committed",
        extra={"event": "queued_turn", "turn": outcome.turn.number, "replayed": outcome.replayed},
    )
