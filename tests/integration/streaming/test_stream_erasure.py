"""Erasure of one principal's streaming data (tickets, connections, event batches) through the PrincipalEraser."""

from __future__ import annotations

from agentrail_runtime.erasure import ErasureCounts, ErasureSettings, PrincipalEraser
from tests.integration.streaming.conftest import ALICE, BOB, CONNECTIONS, EVENTS, TICKETS, scan


def test_erasing_a_principal_deletes_its_tickets_connections_and_streamed_events_and_leaves_another_principals(
    tickets, connections, log, dynamodb
):
    # Given Alice and Bob each with a ticket, a connection following their session, and a streamed turn
    for principal, session in ((ALICE, "s-alice"), (BOB, "s-bob")):
        tickets.issue(principal, session_id=session)
        connections.put(f"conn-{session}", principal, session_id=session)
        log.writer(session, owner=principal).append([{"type": "token", "text": "hi"}, {"type": "final", "answer": "hi"}])
    eraser = PrincipalEraser(connect_tickets=tickets, connections=connections, stream_events=log, settings=ErasureSettings())

    # When Alice's data is erased, twice
    first = eraser.erase(ALICE)
    second = eraser.erase(ALICE)

    # Then her items are gone from the three tables (a batch and the stream's generation marker), Bob's are all there
    assert first == ErasureCounts(connect_tickets=1, connections=1, stream_batches=2)
    assert second == ErasureCounts()
    for table in (TICKETS, CONNECTIONS, EVENTS):
        assert {item["owner"]["S"] for item in scan(dynamodb, table)} == {BOB}, table
    assert connections.following("s-alice") == []
    assert [e.event["type"] for e in log.after("s-bob", 0)] == ["token", "final"]
