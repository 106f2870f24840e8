"""Connect tickets against moto: issued by an authenticated call, redeemed once by ``$connect``, never stored in clear."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from agentrail_runtime import contract
from agentrail_runtime.streaming import ConnectTickets, TicketGrant, TicketRejected
from agentrail_runtime.streaming.tickets import ticket_hash
from tests.integration.streaming.conftest import ALICE, TICKETS, scan


def test_a_ticket_redeems_once_for_the_principal_and_session_it_was_issued_for(tickets):
    issued = tickets.issue(ALICE, session_id="s-1")

    grant = tickets.redeem(issued.ticket)

    assert grant == TicketGrant(principal=ALICE, session_id="s-1")
    with pytest.raises(TicketRejected, match="unknown, already used or expired"):
        tickets.redeem(issued.ticket)


def test_the_table_keeps_the_tickets_hash_the_principal_and_a_ttl_never_the_ticket(tickets, dynamodb, clock):
    issued = tickets.issue(ALICE)

    (item,) = scan(dynamodb, TICKETS)

    assert item[contract.STREAM_TICKET_KEY] == {"S": ticket_hash(issued.ticket)}
    assert issued.ticket not in str(item)
    assert item[contract.STREAM_OWNER_ATTRIBUTE] == {"S": ALICE}
    assert int(item[contract.STREAM_TTL_ATTRIBUTE]["N"]) == issued.expires_at == int(clock()) + 60


def test_every_issued_ticket_is_a_different_256_bit_secret(tickets):
    issued = {tickets.issue(ALICE).ticket for _ in range(20)}

    assert len(issued) == 20
    assert {len(ticket) for ticket in issued} == {43}


def test_a_ticket_is_redeemable_until_its_last_second(tickets, clock):
    issued = tickets.issue(ALICE)
    clock.advance(59)

    assert tickets.redeem(issued.ticket).principal == ALICE


def test_an_expired_ticket_is_rejected_though_dynamodb_has_not_deleted_it_yet(tickets, dynamodb, clock):
    # Given a ticket whose minute has passed, still in the table (DynamoDB's TTL deletes lazily; moto never does)
    issued = tickets.issue(ALICE)
    clock.advance(60)

    # When $connect redeems it, then it is refused by the delete's condition
    with pytest.raises(TicketRejected):
        tickets.redeem(issued.ticket)
    assert len(scan(dynamodb, TICKETS)) == 1


def test_the_ticket_lifetime_is_a_setting(dynamodb, clock):
    tickets = ConnectTickets(TICKETS, ttl_seconds=5, dynamodb=dynamodb)
    issued = tickets.issue(ALICE)
    clock.advance(5)

    with pytest.raises(TicketRejected):
        tickets.redeem(issued.ticket)


def test_an_unknown_ticket_is_rejected(tickets):
    tickets.issue(ALICE)

    with pytest.raises(TicketRejected):
        tickets.redeem("A" * 43)


@pytest.mark.parametrize("ticket", ["", "short", "A" * 44, "A" * 42 + "/", "A" * 100_000, None, 42])
def test_a_malformed_ticket_is_rejected_without_a_call_to_dynamodb(tickets, dynamodb, ticket: Any):
    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))

    with pytest.raises(TicketRejected):
        tickets.redeem(ticket)

    assert calls == []


def test_of_two_threads_redeeming_one_ticket_at_once_exactly_one_wins(tickets, dynamodb):
    # Given tickets, and two threads lined up to send their DeleteItem at the same moment
    barrier = threading.Barrier(2, timeout=30)

    def line_up(**_: Any) -> None:  # a before-call hook that returns a value would answer the call itself
        barrier.wait()

    dynamodb.meta.events.register("before-call.dynamodb.DeleteItem", line_up)
    for _ in range(10):
        ticket = tickets.issue(ALICE).ticket
        outcomes: list[object] = []

        def redeem(ticket: str = ticket, outcomes: list[object] = outcomes) -> None:
            try:
                outcomes.append(tickets.redeem(ticket))
            except TicketRejected as rejected:
                outcomes.append(rejected)

        # When both redeem the same ticket
        threads = [threading.Thread(target=redeem) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        # Then exactly one gets the grant, the other is rejected
        assert sorted(type(o).__name__ for o in outcomes) == ["TicketGrant", "TicketRejected"]


def test_erasing_a_principal_deletes_its_tickets_and_no_one_elses(tickets, dynamodb):
    mine = [tickets.issue(ALICE).ticket for _ in range(3)]
    theirs = tickets.issue("cognito:bob").ticket

    assert tickets.erase_owner(ALICE) == 3
    assert tickets.erase_owner(ALICE) == 0
    for ticket in mine:
        with pytest.raises(TicketRejected):
            tickets.redeem(ticket)
    assert tickets.redeem(theirs).principal == "cognito:bob"
