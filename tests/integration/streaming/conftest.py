"""Fixtures of the streaming tests: the three streaming tables on moto, and the stores over them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentrail_runtime.clock import Clock
from agentrail_runtime.streaming import ConnectionStore, ConnectTickets, EventLog
from tests.integration.conftest import create_stream_tables

TICKETS = "stream-tickets"
CONNECTIONS = "stream-connections"
EVENTS = "stream-events"
ALICE = "cognito:alice"
BOB = "cognito:bob"


@pytest.fixture
def dynamodb(clock: Clock) -> Iterator[Any]:
    """A moto DynamoDB client with the streaming tables (the clock is frozen first, so every store reads it)."""
    with mock_aws():
        client = boto3.client("dynamodb")
        create_stream_tables(client, tickets=TICKETS, connections=CONNECTIONS, events=EVENTS)
        yield client


@pytest.fixture
def tickets(dynamodb: Any) -> ConnectTickets:
    return ConnectTickets(TICKETS, dynamodb=dynamodb)


@pytest.fixture
def connections(dynamodb: Any) -> ConnectionStore:
    return ConnectionStore(CONNECTIONS, dynamodb=dynamodb)


@pytest.fixture
def log(dynamodb: Any) -> EventLog:
    return EventLog(EVENTS, dynamodb=dynamodb)


def scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=table)
    return [item for page in pages for item in page["Items"]]
