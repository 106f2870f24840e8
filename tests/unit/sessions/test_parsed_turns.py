"""Reading a window without AWS: turns parsed once per process and shared, the item's attributes beside the payload,
the memo's bounds, and compact history built once per exchange."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from agentrail_runtime.models.base import Message
from agentrail_runtime.sessions.dynamodb import DynamoDBSessionStore, ParsedTurns, turn_key
from agentrail_runtime.sessions.store import SessionInfo, StateDocument, Turn, Window, forget_compact_history

SESSION = "a" * 32
OWNER = "iam:ada"
NOW = 1_795_860_000


def payload(said: str, answer: str = "Noted.", **extra: Any) -> str:
    messages = [Message.user(said).model_dump(mode="json"), Message.assistant(answer).model_dump(mode="json")]
    return json.dumps({"messages": messages, "answer": answer, "status": "completed", "model": "local", **extra})


def turn_item(number: int, body: str, **attributes: dict[str, str]) -> dict[str, Any]:
    return {
        "pk": {"S": SESSION},
        "sk": {"S": turn_key(number)},
        "created_at": {"N": str(NOW + number)},
        "tokens": {"N": "12"},
        "payload": {"S": body},
        **attributes,
    }


def meta_item(turns: int) -> dict[str, Any]:
    return {
        "pk": {"S": SESSION},
        "sk": {"S": "~meta"},
        "owner": {"S": OWNER},
        "created_at": {"N": str(NOW)},
        "updated_at": {"N": str(NOW)},
        "expires_at": {"N": str(NOW + 86_400)},
        "turns": {"N": str(turns)},
    }


class WindowQuery:
    """The window Query's answer, newest first, as the store's DynamoDB client returns it; ``items`` can be changed."""

    def __init__(self, turns: int) -> None:
        self.items = [meta_item(turns)] + [turn_item(n, payload(f"message {n}")) for n in range(turns, 0, -1)]

    def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": [dict(item) for item in self.items]}


def store_on(query: WindowQuery, *, window_turns: int = 20) -> DynamoDBSessionStore:
    return DynamoDBSessionStore("sessions", client=query, clock=lambda: float(NOW), window_turns=window_turns)


def test_a_turn_read_again_is_the_same_object_and_is_not_parsed_again():
    store = store_on(WindowQuery(turns=3))
    first = store.load_window(SESSION, owner=OWNER)

    second = store.load_window(SESSION, owner=OWNER)

    assert [t.number for t in second.turns] == [1, 2, 3]
    assert all(again is before for again, before in zip(second.turns, first.turns, strict=True))
    assert len(store.parsed) == 3


def test_feedback_given_after_a_read_is_in_the_next_read():
    query = WindowQuery(turns=2)
    store = store_on(query)
    before = store.load_window(SESSION, owner=OWNER).turns[-1]
    query.items[1]["feedback"] = {"S": json.dumps({"thumbs": "up", "given_at": NOW})}

    after = store.load_window(SESSION, owner=OWNER).turns[-1]

    assert before.feedback is None
    assert after.feedback is not None and after.feedback.thumbs == "up"
    assert after.messages == before.messages


def test_the_items_attributes_win_over_keys_of_the_same_name_in_the_payload():
    query = WindowQuery(turns=1)
    query.items[1] = turn_item(1, payload("hello", number=99, tokens=5000, message_id="forged"), message_id={"S": "m-1"})

    (turn,) = store_on(query).load_window(SESSION, owner=OWNER).turns

    assert (turn.number, turn.tokens, turn.message_id, turn.created_at) == (1, 12, "m-1", NOW + 1)


def test_a_payload_without_the_turns_fields_is_refused_by_validation_not_by_the_json_parser():
    query = WindowQuery(turns=1)
    query.items[1] = turn_item(1, "{ }")

    with pytest.raises(ValidationError, match="messages"):
        store_on(query).load_window(SESSION, owner=OWNER)


def test_a_payload_that_is_not_an_object_is_refused():
    query = WindowQuery(turns=1)
    query.items[1] = turn_item(1, "[]")

    with pytest.raises(ValueError, match="not a JSON object"):
        store_on(query).load_window(SESSION, owner=OWNER)


def test_turns_the_query_returns_past_the_window_are_not_parsed():
    query = WindowQuery(turns=5)
    store = store_on(query, window_turns=3)

    window = store.load_window(SESSION, owner=OWNER)

    assert [t.number for t in window.turns] == [3, 4, 5]
    assert len(store.parsed) == 3


def test_a_turn_cannot_be_changed_once_read():
    (turn,) = store_on(WindowQuery(turns=1)).load_window(SESSION, owner=OWNER).turns

    with pytest.raises(ValidationError, match="frozen"):
        turn.answer = "changed"  # type: ignore[misc]


# -- the memo's bounds -------------------------------------------------------------------------


def parsed(number: int) -> Turn:
    return Turn(number=number, created_at=NOW, messages=[Message.user("hi")], status="completed", model="local")


def test_the_memo_drops_its_oldest_turns_past_its_count():
    memo = ParsedTurns(max_turns=2, max_chars=1_000)

    for n in (1, 2, 3):
        memo.put((SESSION, str(n)), parsed(n), 10)

    assert memo.get((SESSION, "1")) is None
    assert [memo.get((SESSION, str(n))).number for n in (2, 3)] == [2, 3]  # type: ignore[union-attr]


def test_the_memo_drops_its_oldest_turns_past_its_characters_and_never_keeps_a_larger_payload():
    memo = ParsedTurns(max_turns=10, max_chars=100)
    memo.put((SESSION, "1"), parsed(1), 60)
    memo.put((SESSION, "2"), parsed(2), 60)

    memo.put((SESSION, "3"), parsed(3), 101)

    assert memo.get((SESSION, "1")) is None
    assert memo.get((SESSION, "2")) is not None
    assert memo.get((SESSION, "3")) is None


def test_forgetting_a_session_drops_its_turns_only():
    memo = ParsedTurns(max_turns=10, max_chars=1_000)
    memo.put((SESSION, "1"), parsed(1), 10)
    memo.put(("b" * 32, "1"), parsed(1), 10)

    memo.forget(SESSION)

    assert memo.get((SESSION, "1")) is None
    assert memo.get(("b" * 32, "1")) is not None


# -- compact history ---------------------------------------------------------------------------


def window(*answers: str) -> Window:
    info = SessionInfo(session_id=SESSION, owner=OWNER, created_at=1, updated_at=1, expires_at=10**10, turns=len(answers))
    turns = [
        Turn(
            number=n,
            created_at=NOW,
            messages=[Message.user(f"question {n}"), Message.assistant(a)],
            answer=a,
            status="completed",
            model="local",
        )
        for n, a in enumerate(answers, start=1)
    ]
    return Window(session=info, state=StateDocument(), turns=turns)


def test_the_next_window_shows_the_same_exchange_as_the_same_messages():
    first = window("one", "two").history()

    second = window("one", "two", "three").history()

    assert [m.text for m in second] == ["question 1", "one", "question 2", "two", "question 3", "three"]
    assert all(again is before for again, before in zip(second[:4], first, strict=True))


def test_forgotten_compact_history_is_built_again_equal():
    before = window("one").history()

    forget_compact_history()
    after = window("one").history()

    assert after == before
    assert all(again is not earlier for again, earlier in zip(after, before, strict=True))
