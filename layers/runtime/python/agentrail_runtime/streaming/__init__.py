"""Streaming over a WebSocket API: connect tickets, the connections table, the event log and the publisher."""

from agentrail_runtime.streaming.connections import Connection, ConnectionNotFound, ConnectionStore
from agentrail_runtime.streaming.events import (
    MAX_BATCH_BYTES,
    EventBatchTooLarge,
    EventLog,
    StreamContended,
    StreamEvent,
    StreamWriter,
)
from agentrail_runtime.streaming.publisher import ConnectionPublisher, Delivery, PublishReport, post_config
from agentrail_runtime.streaming.settings import StreamSettings, load_stream_settings
from agentrail_runtime.streaming.tickets import ConnectTickets, IssuedTicket, TicketGrant, TicketRejected

__all__ = [
    "MAX_BATCH_BYTES",
    "ConnectTickets",
    "Connection",
    "ConnectionNotFound",
    "ConnectionPublisher",
    "ConnectionStore",
    "Delivery",
    "EventBatchTooLarge",
    "EventLog",
    "IssuedTicket",
    "PublishReport",
    "StreamContended",
    "StreamEvent",
    "StreamSettings",
    "StreamWriter",
    "TicketGrant",
    "TicketRejected",
    "load_stream_settings",
    "post_config",
]
