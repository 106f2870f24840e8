"""The WebSocket routes against moto (DynamoDB, SQS) and a stand-in ``@connections`` API: who connects, which turns
are accepted and queued, and how a client that reconnects catches up from the event log."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from agentrail_runtime.sessions.queue import QueuedMessage
from agentrail_runtime.streaming import Connection
from tests.integration.streams.conftest import ALICE, BOB, CONNECTIONS, ws_event

ROLE_ARN = "arn:aws:iam::123456789012:role/agentrail-caller"
USER_ARN = "arn:aws:iam::123456789012:user/alice"


def reply_of(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def send(socket: Any, connection_id: str, session_id: str, text: str = "What is (12 + 30) * 2?", **fields: Any) -> dict:
    body = {"action": "sendMessage", "session_id": session_id, "text": text, **fields}
    return reply_of(socket.handle(ws_event("sendMessage", connection_id, body)))


def resume(socket: Any, connection_id: str, session_id: str, last_event_id: int) -> dict:
    body = {"action": "resume", "session_id": session_id, "last_event_id": last_event_id}
    return reply_of(socket.handle(ws_event("resume", connection_id, body)))


def queued(aws: Any, queue_url: str) -> list[QueuedMessage]:
    return [QueuedMessage.model_validate_json(m["Body"]) for m in aws.received(queue_url)]


def tokens(*texts: str) -> list[dict[str, Any]]:
    return [{"type": "token", "step": 1, "text": text, "deltas": 1} for text in texts]


# -- $connect and $disconnect -----------------------------------------------------------------------------------


def test_connect_through_the_ticket_authorizer_records_the_tickets_principal_and_session(make_socket, connections, clock):
    # given: the context the REQUEST authorizer put on the $connect of a redeemed ticket
    socket = make_socket()
    authorizer = {"principalId": ALICE, "principal": ALICE, "session_id": "s-1", "integrationLatency": 12}
    # when
    response = socket.handle(ws_event("$connect", "conn-1", authorizer=authorizer))
    # then
    assert response == {"statusCode": 200}
    assert connections.get("conn-1") == Connection(
        connection_id="conn-1", principal=ALICE, connected_at=int(clock()), expires_at=int(clock()) + 7800, session_id="s-1"
    )
    assert connections.following("s-1") == ["conn-1"]


def test_connect_through_the_authorizer_of_a_ticket_without_a_session_follows_no_session(make_socket, connections):
    socket = make_socket()

    socket.handle(ws_event("$connect", "conn-1", authorizer={"principal": ALICE, "session_id": ""}))

    connection = connections.get("conn-1")
    assert connection is not None and (connection.principal, connection.session_id) == (ALICE, None)


@pytest.mark.parametrize(
    ("user_arn", "principal"),
    [
        (USER_ARN, f"iam:{USER_ARN}"),
        ("arn:aws:sts::123456789012:assumed-role/agentrail-caller/agentrail-client", f"iam:{ROLE_ARN}"),
    ],
    ids=["user", "assumed-role"],
)
def test_connect_signed_with_iam_names_the_principal_after_the_callers_arn(make_socket, connections, user_arn, principal):
    # given: an IAM-authorized $connect (no authorizer context, the caller's ARN in the identity)
    socket = make_socket()
    event = ws_event("$connect", "conn-iam", identity={"sourceIp": "203.0.113.10", "userArn": user_arn})
    # when
    response = socket.handle(event)
    # then
    assert response == {"statusCode": 200}
    connection = connections.get("conn-iam")
    assert connection is not None and (connection.principal, connection.session_id) == (principal, None)


def test_connect_without_a_principal_is_refused_with_403_and_nothing_is_recorded(make_socket, connections, aws):
    socket = make_socket()

    response = socket.handle(ws_event("$connect", "conn-anonymous"))

    assert response["statusCode"] == 403
    assert connections.get("conn-anonymous") is None
    assert aws.scan(CONNECTIONS) == []


def test_disconnect_deletes_the_connection_and_a_repeated_disconnect_is_harmless(make_socket, connections):
    socket = make_socket()
    connections.put("conn-1", ALICE, session_id="s-1")

    first = socket.handle(ws_event("$disconnect", "conn-1"))
    second = socket.handle(ws_event("$disconnect", "conn-1"))

    assert first == second == {"statusCode": 200}
    assert connections.get("conn-1") is None
    assert connections.following("s-1") == []


# -- sendMessage ----------------------------------------------------------------------------------------------


def test_send_message_under_reject_reserves_the_slot_queues_a_streamed_turn_follows_the_session_and_answers_accepted(
    make_socket, aws, store, connections
):
    # given: Alice's session and her connection, which follows no session yet
    session = store.create(owner=ALICE)
    queue_url = aws.queue()
    socket = make_socket(concurrency="reject", queue_url=queue_url)
    connections.put("conn-1", ALICE)
    # when: she sends a message over the socket
    reply = send(socket, "conn-1", session.session_id, message_id="m-1", model="local")
    # then: accepted at once, with the id the worker's logs carry
    assert reply == {
        "type": "accepted",
        "session_id": session.session_id,
        "message_id": "m-1",
        "correlation_id": "req-conn-1-sendMessage",
    }
    # and the turn waits on the queue, to be streamed
    assert queued(aws, queue_url) == [
        QueuedMessage(
            session_id=session.session_id,
            owner=ALICE,
            message="What is (12 + 30) * 2?",
            model="local",
            message_id="m-1",
            correlation_id="req-conn-1-sendMessage",
            stream=True,
        )
    ]
    # and the session's slot is the message's; the connection follows the session
    slot = store.load_window(session.session_id, owner=ALICE).in_flight
    assert slot is not None and slot.message_id == "m-1"
    assert connections.following(session.session_id) == ["conn-1"]


def test_a_second_message_while_the_first_holds_the_slot_gets_turn_in_progress_and_is_not_queued(
    make_socket, aws, store, connections
):
    # given: a message accepted and reserved, its worker not started yet
    session = store.create(owner=ALICE)
    queue_url = aws.queue()
    socket = make_socket(concurrency="reject", queue_url=queue_url)
    connections.put("conn-1", ALICE)
    connections.put("conn-2", ALICE)
    assert send(socket, "conn-1", session.session_id, message_id="m-1")["type"] == "accepted"
    # when: another message of the same session comes, over another socket
    reply = send(socket, "conn-2", session.session_id, text="And now?", message_id="m-2")
    # then: refused; only the first waits on the queue, and the slot is still the first's
    assert reply == {
        "type": "error",
        "code": "turn_in_progress",
        "message": reply["message"],
        "session_id": session.session_id,
        "message_id": "m-2",
    }
    assert [m.message_id for m in queued(aws, queue_url)] == ["m-1"]
    slot = store.load_window(session.session_id, owner=ALICE).in_flight
    assert slot is not None and slot.message_id == "m-1"


def test_the_same_message_id_sent_twice_is_accepted_twice_and_the_slot_holds_the_one_message(
    make_socket, aws, store, connections
):
    # given
    session = store.create(owner=ALICE)
    queue_url = aws.queue()
    socket = make_socket(concurrency="reject", queue_url=queue_url)
    connections.put("conn-1", ALICE)
    # when: the client retries the frame (it never saw the first reply)
    first = send(socket, "conn-1", session.session_id, message_id="m-1")
    second = send(socket, "conn-1", session.session_id, message_id="m-1")
    # then: both accepted; one slot, the message's; the worker sees the same message id twice (and replays the second)
    assert (first["type"], second["type"]) == ("accepted", "accepted")
    assert first["message_id"] == second["message_id"] == "m-1"
    window = store.load_window(session.session_id, owner=ALICE)
    assert window.in_flight is not None and window.in_flight.message_id == "m-1"
    assert window.turns == []
    assert {m.message_id for m in queued(aws, queue_url)} == {"m-1"}


def test_a_message_without_a_message_id_gets_a_new_one_per_frame(make_socket, aws, store, connections):
    session = store.create(owner=ALICE)
    socket = make_socket(concurrency="reject")
    connections.put("conn-1", ALICE)

    reply = send(socket, "conn-1", session.session_id)

    slot = store.load_window(session.session_id, owner=ALICE).in_flight
    assert reply["type"] == "accepted" and len(reply["message_id"]) >= 16
    assert slot is not None and slot.message_id == reply["message_id"]


def test_send_message_to_another_principals_session_is_session_not_found_and_nothing_is_reserved_queued_or_followed(
    make_socket, aws, store, connections
):
    # given: Bob's session, and Alice's connection
    bobs = store.create(owner=BOB)
    queue_url = aws.queue()
    socket = make_socket(concurrency="reject", queue_url=queue_url)
    connections.put("conn-alice", ALICE)
    # when: Alice sends a message to Bob's session
    reply = send(socket, "conn-alice", bobs.session_id, message_id="m-1")
    # then
    assert (reply["type"], reply["code"]) == ("error", "session_not_found")
    assert queued(aws, queue_url) == []
    assert store.load_window(bobs.session_id, owner=BOB).in_flight is None
    assert connections.following(bobs.session_id) == []


def test_send_message_under_enqueue_queues_the_turn_on_the_fifo_queue_grouped_by_session_without_reserving(
    make_socket, aws, store, connections
):
    # given: the enqueue policy and its FIFO queue
    session = store.create(owner=ALICE)
    fifo = aws.fifo_queue()
    socket = make_socket(concurrency="enqueue", queue_url=fifo)
    connections.put("conn-1", ALICE)
    # when: two messages of the session come one after the other
    first = send(socket, "conn-1", session.session_id, message_id="m-1")
    second = send(socket, "conn-1", session.session_id, text="And now?", message_id="m-2")
    # then: both accepted and queued in order, in the session's group, deduplicated by message id; no slot reserved
    assert (first["type"], second["type"]) == ("accepted", "accepted")
    received = aws.received(fifo)
    assert [(m["Attributes"]["MessageGroupId"], m["Attributes"]["MessageDeduplicationId"]) for m in received] == [
        (session.session_id, "m-1"),
        (session.session_id, "m-2"),
    ]
    messages = [QueuedMessage.model_validate_json(m["Body"]) for m in received]
    assert [(m.message_id, m.stream, m.owner) for m in messages] == [("m-1", True, ALICE), ("m-2", True, ALICE)]
    assert store.load_window(session.session_id, owner=ALICE).in_flight is None
    assert connections.following(session.session_id) == ["conn-1"]


def test_send_message_under_enqueue_to_another_principals_session_is_session_not_found(make_socket, aws, store, connections):
    bobs = store.create(owner=BOB)
    fifo = aws.fifo_queue()
    socket = make_socket(concurrency="enqueue", queue_url=fifo)
    connections.put("conn-alice", ALICE)

    reply = send(socket, "conn-alice", bobs.session_id, message_id="m-1")

    assert reply["code"] == "session_not_found"
    assert aws.received(fifo) == []


def test_send_message_from_an_unknown_connection_is_not_connected_and_nothing_is_reserved_or_queued(make_socket, aws, store):
    # given: a session, and a connection id the table does not know (expired, or erased)
    session = store.create(owner=ALICE)
    queue_url = aws.queue()
    socket = make_socket(concurrency="reject", queue_url=queue_url)
    # when
    reply = send(socket, "conn-unknown", session.session_id, message_id="m-1")
    # then
    assert (reply["type"], reply["code"], reply["message_id"]) == ("error", "not_connected", "m-1")
    assert queued(aws, queue_url) == []
    assert store.load_window(session.session_id, owner=ALICE).in_flight is None


def test_send_message_on_an_expired_connection_is_not_connected(make_socket, aws, store, connections, clock):
    session = store.create(owner=ALICE)
    socket = make_socket(concurrency="reject")
    connections.put("conn-1", ALICE)
    clock.advance(7800)

    reply = send(socket, "conn-1", session.session_id, message_id="m-1")

    assert reply["code"] == "not_connected"


def test_a_turn_that_cannot_be_queued_answers_unavailable_and_frees_the_slot_it_reserved(make_socket, aws, store, connections):
    # given: a queue URL with no queue behind it
    session = store.create(owner=ALICE)
    missing = aws.queue("agentrail-stream-turns").replace("agentrail-stream-turns", "no-such-queue")
    socket = make_socket(concurrency="reject", queue_url=missing)
    connections.put("conn-1", ALICE)
    # when
    reply = send(socket, "conn-1", session.session_id, message_id="m-1")
    # then: the client is told to send again, and may: the slot is free
    assert reply["code"] == "unavailable"
    assert store.load_window(session.session_id, owner=ALICE).in_flight is None


# -- resume ---------------------------------------------------------------------------------------------------


def test_resume_posts_exactly_the_events_after_last_event_id_in_order_and_follows_the_session(
    make_socket, store, connections, log, stage
):
    # given: five events of Alice's session in the log, in two batches, and her new connection
    session = store.create(owner=ALICE)
    writer = log.writer(session.session_id, owner=ALICE)
    numbered = writer.append(tokens("a", "b", "c")) + writer.append(tokens("d", "e"))
    ids = [event.event_id for event in numbered]
    socket = make_socket()
    connections.put("conn-2", ALICE)
    # when: she resumes after the second event
    reply = resume(socket, "conn-2", session.session_id, ids[1])
    # then: the third to fifth, in order, with their numbers; the reply names the last one sent
    assert [(post["event_id"], post["text"]) for post in stage.posts_to("conn-2")] == list(zip(ids[2:], "cde", strict=True))
    assert reply == {"type": "resumed", "session_id": session.session_id, "last_event_id": ids[-1], "gap": False}
    assert connections.following(session.session_id) == ["conn-2"]


def test_resume_from_zero_posts_every_event_kept(make_socket, store, connections, log, stage):
    session = store.create(owner=ALICE)
    numbered = log.writer(session.session_id, owner=ALICE).append(tokens("a", "b"))
    socket = make_socket()
    connections.put("conn-1", ALICE)

    reply = resume(socket, "conn-1", session.session_id, 0)

    assert [post["event_id"] for post in stage.posts_to("conn-1")] == [e.event_id for e in numbered]
    assert (reply["last_event_id"], reply["gap"]) == (numbered[-1].event_id, False)


def test_resume_when_nothing_is_newer_posts_nothing_and_answers_the_same_last_event_id(
    make_socket, store, connections, log, stage
):
    session = store.create(owner=ALICE)
    numbered = log.writer(session.session_id, owner=ALICE).append(tokens("a", "b"))
    socket = make_socket()
    connections.put("conn-1", ALICE)

    reply = resume(socket, "conn-1", session.session_id, numbered[-1].event_id)

    assert stage.posts_to("conn-1") == []
    assert reply == {"type": "resumed", "session_id": session.session_id, "last_event_id": numbered[-1].event_id, "gap": False}


def test_resume_after_earlier_events_expired_reports_a_gap_and_posts_the_events_still_kept(
    make_socket, store, connections, log, stage, clock
):
    # given: a first batch, a second written later, and the clock past the first batch's TTL but not the second's
    session = store.create(owner=ALICE)
    writer = log.writer(session.session_id, owner=ALICE)
    first = writer.append(tokens("a", "b", "c"))
    clock.advance(600)
    second = writer.append(tokens("d", "e"))
    clock.advance(log.ttl_seconds - 600 + 1)
    socket = make_socket()
    connections.put("conn-1", ALICE)
    # when: a client that saw only the first event resumes
    reply = resume(socket, "conn-1", session.session_id, first[0].event_id)
    # then: it gets what is kept, and is told some events are lost
    assert [post["event_id"] for post in stage.posts_to("conn-1")] == [e.event_id for e in second]
    assert reply == {"type": "resumed", "session_id": session.session_id, "last_event_id": second[-1].event_id, "gap": True}


def test_resume_to_a_gone_connection_stops_at_the_first_post_and_deletes_the_connection(
    make_socket, store, connections, log, stage
):
    # given: events to replay, and a connection API Gateway answers 410 Gone for
    session = store.create(owner=ALICE)
    log.writer(session.session_id, owner=ALICE).append(tokens("a", "b", "c"))
    socket = make_socket()
    connections.put("conn-gone", ALICE)
    stage.gone.add("conn-gone")
    # when
    reply = resume(socket, "conn-gone", session.session_id, 0)
    # then: one attempt, nothing more posted, the connection forgotten; the reply says nothing was sent
    assert stage.attempts == ["conn-gone"]
    assert connections.get("conn-gone") is None
    assert (reply["type"], reply["last_event_id"]) == ("resumed", 0)


def test_resume_of_another_principals_session_is_session_not_found_and_posts_nothing(make_socket, store, connections, log, stage):
    bobs = store.create(owner=BOB)
    log.writer(bobs.session_id, owner=BOB).append(tokens("secret"))
    socket = make_socket()
    connections.put("conn-alice", ALICE)

    reply = resume(socket, "conn-alice", bobs.session_id, 0)

    assert (reply["type"], reply["code"]) == ("error", "session_not_found")
    assert stage.attempts == []
    assert connections.following(bobs.session_id) == []


def test_resume_from_an_unknown_connection_is_not_connected(make_socket, store, log, stage):
    session = store.create(owner=ALICE)
    log.writer(session.session_id, owner=ALICE).append(tokens("a"))
    socket = make_socket()

    reply = resume(socket, "conn-unknown", session.session_id, 0)

    assert reply["code"] == "not_connected"
    assert stage.attempts == []


# -- $default and bad frames --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body", "code"),
    [
        ("$default", "garbage", "malformed_frame"),
        ("$default", None, "malformed_frame"),
        ("$default", "[1, 2]", "malformed_frame"),
        ("$default", {"text": "no action"}, "malformed_frame"),
        ("$default", {"action": "deleteEverything"}, "unknown_action"),
        ("sendMessage", {"action": "sendMessage", "session_id": "nope", "text": "hi"}, "invalid_frame"),
        ("resume", {"action": "resume", "session_id": "3f9c2a7e5b1d4c8e9a0b6d2f7e4c1a95", "last_event_id": -1}, "invalid_frame"),
    ],
)
def test_a_bad_frame_gets_an_error_reply_and_changes_nothing(make_socket, aws, connections, stage, route, body, code):
    # given
    queue_url = aws.queue()
    socket = make_socket(queue_url=queue_url)
    connections.put("conn-1", ALICE)
    # when
    reply = reply_of(socket.handle(ws_event(route, "conn-1", body)))
    # then
    assert (reply["type"], reply["code"]) == ("error", code)
    assert aws.received(queue_url) == []
    assert stage.attempts == []


def test_a_message_id_reused_for_another_text_while_its_reservation_holds_the_slot_is_refused_at_once(
    make_socket, aws, store, connections
):
    # given: "m-1" accepted for one text
    session = store.create(owner=ALICE)
    queue_url = aws.queue()
    socket = make_socket(concurrency="reject", queue_url=queue_url)
    connections.put("conn-1", ALICE)
    assert send(socket, "conn-1", session.session_id, message_id="m-1")["type"] == "accepted"
    # when: a frame reuses "m-1" for another text
    reply = send(socket, "conn-1", session.session_id, text="Calculate 1 + 1", message_id="m-1")
    # then: refused as the REST API refuses a reused Idempotency-Key; only the first text waits on the queue
    assert (reply["type"], reply.get("code")) == ("error", "idempotency_key_reused")
    assert [m.message for m in queued(aws, queue_url)] == ["What is (12 + 30) * 2?"]


def test_a_repeated_frame_that_cannot_be_queued_leaves_the_reservation_of_the_accepted_one_in_place(
    make_socket, aws, store, connections
):
    # given: "m-1" accepted and queued (its reservation holds the slot), then SQS becomes unreachable
    session = store.create(owner=ALICE)
    queue_url = aws.queue()
    socket = make_socket(concurrency="reject", queue_url=queue_url)
    connections.put("conn-1", ALICE)
    assert send(socket, "conn-1", session.session_id, message_id="m-1")["type"] == "accepted"

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com")

    aws.sqs.meta.events.register("before-call.sqs.SendMessage", unreachable)
    # when: the client repeats the frame (it never saw the reply) and that copy cannot be queued
    repeated = send(socket, "conn-1", session.session_id, message_id="m-1")
    aws.sqs.meta.events.unregister("before-call.sqs.SendMessage", unreachable)
    # then: the copy is unavailable, but the accepted message, still queued, keeps its slot: another message waits
    assert repeated["code"] == "unavailable"
    slot = store.load_window(session.session_id, owner=ALICE).in_flight
    assert slot is not None and slot.message_id == "m-1"
    assert send(socket, "conn-1", session.session_id, text="And now?", message_id="m-2").get("code") == "turn_in_progress"
    assert [m.message_id for m in queued(aws, queue_url)] == ["m-1"]
