"""The connections table against moto: put at $connect, gone at $disconnect, found by the session it follows."""

from __future__ import annotations

import pytest

from agentrail_runtime import contract
from agentrail_runtime.streaming import Connection, ConnectionNotFound, ConnectionStore
from tests.integration.streaming.conftest import ALICE, BOB, CONNECTIONS, scan


def test_a_connection_is_kept_for_api_gateways_two_hours_and_a_margin(connections, dynamodb, clock):
    connected = connections.put("conn-1", ALICE, session_id="s-1")

    (item,) = scan(dynamodb, CONNECTIONS)

    assert connected == Connection(
        connection_id="conn-1",
        principal=ALICE,
        connected_at=int(clock()),
        expires_at=int(clock()) + 7800,
        session_id="s-1",
    )
    assert int(item[contract.STREAM_TTL_ATTRIBUTE]["N"]) == connected.expires_at
    assert connections.get("conn-1") == connected


def test_a_connection_past_its_ttl_reads_as_gone_before_dynamodb_deletes_it(connections, clock):
    connections.put("conn-1", ALICE)
    clock.advance(7800)

    assert connections.get("conn-1") is None


def test_disconnect_forgets_the_connection_and_a_second_disconnect_finds_nothing(connections):
    connections.put("conn-1", ALICE, session_id="s-1")

    assert connections.delete("conn-1") is True
    assert connections.delete("conn-1") is False
    assert connections.get("conn-1") is None
    assert connections.following("s-1") == []


def test_the_connections_that_follow_a_session_are_listed_from_its_index(connections):
    # Given two sockets on one session, one on another session, and one that follows none yet
    connections.put("conn-1", ALICE, session_id="s-1")
    connections.put("conn-2", ALICE, session_id="s-1")
    connections.put("conn-3", ALICE, session_id="s-2")
    connections.put("conn-4", ALICE)

    # Then the session's index lists its two
    assert sorted(connections.following("s-1")) == ["conn-1", "conn-2"]
    assert connections.following("s-3") == []


def test_a_connection_follows_the_session_its_principal_subscribes_it_to_and_only_that_one(connections):
    connections.put("conn-1", ALICE, session_id="s-1")

    connections.follow("conn-1", "s-2", principal=ALICE)

    assert connections.following("s-1") == []
    assert connections.following("s-2") == ["conn-1"]
    assert connections.get("conn-1").session_id == "s-2"


def test_another_principal_cannot_subscribe_a_connection(connections):
    connections.put("conn-1", ALICE)

    with pytest.raises(ConnectionNotFound):
        connections.follow("conn-1", "s-bob", principal=BOB)

    assert connections.following("s-bob") == []


def test_a_closed_or_expired_connection_cannot_subscribe(connections, clock):
    connections.put("conn-old", ALICE)
    clock.advance(7800)

    with pytest.raises(ConnectionNotFound):
        connections.follow("conn-old", "s-1", principal=ALICE)
    with pytest.raises(ConnectionNotFound):
        connections.follow("conn-never", "s-1", principal=ALICE)
    assert [item["connection_id"]["S"] for item in scan(connections.dynamodb, CONNECTIONS)] == ["conn-old"]


def test_a_ttl_shorter_than_api_gateways_two_hours_is_refused(dynamodb):
    with pytest.raises(ValueError, match="2-hour"):
        ConnectionStore(CONNECTIONS, ttl_seconds=3600, dynamodb=dynamodb)


def test_erasing_a_principal_deletes_its_connections_and_no_one_elses(connections):
    connections.put("conn-1", ALICE, session_id="s-1")
    connections.put("conn-2", ALICE)
    connections.put("conn-3", BOB, session_id="s-bob")

    assert connections.erase_owner(ALICE) == 2
    assert connections.erase_owner(ALICE) == 0
    assert connections.following("s-1") == []
    assert connections.get("conn-3").principal == BOB
