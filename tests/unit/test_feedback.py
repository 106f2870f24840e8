"""User feedback: the request models (exactly one of score and thumbs) and the EMF line.

(API Gateway's models give the same verdicts: tests/infra/test_request_schema.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from pydantic import ValidationError

from agentrail_runtime.api.sessions import SessionFeedbackRequest
from agentrail_runtime.api.tasks import TaskFeedbackRequest
from agentrail_runtime.metering import Feedback, emit_feedback_metrics

VALID: list[dict[str, Any]] = [
    {"score": 1},
    {"score": 5, "comment": "Great."},
    {"thumbs": "up"},
    {"thumbs": "down", "comment": None},
]
INVALID: list[Any] = [
    {"score": 0},
    {"score": 6},
    {"score": "3"},
    {"score": 3.5},
    {"score": True},
    {"score": None},
    {"thumbs": None},
    {"thumbs": "Up"},
    {"score": 3, "thumbs": "up"},
    {},
    {"comment": "only a comment"},
    {"score": 3, "rating": 3},
    {"score": 3, "comment": "x" * 2001},
    [],
    "up",
]


@pytest.mark.parametrize("body", VALID)
def test_a_score_or_thumbs_with_an_optional_comment_is_accepted(body) -> None:
    for model in (SessionFeedbackRequest, TaskFeedbackRequest):
        request = model.model_validate_json(json.dumps(body))
        given = {key: value for key, value in body.items() if value is not None}
        assert request.feedback(given_at=7).model_dump(exclude_none=True) == {**given, "given_at": 7}


@pytest.mark.parametrize("body", INVALID)
def test_a_bad_rating_is_refused(body) -> None:
    for model in (SessionFeedbackRequest, TaskFeedbackRequest):
        with pytest.raises(ValidationError):
            model.model_validate_json(json.dumps(body))


def test_both_score_and_thumbs_or_neither_is_refused_with_a_message_naming_the_fields() -> None:
    for body in ({"score": 3, "thumbs": "up"}, {}):
        with pytest.raises(ValidationError, match=r"give exactly one of score \(1 to 5\) and thumbs \(up or down\)"):
            TaskFeedbackRequest.model_validate(body)


def test_a_session_feedback_names_its_turn_from_one_and_defaults_to_the_last() -> None:
    assert SessionFeedbackRequest.model_validate({"score": 3}).turn is None
    assert SessionFeedbackRequest.model_validate({"score": 3, "turn": 2}).turn == 2
    for turn in (0, -1, "2", 2.0):
        with pytest.raises(ValidationError):
            SessionFeedbackRequest.model_validate_json(json.dumps({"score": 3, "turn": turn}))
    with pytest.raises(ValidationError):
        TaskFeedbackRequest.model_validate({"score": 3, "turn": 1})


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    metrics = Metrics(namespace="AgentrailUnitTests", service="checkout")
    metrics.clear_metrics()
    yield metrics
    metrics.clear_metrics()


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_a_score_is_one_feedback_score_line_with_service_and_agent_dimensions_and_no_comment(metrics, capsys) -> None:
    emit_feedback_metrics(metrics, Feedback(score=4, comment="private words", given_at=1), agent_name="support")

    [blob] = emitted(capsys)
    assert blob["FeedbackScore"] == [4.0]
    assert (blob["service"], blob["agent"]) == ("checkout", "support")
    assert blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "agent"]]
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AgentrailUnitTests"
    assert "private words" not in json.dumps(blob)


@pytest.mark.parametrize("thumbs", ["up", "down"])
def test_thumbs_is_one_count_of_feedback_up_or_down(metrics, capsys, thumbs) -> None:
    emit_feedback_metrics(metrics, Feedback(thumbs=thumbs, given_at=1), agent_name="support")

    [blob] = emitted(capsys)
    [metric] = blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    assert (metric["Name"], metric["Unit"], blob[f"Feedback_{thumbs}"]) == (f"Feedback_{thumbs}", "Count", [1.0])
