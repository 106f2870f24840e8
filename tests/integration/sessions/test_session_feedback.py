"""POST /sessions/{id}/feedback: stored with the turn, read back with the history, emitted as EMF, owner only."""

from __future__ import annotations

import pytest

from tests.integration.sessions.conftest import MALLORY

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def two_turns(app, create_session, send) -> str:
    session_id = create_session(app)
    for message in ("What is 2 + 2?", "And 3 + 3?"):
        assert send(app, session_id, message).status == 200
    return session_id


def test_feedback_without_a_turn_rates_the_last_turn_and_is_read_back_with_the_history_and_emitted(
    app, two_turns, api_event, call, aws, stdout_records, feedback_records
):
    stdout_records()

    reply = call(app, api_event("give-feedback", session_id=two_turns))

    assert reply.status == 201, reply.body
    assert (reply.body["turn"], reply.body["feedback"]["score"], reply.body["feedback"]["comment"]) == (
        2,
        4,
        "Right answer, a bit slow.",
    )
    history = call(app, api_event("get-session", session_id=two_turns)).body["history"]
    assert [turn["feedback"] and turn["feedback"]["score"] for turn in history] == [None, 4]
    [emitted] = feedback_records()
    assert emitted["FeedbackScore"] == [4.0]
    assert emitted["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "agent"]]
    assert emitted["agent_version"] == reply.headers["X-Agent-Version"]  # a property, as on every agent metric
    assert "comment" not in emitted and "Right answer" not in str(emitted)


def test_thumbs_on_a_named_turn_is_stored_on_that_turn_item_and_emitted_as_feedback_down(
    app, two_turns, api_event, call, aws, stdout_records, feedback_records
):
    stdout_records()

    reply = call(app, api_event("give-feedback", session_id=two_turns, body={"thumbs": "down", "turn": 1}))

    assert (reply.status, reply.body["turn"], reply.body["feedback"]["thumbs"]) == (201, 1, "down")
    [first] = [item for item in aws.items(two_turns) if item["sk"]["S"] == "turn#0000000001"]
    assert '"thumbs":"down"' in first["feedback"]["S"]
    [emitted] = feedback_records()
    assert emitted["Feedback_down"] == [1.0]


def test_a_second_feedback_on_the_same_turn_is_409_and_the_first_stands(
    app, two_turns, api_event, call, stdout_records, feedback_records
):
    call(app, api_event("give-feedback", session_id=two_turns, body={"score": 5}))
    stdout_records()

    again = call(app, api_event("give-feedback", session_id=two_turns, body={"score": 1}))

    assert (again.status, again.body["error"]) == (409, "feedback_already_given")
    history = call(app, api_event("get-session", session_id=two_turns)).body["history"]
    assert history[-1]["feedback"]["score"] == 5
    assert feedback_records() == []


@pytest.mark.parametrize("turn", [3, 0])
def test_feedback_on_a_turn_the_session_does_not_have_is_refused_and_nothing_is_stored(
    app, two_turns, api_event, call, aws, turn
):
    reply = call(app, api_event("give-feedback", session_id=two_turns, body={"score": 3, "turn": turn}))

    assert reply.status == (404 if turn else 400)
    assert reply.body["error"] == ("turn_not_found" if turn else "invalid_request")
    assert not any("feedback" in item for item in aws.items(two_turns))


def test_feedback_on_a_session_without_turns_is_404_turn_not_found(app, create_session, api_event, call):
    session_id = create_session(app)

    reply = call(app, api_event("give-feedback", session_id=session_id, body={"thumbs": "up"}))

    assert (reply.status, reply.body["error"]) == (404, "turn_not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"score": 0},
        {"score": 6},
        {"score": "4"},
        {"score": 4.0},
        {"score": True},
        {"score": None},
        {"thumbs": "sideways"},
        {"score": 4, "thumbs": "up"},
        {},
        {"comment": "no rating"},
        {"score": 4, "stars": 5},
        {"score": 4, "comment": "x" * 2001},
    ],
)
def test_a_bad_feedback_body_is_400_invalid_request_and_nothing_is_stored(
    app, two_turns, api_event, call, aws, stdout_records, body, feedback_records
):
    stdout_records()

    reply = call(app, api_event("give-feedback", session_id=two_turns, body=body))

    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert not any("feedback" in item for item in aws.items(two_turns))
    assert feedback_records() == []


def test_feedback_on_another_callers_session_is_the_same_404_as_a_missing_one(
    app, two_turns, api_event, call, aws, stdout_records, feedback_records
):
    stdout_records()

    theirs = call(app, api_event("give-feedback", session_id=two_turns, caller=MALLORY))
    missing = call(app, api_event("give-feedback", session_id="0" * 32))

    assert (theirs.status, theirs.body["error"], theirs.body["message"]) == (
        missing.status,
        missing.body["error"],
        missing.body["message"],
    )
    assert (theirs.status, theirs.body["error"]) == (404, "session_not_found")
    assert not any("feedback" in item for item in aws.items(two_turns))
    assert feedback_records() == []
