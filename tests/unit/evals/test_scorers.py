"""Every scorer, passing and failing, on observations built by hand."""

from __future__ import annotations

import pytest

from agentrail_runtime.evals import DEFAULT_THRESHOLDS, Expectations, LocalJudge, Observation, ObservedToolCall, score_case
from agentrail_runtime.evals.scorers import matches


def observe(answer: str | None = "", **fields) -> Observation:
    return Observation(answer=answer, status=fields.pop("status", "completed"), steps=fields.pop("steps", 2), **fields)


def scores(expect: dict, observation: Observation, **thresholds: float) -> dict[str, tuple[float, bool, bool]]:
    results = score_case(
        Expectations.model_validate(expect),
        observation,
        prompt="the request",
        thresholds={**DEFAULT_THRESHOLDS, **thresholds},
        judge=LocalJudge(),
    )
    return {s.scorer: (s.score, s.passed, s.skipped) for s in results}


ORDER_CALL = ObservedToolCall(name="lookup_order", arguments={"order_id": "A-1001", "verbose": True}, outcome="success")


@pytest.mark.parametrize(
    ("expect", "observation", "expected"),
    [
        ({"exact": "42"}, observe(" 42\n"), (1.0, True, False)),
        ({"exact": "42"}, observe("42."), (0.0, False, False)),
        ({"contains": "ups"}, observe("Shipped with UPS."), (1.0, True, False)),
        ({"contains": ["UPS", "DHL"]}, observe("Shipped with UPS."), (0.5, False, False)),
        ({"regex": r"\b\d{4}-\d{2}-\d{2}\b"}, observe("ETA 2026-12-02"), (1.0, True, False)),
        ({"regex": r"\b\d{4}-\d{2}-\d{2}\b"}, observe("ETA soon"), (0.0, False, False)),
        ({"json_schema": {"type": "object", "required": ["total"]}}, observe('{"total": 3}'), (1.0, True, False)),
        ({"json_schema": {"type": "object", "required": ["total"]}}, observe('```json\n{"total": 3}\n```'), (1.0, True, False)),
        ({"json_schema": {"type": "object", "required": ["total"]}}, observe('{"sum": 3}'), (0.0, False, False)),
        ({"json_schema": {"type": "object"}}, observe("not json"), (0.0, False, False)),
        ({"status": "awaiting_approval"}, observe(None, status="awaiting_approval"), (1.0, True, False)),
        ({"status": "completed"}, observe(None, status="max_steps_exceeded"), (0.0, False, False)),
        ({"max_steps": 2}, observe(steps=2), (1.0, True, False)),
        ({"max_steps": 2}, observe(steps=3), (0.0, False, False)),
        ({"max_cost_usd": 0.01}, observe(cost_usd=0.002), (1.0, True, False)),
        ({"max_cost_usd": 0.01}, observe(cost_usd=0.02), (0.0, False, False)),
        ({"max_cost_usd": 0.01}, observe(cost_usd=None), (0.0, True, True)),
    ],
    ids=lambda value: str(value)[:60] if isinstance(value, dict) else None,
)
def test_each_deterministic_scorer_passes_what_it_expects_and_fails_what_it_does_not(expect, observation, expected):
    (name,) = expect

    assert scores(expect, observation)[name] == expected


def test_tool_called_passes_when_the_named_tool_ran_with_arguments_containing_the_expected_ones():
    observation = observe(tool_calls=[ORDER_CALL])

    assert scores({"tool_called": {"name": "lookup_order", "arguments": {"order_id": "A-1001"}}}, observation)["tool_called"] == (
        1.0,
        True,
        False,
    )


def test_tool_called_fails_on_other_arguments_or_another_tool_and_says_what_was_called():
    observation = observe(tool_calls=[ORDER_CALL])
    expect = Expectations.model_validate(
        {"tool_called": [{"name": "lookup_order", "arguments": {"order_id": "A-1002"}}, {"name": "issue_refund"}]}
    )

    (score,) = score_case(expect, observation, prompt="", thresholds=DEFAULT_THRESHOLDS, judge=LocalJudge())

    assert (score.score, score.passed) == (0.0, False)
    assert "lookup_order was called with" in score.detail and "issue_refund was not called" in score.detail


def test_tool_called_scores_the_share_of_expected_calls_made():
    observation = observe(tool_calls=[ORDER_CALL])
    expect = {"tool_called": [{"name": "lookup_order"}, {"name": "issue_refund"}]}

    assert scores(expect, observation, tool_called=0.5)["tool_called"] == (0.5, True, False)


def test_tool_called_with_arguments_is_skipped_when_the_target_reports_only_tool_names():
    observation = observe(tool_calls=[ObservedToolCall(name="lookup_order", arguments=None)])

    assert scores({"tool_called": {"name": "lookup_order", "arguments": {"order_id": "A-1001"}}}, observation)["tool_called"] == (
        0.0,
        True,
        True,
    )


@pytest.mark.parametrize(
    ("expected", "actual", "result"),
    [
        ({"a": 1}, {"a": "1", "b": 2}, True),
        ({"a": {"b": "x"}}, {"a": {"b": "x", "c": 1}}, True),
        ({"a": {"$regex": "^A-\\d+$"}}, {"a": "A-1001"}, True),
        ({"a": {"$regex": "^A-\\d+$"}}, {"a": "B-1"}, False),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}, False),
        ({"a": True}, {"a": 1}, False),
        ({"a": 1}, {}, False),
        ({"a": 1.5}, {"a": "one and a half"}, False),
    ],
)
def test_arguments_match_as_subsets_with_numbers_equal_to_their_strings_and_regexes_on_strings(expected, actual, result):
    assert matches(expected, actual) is result


def test_a_case_threshold_lower_than_the_default_lets_a_partial_score_pass():
    observation = observe("Shipped with UPS.")

    assert scores({"contains": ["UPS", "DHL"]}, observation, contains=0.5)["contains"] == (0.5, True, False)
