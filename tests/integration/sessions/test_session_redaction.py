"""``store_redacted``: a session turn with planted personal data stores none of it (DynamoDB items, S3 offload) and
logs none of it at DEBUG, while the model saw it as written; off, the history keeps it as written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentrail_runtime.observability import logger
from agentrail_runtime.sessions import SessionAgent
from tests.integration.planted_pii import (
    DEFINITION,
    EMAIL,
    MESSAGE,
    PlantedModel,
    dumped,
    markers_in,
    planted_in,
    spy_on_redaction,
)


@pytest.fixture
def debug_logging() -> Iterator[None]:
    level = logger.log_level
    logger.setLevel("DEBUG")
    yield
    logger.setLevel(level)


def take_planted_turn(aws, make_store, agents_with, clock, *, store_redacted: bool) -> tuple[PlantedModel, str | None]:
    model = PlantedModel()
    store = make_store(offload=True, max_payload_bytes=256)  # the turn goes to S3
    sessions = SessionAgent(
        store=store, agents=agents_with(model, definition=DEFINITION), store_redacted=store_redacted, clock=clock
    )
    session = store.create(owner="user-1")
    outcome = sessions.take_turn(session.session_id, owner="user-1", message=MESSAGE, message_id="m-1")
    return model, outcome.result.answer if outcome.result else None


def stored(aws) -> list[str]:
    objects = [aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read().decode() for key in aws.objects()]
    return dumped(aws.items()) + objects


def test_with_store_redacted_no_planted_value_is_stored_or_logged_and_the_markers_are(
    aws, make_store, agents_with, clock, stdout_records, debug_logging
):
    model, answer = take_planted_turn(aws, make_store, agents_with, clock, store_redacted=True)

    lines = dumped(stdout_records())
    assert EMAIL in model.seen[0] and answer is not None and EMAIL in answer  # the run saw and said it as written
    assert planted_in(stored(aws)) == []
    assert markers_in(stored(aws)) == ["[REDACTED:email]", "[REDACTED:card_number]", "[REDACTED:aws_access_key]"]
    assert lines and planted_in(lines) == []
    assert markers_in(lines) == ["[REDACTED:email]", "[REDACTED:card_number]"]  # the tool logged its arguments
    assert aws.objects()


def test_a_redacted_turn_is_replayed_for_its_message_id_and_later_turns_see_the_redacted_history(
    aws, make_store, agents_with, clock
):
    model = PlantedModel()
    store = make_store()
    sessions = SessionAgent(store=store, agents=agents_with(model, definition=DEFINITION), store_redacted=True, clock=clock)
    session = store.create(owner="user-1")
    sessions.take_turn(session.session_id, owner="user-1", message=MESSAGE, message_id="m-1")

    again = sessions.take_turn(session.session_id, owner="user-1", message=MESSAGE, message_id="m-1")
    sessions.take_turn(session.session_id, owner="user-1", message="And the second card?", message_id="m-2")

    second_turn_first_call = model.seen[2]
    assert again.replayed and len(model.seen) == 4
    assert EMAIL not in second_turn_first_call and "[REDACTED:email]" in second_turn_first_call


def test_without_store_redacted_the_history_keeps_the_planted_values(aws, make_store, agents_with, clock):
    take_planted_turn(aws, make_store, agents_with, clock, store_redacted=False)

    assert aws.objects()
    assert sorted(planted_in(stored(aws))) == sorted(["ana.lopez@example.com", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE"])


def test_with_store_redacted_each_in_flight_checkpoint_of_a_turn_redacts_only_the_messages_no_earlier_one_stored(
    aws, make_store, agents_with, clock, monkeypatch
):
    # given a session agent that stores redacted, a tool with side effects (its turn is checkpointed in flight before
    # and after it runs), and spies on the redaction of each text and on the in-flight saves
    store = make_store()
    sessions = SessionAgent(
        store=store, agents=agents_with(PlantedModel(), definition=DEFINITION), store_redacted=True, clock=clock
    )
    session = store.create(owner="user-1")
    redacted = spy_on_redaction(monkeypatch)
    slots: list[str] = []
    save_in_flight = store.save_in_flight
    monkeypatch.setattr(
        store, "save_in_flight", lambda window, slot, **kw: slots.append(slot.checkpoint) or save_in_flight(window, slot, **kw)
    )

    # when a turn with a message id (so it is checkpointed in flight) calls the tool and answers
    sessions.take_turn(session.session_id, owner="user-1", message=MESSAGE, message_id="m-1")

    # then the user's message was redacted twice in all: once for the in-flight slot however often it was saved,
    # once for the stored turn; every slot holds the markers
    assert len(slots) >= 2
    assert redacted.count(MESSAGE) == 2
    assert all(EMAIL not in slot and "[REDACTED:email]" in slot for slot in slots)
