"""Session history logic without AWS: the extractive summary, the history window, cursors and principals."""

from __future__ import annotations

import base64
import json

import pytest

from agentrail_runtime.api.errors import principal_of
from agentrail_runtime.models.base import Message
from agentrail_runtime.sessions.dynamodb import decode_cursor, encode_cursor, turn_key
from agentrail_runtime.sessions.store import SessionInfo, StateDocument, Turn, Window, is_session_id, summarize_turns


def turn(number: int, said: str, answer: str | None = "Noted.") -> Turn:
    messages = [Message.user(said)] + ([Message.assistant(answer)] if answer else [])
    return Turn(
        number=number, created_at=1_795_860_000 + number, messages=messages, answer=answer, status="completed", model="local"
    )


# -- summarize_turns ---------------------------------------------------------------------------


def test_summary_keeps_what_the_user_said_in_each_dropped_turn_in_order():
    summary = summarize_turns(None, [turn(1, "My name is Ada"), turn(2, "My city is Lisbon")])

    assert summary == "- turn 1: the user said: My name is Ada\n- turn 2: the user said: My city is Lisbon"


def test_summary_appends_to_the_previous_summary():
    first = summarize_turns(None, [turn(1, "My name is Ada")])

    second = summarize_turns(first, [turn(2, "My city is Lisbon")])

    assert second.splitlines() == ["- turn 1: the user said: My name is Ada", "- turn 2: the user said: My city is Lisbon"]


def test_summary_drops_the_oldest_lines_when_it_outgrows_its_limit():
    dropped = [turn(n, f"My fact number {n} is {'x' * 60}") for n in range(1, 11)]

    summary = summarize_turns(None, dropped, max_chars=300)

    assert len(summary) <= 300
    assert summary.splitlines()[-1].startswith("- turn 10:")
    assert "turn 1:" not in summary


def test_summary_bounds_each_user_message():
    summary = summarize_turns(None, [turn(1, "y" * 5000)])

    assert summary == "- turn 1: the user said: " + "y" * 240


def test_summary_of_nothing_is_the_previous_summary():
    assert summarize_turns("- turn 1: the user said: hi", []) == "- turn 1: the user said: hi"
    assert summarize_turns(None, []) == ""


# -- the window as model history ---------------------------------------------------------------


def window(turns: list[Turn], summary: str | None = None) -> Window:
    info = SessionInfo(session_id="a" * 32, owner="iam:x", created_at=1, updated_at=1, expires_at=10**10, turns=len(turns))
    return Window(session=info, state=StateDocument(), summary=summary, turns=turns)


def test_compact_history_is_each_turns_question_and_answer_after_the_summary():
    history = window([turn(3, "What is 2 + 2?", "4.")], summary="- turn 1: the user said: My name is Ada").history()

    assert [(m.role, m.text) for m in history] == [
        ("user", "[Summary of our earlier conversation]\n- turn 1: the user said: My name is Ada"),
        ("assistant", "Understood."),
        ("user", "What is 2 + 2?"),
        ("assistant", "4."),
    ]


def test_a_turn_without_an_answer_is_replayed_in_full():
    unanswered = turn(1, "Calculate 1 + 1", answer=None)

    assert window([unanswered]).history() == unanswered.messages


# -- cursors -----------------------------------------------------------------------------------


def test_a_cursor_round_trips_the_turn_number():
    assert decode_cursor(encode_cursor(0)) == 0
    assert decode_cursor(encode_cursor(1234)) == 1234


def test_a_cursor_is_url_safe_without_padding():
    cursor = encode_cursor(7)

    assert "=" not in cursor and "+" not in cursor and "/" not in cursor


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        "",
        _b64({"before": 3}),
        _b64({"after": "3"}),
        _b64({"after": -1}),
        _b64({"after": 2.5}),
        _b64([1, 2]),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
    ids=["words", "symbols", "empty", "wrong-key", "string", "negative", "float", "list", "not-utf8"],
)
def test_a_malformed_cursor_raises_value_error(cursor):
    with pytest.raises(ValueError, match="malformed cursor"):
        decode_cursor(cursor)


def test_turn_keys_sort_by_number_and_before_the_metadata_items():
    keys = [turn_key(n) for n in (1, 2, 10, 9_999_999_999)]

    assert keys == sorted(keys)
    assert keys[-1] < "~meta" < "~state" < "~summary"


def test_session_ids_are_32_lowercase_hex_characters():
    assert is_session_id("3f9c2a7e5b1d4c8e9a0b6d2f7e4c1a95")
    assert not is_session_id("3F9C2A7E5B1D4C8E9A0B6D2F7E4C1A95")
    assert not is_session_id("3f9c2a7e")
    assert not is_session_id("../../3f9c2a7e5b1d4c8e9a0b6d2f7e4c1a9")


# -- principal_of ------------------------------------------------------------------------------


def test_the_principal_is_the_iam_caller():
    context = {"identity": {"userArn": "arn:aws:iam::123456789012:user/alice", "apiKeyId": None}}

    assert principal_of(context) == "iam:arn:aws:iam::123456789012:user/alice"


@pytest.mark.parametrize(
    ("user_arn", "role"),
    [
        ("arn:aws:sts::123456789012:assumed-role/app/alice", "arn:aws:iam::123456789012:role/app"),
        ("arn:aws:sts::123456789012:assumed-role/app/mallory-posing-as-alice", "arn:aws:iam::123456789012:role/app"),
        (
            "arn:aws-cn:sts::123456789012:assumed-role/Approver-Finance/i-0abc",
            "arn:aws-cn:iam::123456789012:role/Approver-Finance",
        ),
        ("arn:aws:sts::123456789012:assumed-role/app/alice@example.com/extra", "arn:aws:iam::123456789012:role/app"),
    ],
    ids=["session", "a-session-name-the-caller-chose", "other-partition", "slash-in-session-name"],
)
def test_a_caller_that_assumed_a_role_is_the_role_whatever_session_name_it_chose(user_arn, role):
    # Given the request context API Gateway sends for a caller that assumed a role
    context = {"identity": {"userArn": user_arn, "apiKeyId": None}}

    # When the principal is read with the default identity, and with session identity
    by_role, by_session = principal_of(context), principal_of(context, iam_identity="session")

    # Then by default it is the role (the session name is the caller's choice), and the session only when asked
    assert (by_role, by_session) == (f"iam:{role}", f"iam:{user_arn}")


def test_the_principal_is_the_api_key_when_there_is_no_iam_caller():
    assert principal_of({"identity": {"userArn": None, "apiKeyId": "k3y1d"}}) == "apikey:k3y1d"


def test_a_cognito_subject_wins_over_the_iam_identity_of_the_request():
    context = {
        "authorizer": {"claims": {"sub": "8f2c1d4e-0000-4000-8000-000000000001", "email": "ada@example.com"}},
        "identity": {"userArn": "arn:aws:iam::123456789012:user/shared", "apiKeyId": "k3y1d"},
    }

    assert principal_of(context) == "cognito:8f2c1d4e-0000-4000-8000-000000000001"


def test_the_same_value_from_different_authorizers_is_a_different_principal():
    as_key = principal_of({"identity": {"apiKeyId": "same"}})
    as_user = principal_of({"authorizer": {"claims": {"sub": "same"}}})

    assert as_key != as_user


@pytest.mark.parametrize(
    "context",
    [{}, {"identity": None}, {"identity": {"userArn": None, "apiKeyId": None}}, {"authorizer": {"claims": {"sub": ""}}}],
    ids=["empty", "no-identity", "anonymous", "empty-sub"],
)
def test_an_anonymous_request_has_no_principal(context):
    assert principal_of(context) is None
