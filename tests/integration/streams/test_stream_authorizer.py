"""The ``$connect`` authorizer against moto: a ticket lets exactly one connection in, anything else is denied, and
no ticket ever reaches the logs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentrail_runtime.observability import logger
from agentrail_runtime.streaming import load_stream_settings
from agentrail_runtime.streams.authorizer import authorize
from tests.integration.streams.conftest import ALICE, TICKETS

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/$connect"


def connect_event(ticket: Any = None, *, connection_id: str = "conn-1") -> dict[str, Any]:
    """The event API Gateway sends a WebSocket API's REQUEST authorizer at ``$connect``."""
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": {"Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "Sec-WebSocket-Version": "13"},
        "queryStringParameters": None if ticket is None else {"ticket": ticket},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "connectionId": connection_id,
            "requestId": "req-connect",
            "apiId": "a1b2c3d4e5",
            "stage": "prod",
        },
    }


def allowed(answer: dict[str, Any]) -> bool:
    (statement,) = answer["policyDocument"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == ("execute-api:Invoke", METHOD_ARN)
    return statement["Effect"] == "Allow"


@pytest.fixture
def debug_logging() -> Iterator[None]:
    level = logger.log_level
    logger.setLevel("DEBUG")
    yield
    logger.setLevel(level)


@pytest.fixture
def authorizer_handler(aws, handler_module) -> Any:
    """``agentrail_handlers.stream_authorizer.app.handler`` as deployed, over the moto ticket table."""
    load_stream_settings.cache_clear()
    module = handler_module("stream_authorizer", {"AGENT_STREAM_TICKET_TABLE": TICKETS})
    load_stream_settings.cache_clear()
    return module.handler


def test_a_valid_ticket_is_allowed_with_its_principal_and_session_in_the_context(tickets):
    # given: a ticket issued to Alice for her session
    issued = tickets.issue(ALICE, session_id="3f9c2a7e5b1d4c8e9a0b6d2f7e4c1a95")
    # when
    answer = authorize(connect_event(issued.ticket), tickets)
    # then
    assert allowed(answer)
    assert answer["principalId"] == ALICE
    assert answer["context"] == {"principal": ALICE, "session_id": "3f9c2a7e5b1d4c8e9a0b6d2f7e4c1a95"}


def test_a_ticket_issued_without_a_session_is_allowed_with_an_empty_session_in_the_context(tickets):
    issued = tickets.issue(ALICE)

    answer = authorize(connect_event(issued.ticket), tickets)

    assert allowed(answer)
    assert answer["context"] == {"principal": ALICE, "session_id": ""}


def test_the_same_ticket_a_second_time_is_denied(tickets):
    # given: a ticket already redeemed by a first connection
    issued = tickets.issue(ALICE, session_id="3f9c2a7e5b1d4c8e9a0b6d2f7e4c1a95")
    assert allowed(authorize(connect_event(issued.ticket), tickets))
    # when: a second connection presents it
    answer = authorize(connect_event(issued.ticket, connection_id="conn-2"), tickets)
    # then
    assert not allowed(answer)
    assert answer["principalId"] == "anonymous"
    assert "context" not in answer


def test_a_ticket_past_its_expiry_is_denied(tickets, clock):
    issued = tickets.issue(ALICE)
    clock.advance(tickets.ttl_seconds)

    assert not allowed(authorize(connect_event(issued.ticket), tickets))


@pytest.mark.parametrize(
    "query",
    [None, {}, {"ticket": ""}, {"ticket": "garbage"}, {"ticket": "A" * 43}, {"other": "x"}, {"ticket": "' OR 1=1 --"}],
    ids=["no-query", "empty-query", "empty-ticket", "garbage", "unknown-well-formed", "other-parameter", "injection"],
)
def test_a_missing_malformed_or_unknown_ticket_is_denied(tickets, query):
    event = connect_event()
    event["queryStringParameters"] = query

    answer = authorize(event, tickets)

    assert not allowed(answer)
    assert "context" not in answer


def test_the_deployed_handler_never_logs_a_ticket_it_allows_or_denies(
    authorizer_handler, tickets, lambda_context, stdout_records, debug_logging
):
    # given: a ticket, logging at DEBUG
    issued = tickets.issue(ALICE, session_id="3f9c2a7e5b1d4c8e9a0b6d2f7e4c1a95")
    stdout_records()
    # when: it connects once, then again (denied), and an unknown ticket tries too
    first = authorizer_handler(connect_event(issued.ticket), lambda_context)
    second = authorizer_handler(connect_event(issued.ticket, connection_id="conn-2"), lambda_context)
    unknown = "B" * 43
    third = authorizer_handler(connect_event(unknown), lambda_context)
    # then: allowed once; and no log line carries either ticket
    assert [allowed(a) for a in (first, second, third)] == [True, False, False]
    records = stdout_records()
    assert [r["event"] for r in records if r.get("event") == "stream_connect_refused"] == ["stream_connect_refused"] * 2
    logged = repr(records)
    assert issued.ticket not in logged
    assert unknown not in logged
