"""Posting events to WebSocket connections through the stage's ``@connections`` management API."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field

from agentrail_runtime import aws
from agentrail_runtime.contract import STREAM_CONNECTIONS_URL_ENV
from agentrail_runtime.observability import logger
from agentrail_runtime.streaming.connections import ConnectionStore
from agentrail_runtime.streaming.events import StreamEvent
from agentrail_runtime.streaming.settings import StreamSettings, required

#: What one post to a connection came to.
Delivery = Literal["delivered", "gone", "failed"]


def post_config(timeout_seconds: float) -> Config:
    """One attempt, with ``timeout_seconds`` to connect and to read: a client too slow to read never holds the run
    up, it catches up from the event log when it reconnects with ``last_event_id``."""
    return Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"mode": "standard", "total_max_attempts": 1},
    )


class PublishReport(BaseModel):
    """Which connections got every event of a publish, which were gone (and were forgotten), which failed."""

    delivered: list[str] = Field(default_factory=list)
    gone: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)


class ConnectionPublisher:
    """Posts events to connections (``PostToConnection``), best effort.

    A connection that is gone (API Gateway answers 410 ``GoneException``) is deleted from the connections table and
    skipped. Any other failure (a timeout, a throttle, a 5xx) is logged and the connection skipped for the rest of
    that publish: the events are in the event log, and the client gets them by reconnecting with its
    ``last_event_id``. Nothing is retried and nothing raises, so a publish never fails a run.

    Parameters
    ----------
    endpoint_url:
        The WebSocket stage's callback URL, ``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}``.
    connections:
        The connections table: where a session's connections are found, and gone ones deleted.
    timeout_seconds:
        Connect and read timeout of one post. Default: 2.
    client:
        An ``apigatewaymanagementapi`` client. Default: one from :func:`agentrail_runtime.aws.client` at
        ``endpoint_url`` with :func:`post_config`.
    """

    def __init__(
        self,
        endpoint_url: str,
        connections: ConnectionStore,
        *,
        timeout_seconds: float = 2.0,
        client: Any | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.connections = connections
        self.timeout_seconds = timeout_seconds
        if client is None:
            client = aws.client("apigatewaymanagementapi", config=post_config(timeout_seconds), endpoint_url=endpoint_url)
        self.client = client

    @classmethod
    def from_settings(cls, settings: StreamSettings, connections: ConnectionStore) -> ConnectionPublisher:
        """The publisher to ``AGENT_STREAM_CONNECTIONS_URL``; ``ValueError`` when it is unset."""
        url = required(settings.connections_url, STREAM_CONNECTIONS_URL_ENV)
        return cls(url, connections, timeout_seconds=settings.post_timeout_seconds)

    def send(self, connection_id: str, message: str | bytes) -> Delivery:
        """Post one message to one connection (an event, an error event, an acknowledgement); never raises.

        Returns
        -------
        Delivery
            ``delivered``; ``gone`` (410: the connection is deleted from the table); or ``failed`` (logged).
        """
        data = message.encode() if isinstance(message, str) else message
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as error:
            if _gone(error):
                self.connections.delete(connection_id)
                logger.info("connection gone", extra={"event": "stream_connection_gone", "connection_id": connection_id})
                return "gone"
            _log_failure(connection_id, error.response.get("Error", {}).get("Code", "ClientError"))
            return "failed"
        except BotoCoreError as error:  # timeouts and connection errors
            _log_failure(connection_id, type(error).__name__)
            return "failed"
        return "delivered"

    def publish(self, connection_ids: Iterable[str], events: Sequence[StreamEvent]) -> PublishReport:
        """Post ``events`` in order, one message each (:meth:`StreamEvent.wire`), to every connection of
        ``connection_ids``; a connection whose post does not succeed gets none of the events after it."""
        report = PublishReport()
        messages = [event.wire() for event in events]
        for connection_id in connection_ids:
            outcome: Delivery = "delivered"
            for message in messages:
                outcome = self.send(connection_id, message)
                if outcome != "delivered":
                    break
            getattr(report, outcome).append(connection_id)
        return report

    def publish_to_session(self, session_id: str, events: Sequence[StreamEvent]) -> PublishReport:
        """:meth:`publish` to every connection that follows ``session_id`` (the connections table's ``by_session``)."""
        if not events:
            return PublishReport()
        return self.publish(self.connections.following(session_id), events)


def _gone(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code == "GoneException" or status == 410


def _log_failure(connection_id: str, reason: str) -> None:
    logger.warning(
        "post to connection failed; the client catches up from the event log",
        extra={"event": "stream_post_failed", "connection_id": connection_id, "reason": reason},
    )


__all__ = ["ConnectionPublisher", "Delivery", "PublishReport", "post_config"]
