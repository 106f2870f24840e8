"""POST /tasks/{id}/feedback through the Lambda handler: stored with the task, read back, emitted as EMF, owner only."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

MALLORY = {"userArn": "arn:aws:sts::123456789012:assumed-role/agentrail-partner/mallory"}


@pytest.fixture
def api(task_handler):
    return task_handler("tasks").handler


@pytest.fixture
def task_id(api, api_event, call) -> str:
    return call(api, api_event("submit")).body["task_id"]


def test_thumbs_up_is_stored_with_the_task_read_back_with_it_and_emitted_as_feedback_up(
    aws, api, api_event, call, task_id, stdout_records, feedback_records
):
    stdout_records()

    reply = call(api, api_event("give-feedback", task_id=task_id, body={"thumbs": "up", "comment": "Spot on."}))

    assert reply.status == 201, reply.body
    assert (reply.body["task_id"], reply.body["feedback"]["thumbs"], reply.body["feedback"]["comment"]) == (
        task_id,
        "up",
        "Spot on.",
    )
    assert '"thumbs":"up"' in aws.task_item(task_id)["feedback_json"]["S"]
    read = call(api, api_event("get-task", task_id=task_id)).body
    assert (read["feedback"]["thumbs"], read["feedback"]["score"], read["feedback"]["comment"]) == ("up", None, "Spot on.")
    [emitted] = feedback_records()
    assert emitted["Feedback_up"] == [1.0]
    assert emitted["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "agent"]]
    assert emitted["agent_version"] == reply.headers["X-Agent-Version"]  # a property, as on every agent metric
    assert "Spot on." not in str(emitted)


def test_a_score_is_emitted_as_feedback_score(api, api_event, call, task_id, stdout_records, feedback_records):
    stdout_records()

    reply = call(api, api_event("give-feedback", task_id=task_id, body={"score": 2}))

    assert (reply.status, reply.body["feedback"]["score"]) == (201, 2)
    [emitted] = feedback_records()
    assert emitted["FeedbackScore"] == [2.0]


def test_a_task_without_feedback_reads_back_feedback_null(api, api_event, call, task_id):
    reply = call(api, api_event("get-task", task_id=task_id))

    assert reply.body["feedback"] is None


def test_a_second_feedback_on_the_same_task_is_409_and_the_first_stands(
    aws, api, api_event, call, task_id, stdout_records, feedback_records
):
    call(api, api_event("give-feedback", task_id=task_id, body={"score": 5}))
    stdout_records()

    again = call(api, api_event("give-feedback", task_id=task_id, body={"thumbs": "down"}))

    assert (again.status, again.body["error"]) == (409, "feedback_already_given")
    assert call(api, api_event("get-task", task_id=task_id)).body["feedback"]["score"] == 5
    assert feedback_records() == []


@pytest.mark.parametrize(
    "body",
    [
        {"score": 0},
        {"score": 6},
        {"score": "five"},
        {"score": "4"},
        {"score": 4, "thumbs": "up"},
        {},
        {"thumbs": None},
        {"score": 4, "turn": 1},
        {"score": 4, "comment": "x" * 2001},
    ],
)
def test_a_bad_feedback_body_is_400_invalid_request_and_nothing_is_stored(
    aws, api, api_event, call, task_id, stdout_records, body, feedback_records
):
    stdout_records()

    reply = call(api, api_event("give-feedback", task_id=task_id, body=body))

    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert "feedback_json" not in aws.task_item(task_id)
    assert feedback_records() == []


def test_feedback_on_another_callers_task_is_the_same_404_as_a_missing_one_and_nothing_is_stored(
    aws, api, api_event, call, task_id, stdout_records, feedback_records
):
    stdout_records()

    theirs = call(api, api_event("give-feedback", task_id=task_id, caller=MALLORY))
    missing = call(api, api_event("give-feedback", task_id="0" * 32))

    assert (theirs.status, theirs.body["error"]) == (404, "task_not_found")
    assert (theirs.body["error"], theirs.body["message"]) == (missing.body["error"], missing.body["message"])
    assert "feedback_json" not in aws.task_item(task_id)
    assert feedback_records() == []
