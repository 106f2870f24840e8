"""The sessions API keeps the error contract: no silent data change, no content type on a 204, SAM's own events."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_state_with_nan_or_infinity_is_refused_with_400_and_the_stored_state_is_unchanged(
    app, create_session, api_event, call, constant
):
    session_id = create_session(app, state={"budget": 10})
    before = call(app, api_event("get-session", session_id=session_id)).body["state"]

    reply = call(
        app,
        api_event("put-state", session_id=session_id, body=f'{{"data": {{"budget": {constant}}}, "expected_version": 1}}'),
    )

    assert (reply.status, reply.body["error"]) == (400, "invalid_json")
    assert call(app, api_event("get-session", session_id=session_id)).body["state"] == before


def test_a_state_nested_990_levels_deep_is_a_400_not_a_crash(app, create_session, api_event, call):
    session_id = create_session(app)
    deep = "[" * 990 + "]" * 990

    reply = call(app, api_event("put-state", session_id=session_id, body=f'{{"data": {{"x": {deep}}}, "expected_version": 1}}'))

    assert (reply.status, reply.body["error"]) == (400, "nesting_too_deep")


def test_an_erased_session_answers_204_with_neither_body_nor_content_type(app, create_session, api_event, call):
    session_id = create_session(app)

    reply = call(app, api_event("delete-session", session_id=session_id))

    assert (reply.status, reply.raw) == (204, "")
    assert "Content-Type" not in reply.headers
    assert reply.headers["X-Correlation-Id"] == reply.event["requestContext"]["requestId"]


def test_a_state_sent_as_text_plain_is_a_415(app, create_session, api_event, call):
    session_id = create_session(app)
    event = api_event("put-state", session_id=session_id, body={"data": {}, "expected_version": 1})
    event["headers"]["Content-Type"] = "text/plain"
    event["multiValueHeaders"]["Content-Type"] = ["text/plain"]

    reply = call(app, event)

    assert (reply.status, reply.body["error"]) == (415, "unsupported_media_type")


def test_the_sam_create_session_event_creates_a_session_for_its_signed_caller(app, load_event, call, owner):
    reply = call(app, load_event("sam/sessions/create-session.json"))

    assert reply.status == 201
    assert len(reply.body["session_id"]) == 32


def test_the_sam_create_session_event_without_a_caller_is_401(app, load_event, call):
    reply = call(app, load_event("sam/sessions/create-session-unsigned.json"))

    assert (reply.status, reply.body["error"]) == (401, "unauthenticated")


@pytest.mark.parametrize("body", ["[null, null]", '[{"state": {"a": 1}}]'])
def test_a_session_asked_for_with_a_json_array_body_is_refused_with_400(app, api_event, call, body):
    reply = call(app, api_event("create-session", body=body))

    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
