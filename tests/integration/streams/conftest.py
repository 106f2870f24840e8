"""Fixtures of the WebSocket streaming tests: the session table, the three streaming tables and the turn queues on
moto, and a stand-in for the stage's ``@connections`` API (moto's never answers 410 Gone nor times out)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws

from agentrail_runtime.clock import Clock
from agentrail_runtime.sessions import DynamoDBSessionStore
from agentrail_runtime.sessions.dynamodb import OWNER_INDEX
from agentrail_runtime.streaming import ConnectionPublisher, ConnectionStore, ConnectTickets, EventLog
from agentrail_runtime.streams.socket import StreamSocket
from tests.integration.conftest import create_stream_tables, create_table

SESSION_TABLE = "agentrail-sessions"
TICKETS = "stream-tickets"
CONNECTIONS = "stream-connections"
EVENTS = "stream-events"
STAGE_URL = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod"
ALICE = "cognito:alice"
BOB = "cognito:bob"
#: How long a WebSocket message holds its session's slot before a worker starts it (the settings' default).
LEASE_SECONDS = 960


@dataclass
class FakeStage:
    """The ``apigatewaymanagementapi`` client the publisher posts through: it records every post, answers 410
    ``GoneException`` for the connections in ``gone``, and times out every post while ``timing_out`` is set."""

    gone: set[str] = field(default_factory=set)
    timing_out: bool = False
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    #: Called with each post before it is answered (a test reads the session at the moment an event goes out).
    on_post: Callable[[str, dict[str, Any]], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        with self._lock:
            self.attempts.append(ConnectionId)
        if self.on_post is not None:
            self.on_post(ConnectionId, json.loads(Data))
        if self.timing_out:
            raise ReadTimeoutError(endpoint_url=f"{STAGE_URL}/@connections/{ConnectionId}")
        if ConnectionId in self.gone:
            raise ClientError(
                {
                    "Error": {"Code": "GoneException", "Message": "Gone"},
                    "ResponseMetadata": {"HTTPStatusCode": 410},
                },
                "PostToConnection",
            )
        with self._lock:
            self.posts.append((ConnectionId, json.loads(Data)))
        return {}

    def posts_to(self, connection_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for to, body in self.posts if to == connection_id]


@dataclass
class Aws:
    """The moto account of a streaming test."""

    dynamodb: Any
    sqs: Any

    def queue(self, name: str = "agentrail-stream-turns") -> str:
        return self.sqs.create_queue(QueueName=name)["QueueUrl"]

    def fifo_queue(self, name: str = "agentrail-session-turns.fifo") -> str:
        return self.sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]

    def received(self, queue_url: str) -> list[dict[str, Any]]:
        """Every message visible on the queue now, with its system attributes (each received once)."""
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], VisibilityTimeout=60
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)

    def scan(self, table: str) -> list[dict[str, Any]]:
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=table)
        return [item for page in pages for item in page["Items"]]


@pytest.fixture
def aws(clock: Clock) -> Iterator[Aws]:
    """The SessionTable (the construct's key schema, TTL and owner index), the streaming tables and SQS on moto; the
    clock is frozen first, so every store reads it."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_table(dynamodb, SESSION_TABLE, "pk", "sk", indexes={OWNER_INDEX: "owner"}, ttl="expires_at")
        create_stream_tables(dynamodb, tickets=TICKETS, connections=CONNECTIONS, events=EVENTS)
        yield Aws(dynamodb=dynamodb, sqs=boto3.client("sqs"))


@pytest.fixture
def store(aws: Aws, clock: Clock) -> DynamoDBSessionStore:
    return DynamoDBSessionStore(SESSION_TABLE, client=aws.dynamodb, clock=clock)


@pytest.fixture
def tickets(aws: Aws) -> ConnectTickets:
    return ConnectTickets(TICKETS, dynamodb=aws.dynamodb)


@pytest.fixture
def connections(aws: Aws) -> ConnectionStore:
    return ConnectionStore(CONNECTIONS, dynamodb=aws.dynamodb)


@pytest.fixture
def log(aws: Aws) -> EventLog:
    return EventLog(EVENTS, dynamodb=aws.dynamodb)


@pytest.fixture
def stage() -> FakeStage:
    return FakeStage()


@pytest.fixture
def publisher(connections: ConnectionStore, stage: FakeStage) -> ConnectionPublisher:
    return ConnectionPublisher(STAGE_URL, connections, client=stage)


@pytest.fixture
def make_socket(
    aws: Aws, store: DynamoDBSessionStore, connections: ConnectionStore, log: EventLog, publisher: ConnectionPublisher
) -> Callable[..., StreamSocket]:
    """``make_socket(concurrency=..., queue_url=...)``: the WebSocket routes over the moto tables and the fake stage."""

    def build(*, concurrency: str = "reject", queue_url: str | None = None, **options: Any) -> StreamSocket:
        return StreamSocket(
            connections=connections,
            log=log,
            publisher=publisher,
            sessions=store,
            concurrency=concurrency,  # type: ignore[arg-type]
            queue_url=queue_url or aws.queue(),
            lease_seconds=options.pop("lease_seconds", LEASE_SECONDS),
            queue_client=aws.sqs,
            **options,
        )

    return build


def ws_event(route: str, connection_id: str, body: Any = None, **context: Any) -> dict[str, Any]:
    """A WebSocket API event as API Gateway sends it to a Lambda proxy integration (``body`` other than a string is
    sent as JSON)."""
    request = {
        "routeKey": route,
        "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
        "connectionId": connection_id,
        "requestId": f"req-{connection_id}-{route}",
        "apiId": "a1b2c3d4e5",
        "stage": "prod",
        "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "identity": {"sourceIp": "203.0.113.10"},
        **context,
    }
    event: dict[str, Any] = {"requestContext": request, "isBase64Encoded": False}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event
