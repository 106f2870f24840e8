"""The WebSocket frames, without AWS: what ``parse_frame`` takes, and how it refuses the rest without echoing them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentrail_runtime.agent.results import MAX_MESSAGE_CHARS
from agentrail_runtime.streams.frames import ERROR_CODES, FrameRejected, Resume, SendMessage, parse_frame

SESSION = "3f9c2a7e5b1d4c8e9a0b6d2f7e4c1a95"
#: A value no error may repeat: if it shows up in a reply, the reply echoed the client's input.
PLANTED = "planted-7c1e-do-not-echo"


def rejected(body: str | None) -> FrameRejected:
    with pytest.raises(FrameRejected) as caught:
        parse_frame(body)
    return caught.value


def send_message(**fields: Any) -> str:
    return json.dumps({"action": "sendMessage", "session_id": SESSION, "text": "hello", **fields})


def resume(**fields: Any) -> str:
    return json.dumps({"action": "resume", "session_id": SESSION, **fields})


def test_a_send_message_frame_is_parsed_with_its_text_stripped_and_its_optional_fields():
    # given / when
    frame = parse_frame(send_message(text="  what is 2 + 2?  ", model="local", message_id="m-1"))
    # then
    assert frame == SendMessage(action="sendMessage", session_id=SESSION, text="what is 2 + 2?", model="local", message_id="m-1")


def test_a_send_message_frame_without_model_or_message_id_leaves_them_unset():
    frame = parse_frame(send_message())

    assert isinstance(frame, SendMessage)
    assert (frame.model, frame.message_id) == (None, None)


def test_a_send_message_frame_of_exactly_the_longest_text_is_taken():
    frame = parse_frame(send_message(text="x" * MAX_MESSAGE_CHARS))

    assert isinstance(frame, SendMessage) and len(frame.text) == MAX_MESSAGE_CHARS


def test_a_resume_frame_is_parsed_and_its_last_event_id_defaults_to_zero():
    assert parse_frame(resume(last_event_id=41)) == Resume(action="resume", session_id=SESSION, last_event_id=41)
    assert parse_frame(resume()) == Resume(action="resume", session_id=SESSION, last_event_id=0)


@pytest.mark.parametrize(
    "body",
    [None, "", "not json", "{", f'{{"action": "sendMessage", "text": "{PLANTED}"'],
    ids=["no-body", "empty", "text", "truncated", "truncated-with-text"],
)
def test_a_body_that_is_not_json_is_a_malformed_frame(body):
    error = rejected(body).error

    assert error.code == "malformed_frame"
    assert error.message == ERROR_CODES["malformed_frame"]
    assert PLANTED not in error.wire()


@pytest.mark.parametrize(
    "body",
    ["[]", f'["{PLANTED}"]', '"sendMessage"', "42", "null", "true"],
    ids=["empty-list", "list", "string", "number", "null", "bool"],
)
def test_json_that_is_not_an_object_is_a_malformed_frame(body):
    error = rejected(body).error

    assert error.code == "malformed_frame"
    assert PLANTED not in error.wire()


@pytest.mark.parametrize(
    "document",
    [{"session_id": SESSION, "text": PLANTED}, {"action": None, "text": PLANTED}, {"action": 7}, {"action": ["resume"]}],
    ids=["missing", "null", "number", "list"],
)
def test_an_object_without_a_string_action_is_a_malformed_frame(document):
    error = rejected(json.dumps(document)).error

    assert error.code == "malformed_frame"
    assert PLANTED not in error.wire()


@pytest.mark.parametrize("action", [PLANTED, "SendMessage", "sendmessage", "$default", ""])
def test_an_action_other_than_send_message_or_resume_is_an_unknown_action_that_does_not_repeat_it(action):
    error = rejected(json.dumps({"action": action, "session_id": SESSION})).error

    assert error.code == "unknown_action"
    assert error.fields is None
    assert action == "" or action not in error.wire()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (send_message(session_id=f"../{PLANTED}"), ["session_id"]),
        (send_message(session_id=SESSION.upper()), ["session_id"]),
        (send_message(session_id=SESSION + "0"), ["session_id"]),
        (json.dumps({"action": "sendMessage", "text": PLANTED}), ["session_id"]),
        (send_message(text=""), ["text"]),
        (send_message(text="   \n\t "), ["text"]),
        (send_message(text=PLANTED + "x" * MAX_MESSAGE_CHARS), ["text"]),
        (send_message(text=7), ["text"]),
        (json.dumps({"action": "sendMessage", "session_id": SESSION}), ["text"]),
        (send_message(model="  "), ["model"]),
        (send_message(message_id=f"has space {PLANTED}"), ["message_id"]),
        (send_message(message_id="m" * 129), ["message_id"]),
        (send_message(secret=PLANTED), ["secret"]),
        (send_message(session_id=PLANTED, text="", extra=1), ["extra", "session_id", "text"]),
        (resume(last_event_id=-1), ["last_event_id"]),
        (resume(last_event_id=1.5), ["last_event_id"]),
        (resume(last_event_id=2.0), ["last_event_id"]),
        (resume(last_event_id="3"), ["last_event_id"]),
        (resume(last_event_id=True), ["last_event_id"]),
        (resume(session_id=PLANTED), ["session_id"]),
        (resume(text=PLANTED), ["text"]),
    ],
    ids=[
        "path-in-session-id",
        "upper-case-session-id",
        "long-session-id",
        "missing-session-id",
        "empty-text",
        "blank-text",
        "text-over-the-limit",
        "text-not-a-string",
        "missing-text",
        "blank-model",
        "message-id-with-spaces",
        "message-id-too-long",
        "extra-field",
        "three-wrong-fields",
        "negative-last-event-id",
        "fractional-last-event-id",
        "float-last-event-id",
        "string-last-event-id",
        "boolean-last-event-id",
        "resume-bad-session-id",
        "resume-extra-field",
    ],
)
def test_a_frame_with_invalid_fields_is_refused_naming_the_fields_and_never_their_values(body, fields):
    # given a frame of a known action whose fields are wrong
    # when it is parsed
    error = rejected(body).error
    # then the error names the fields, sorted, and repeats none of the input
    assert error.code == "invalid_frame"
    assert error.fields == fields
    wire = json.loads(error.wire())
    assert wire == {"type": "error", "code": "invalid_frame", "message": ERROR_CODES["invalid_frame"], "fields": fields}
    assert PLANTED not in error.wire()


def test_every_error_code_has_a_message_for_the_client():
    assert all(message.strip() for message in ERROR_CODES.values())
