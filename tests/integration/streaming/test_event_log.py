"""The event log against moto: numbered batches, resumable after any event id, exactly once under retries."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from agentrail_runtime import contract
from agentrail_runtime.streaming import MAX_BATCH_BYTES, EventBatchTooLarge, EventLog, StreamEvent
from tests.integration.streaming.conftest import ALICE, EVENTS, scan

SESSION = "s-1"


def tokens(*texts: str) -> list[dict[str, Any]]:
    return [{"type": "token", "text": text} for text in texts]


def ids(events: list[StreamEvent]) -> list[int]:
    return [event.event_id for event in events]


def batches(dynamodb: Any) -> list[dict[str, Any]]:
    """The stream's batch items, without its generation marker (item 0)."""
    return [item for item in scan(dynamodb, EVENTS) if item[contract.STREAM_EVENT_SORT_KEY]["N"] != "0"]


def fail_once(dynamodb: Any, event: str, error: Exception) -> None:
    """Raise ``error`` from the next PutItem at ``event`` (``before-call``: the write never leaves; ``after-call``:
    the write landed and the answer is lost)."""
    state = {"armed": True}

    def hook(**_: Any) -> None:
        if state["armed"]:
            state["armed"] = False
            raise error

    dynamodb.meta.events.register(f"{event}.dynamodb.PutItem", hook)


def test_events_are_numbered_one_by_one_across_batches(log):
    writer = log.writer(SESSION, owner=ALICE)

    first = writer.append([{"type": "step_started", "step": 1}, *tokens("Hel")])
    second = writer.append(tokens("lo", "!"))

    numbers = ids(first) + ids(second)
    assert numbers == list(range(numbers[0], numbers[0] + 4))
    assert second[1].event == {"type": "token", "text": "!"}


def test_after_returns_every_later_event_in_order_from_inside_a_batch_across_batches_and_pages(log, dynamodb):
    # Given a stream of 12 batches, and DynamoDB answering two items per page
    writer = log.writer(SESSION, owner=ALICE)
    written = [event for n in range(12) for event in writer.append(tokens(f"{n}a", f"{n}b", f"{n}c"))]

    def two_per_page(params: dict[str, Any], **_: Any) -> None:
        params.setdefault("Limit", 2)

    dynamodb.meta.events.register("before-parameter-build.dynamodb.Query", two_per_page)
    resume_after = written[4].event_id  # the middle of the second batch

    # When a client resumes after it
    rest = list(log.after(SESSION, resume_after))

    # Then it gets every later event once, in order
    assert rest == written[5:]
    assert list(log.after(SESSION, 0)) == written
    assert list(log.after(SESSION, written[-1].event_id)) == []


def test_each_batch_is_one_item_with_its_owner_and_a_ttl_an_hour_away(log, dynamodb, clock):
    log.writer(SESSION, owner=ALICE).append(tokens(*"abcdefghij"))

    (item,) = batches(dynamodb)

    assert item[contract.STREAM_OWNER_ATTRIBUTE] == {"S": ALICE}
    assert int(item[contract.STREAM_TTL_ATTRIBUTE]["N"]) == int(clock()) + 3600


def test_a_retried_append_whose_write_landed_but_whose_answer_was_lost_is_a_no_op(log, dynamodb):
    # Given a writer whose second PutItem lands in the table, and whose answer is lost
    writer = log.writer(SESSION, owner=ALICE)
    first = writer.append(tokens("a"))
    fail_once(dynamodb, "after-call", ReadTimeoutError(endpoint_url="https://dynamodb"))
    with pytest.raises(ReadTimeoutError):
        writer.append(tokens("b", "c"))

    # When the run retries the same batch, and goes on
    retried = writer.append(tokens("b", "c"))
    after = writer.append(tokens("d"))

    # Then the batch is there once, under the numbers of its first write, and the numbering has no gap
    assert len(batches(dynamodb)) == 3
    assert ids(first + retried + after) == list(range(first[0].event_id, first[0].event_id + 4))
    assert [e.event["text"] for e in log.after(SESSION, 0)] == ["a", "b", "c", "d"]


def test_a_retried_append_whose_write_landed_is_a_no_op_even_after_another_writer_appended(log, dynamodb):
    # Given a write that landed with its answer lost, and another run on the session appending after it
    writer, racer = log.writer(SESSION, owner=ALICE), log.writer(SESSION, owner=ALICE)
    first = writer.append(tokens("a"))
    fail_once(dynamodb, "after-call", ReadTimeoutError(endpoint_url="https://dynamodb"))
    with pytest.raises(ReadTimeoutError):
        writer.append(tokens("b"))
    theirs = racer.append(tokens("theirs"))

    # When the writer retries its batch
    retried = writer.append(tokens("b"))

    # Then it finds its own batch at the numbers it tried, and writes nothing more
    assert ids(first + retried + theirs) == list(range(first[0].event_id, first[0].event_id + 3))
    assert [e.event["text"] for e in log.after(SESSION, 0)] == ["a", "b", "theirs"]


def test_a_retried_append_whose_write_never_left_writes_it_once(log, dynamodb):
    writer = log.writer(SESSION, owner=ALICE)
    first = writer.append(tokens("a"))
    fail_once(dynamodb, "before-call", ConnectTimeoutError(endpoint_url="https://dynamodb"))
    with pytest.raises(ConnectTimeoutError):
        writer.append(tokens("b"))

    retried = writer.append(tokens("b"))

    assert ids(retried) == [first[0].event_id + 1]
    assert [e.event["text"] for e in log.after(SESSION, 0)] == ["a", "b"]


def test_a_batch_redelivered_to_a_new_writer_with_its_batch_id_is_a_no_op(log, dynamodb):
    # Given a batch written under an explicit id (a run's id and the batch's index), and the run delivered again
    first = log.writer(SESSION, owner=ALICE).append(tokens("a", "b"), batch_id="run-1:0")

    # When the redelivered run writes that batch again, through a new writer
    again = log.writer(SESSION, owner=ALICE).append(tokens("a", "b"), batch_id="run-1:0")

    # Then nothing is added, and it gets the first write's numbers
    assert again == first
    assert len(batches(dynamodb)) == 1


def test_two_writers_on_one_stream_never_share_a_number_and_leave_no_gap(log, dynamodb):
    # Given two runs on one session (two racing turns), appending in turn, each with the numbers it last saw
    one, other = log.writer(SESSION, owner=ALICE), log.writer(SESSION, owner=ALICE)

    written = []
    for n in range(4):
        written += one.append(tokens(f"one-{n}", f"one-{n}"))
        written += other.append(tokens(f"other-{n}"))

    # Then every event has its own number, and the numbers follow each other
    numbers = sorted(ids(written))
    assert numbers == list(range(numbers[0], numbers[0] + 12))
    assert list(log.after(SESSION, 0)) == sorted(written, key=lambda event: event.event_id)


def test_a_retry_that_finds_another_writers_batch_at_its_numbers_renumbers_and_writes_once(log, dynamodb):
    # Given a writer whose append fails before the write, while another writer takes the next numbers
    writer, racer = log.writer(SESSION, owner=ALICE), log.writer(SESSION, owner=ALICE)
    first = writer.append(tokens("a"))
    fail_once(dynamodb, "before-call", ConnectTimeoutError(endpoint_url="https://dynamodb"))
    with pytest.raises(ConnectTimeoutError):
        writer.append(tokens("mine"))
    theirs = racer.append(tokens("theirs"))

    # When the writer retries its batch
    mine = writer.append(tokens("mine"))

    # Then it is written once, after the other writer's
    assert ids(first + theirs + mine) == list(range(first[0].event_id, first[0].event_id + 3))
    assert [e.event["text"] for e in log.after(SESSION, 0)] == ["a", "theirs", "mine"]


def test_expired_batches_are_hidden_and_the_next_generation_numbers_above_every_old_event(log, dynamodb, clock):
    # Given a stream whose batches have expired (still in the table: moto, like DynamoDB for a while, keeps them)
    old = log.writer(SESSION, owner=ALICE).append(tokens("old", "older"))
    clock.advance(3600)
    assert list(log.after(SESSION, 0)) == []
    assert log.last_event_id(SESSION) is None

    # When a new turn writes to it
    new = log.writer(SESSION, owner=ALICE).append(tokens("new"))

    # Then its numbers are above the old ones, and a client holding an old number gets the new events
    assert new[0].event_id > old[-1].event_id
    assert list(log.after(SESSION, old[-1].event_id)) == new
    assert log.last_event_id(SESSION) == new[0].event_id


def test_streams_are_numbered_independently(log):
    a = log.writer("s-a", owner=ALICE).append(tokens("a"))
    b = log.writer("s-b", owner=ALICE).append(tokens("b"))

    assert list(log.after("s-a", 0)) == a
    assert list(log.after("s-b", 0)) == b


def test_a_batch_over_the_item_limit_is_refused_before_any_write(log, dynamodb):
    with pytest.raises(EventBatchTooLarge, match="split it"):
        log.writer(SESSION, owner=ALICE).append(tokens("x" * MAX_BATCH_BYTES))

    assert scan(dynamodb, EVENTS) == []


@pytest.mark.parametrize("event", [{"text": "no type"}, {"type": 3}])
def test_an_event_without_a_string_type_is_refused(log, event):
    with pytest.raises(ValueError, match="string 'type'"):
        log.writer(SESSION, owner=ALICE).append([event])


def test_an_empty_batch_writes_nothing(log, dynamodb):
    assert log.writer(SESSION, owner=ALICE).append([]) == []
    assert scan(dynamodb, EVENTS) == []


def test_the_ttl_of_the_log_is_a_setting(dynamodb, clock):
    log = EventLog(EVENTS, ttl_seconds=120, dynamodb=dynamodb)
    written = log.writer(SESSION, owner=ALICE).append(tokens("a"))
    clock.advance(119)
    assert list(log.after(SESSION, 0)) == written

    clock.advance(1)

    assert list(log.after(SESSION, 0)) == []


def test_erasing_a_principal_deletes_the_batches_of_its_streams_and_no_one_elses(log, dynamodb):
    log.writer(SESSION, owner=ALICE).append(tokens("a"))
    log.writer(SESSION, owner=ALICE).append(tokens("b"))
    theirs = log.writer("s-bob", owner="cognito:bob").append(tokens("c"))

    erased = log.erase_owner(ALICE)

    assert erased == 3  # two batches and the stream's generation marker
    assert log.erase_owner(ALICE) == 0
    assert list(log.after(SESSION, 0)) == []
    assert list(log.after("s-bob", 0)) == theirs


@pytest.mark.parametrize("expired_before", [False, True], ids=["new stream", "expired stream"])
def test_two_writers_starting_a_generation_at_once_share_one_numbering(log, dynamodb, clock, expired_before):
    # Given a stream with no live batch, and a second writer that appends right after the first one's first write
    if expired_before:
        log.writer(SESSION, owner=ALICE).append(tokens("long ago"))
        clock.advance(3600)
    one, other = log.writer(SESSION, owner=ALICE), log.writer(SESSION, owner=ALICE)
    theirs: list[StreamEvent] = []
    interleaved: list[bool] = []

    def interleave(**_: Any) -> None:
        if not interleaved:
            interleaved.append(True)
            clock.advance(1)  # the other writer's clock is a little later
            theirs.extend(other.append(tokens("other")))

    dynamodb.meta.events.register("after-call.dynamodb.PutItem", interleave)

    # When the first writer's append goes on
    mine = one.append(tokens("one"))

    # Then both batches are in one chain of numbers
    assert ids(theirs + mine) == [theirs[0].event_id, theirs[0].event_id + 1]
    assert [e.event["text"] for e in log.after(SESSION, 0)] == ["other", "one"]
