"""What each target reports, as the scorers read it: an API's run, and a task of the tasks API."""

from __future__ import annotations

import pytest

from agentrail_runtime.evals import DEFAULT_THRESHOLDS, Expectations, LocalJudge, Observation, score_case

RUN = {
    "status": "completed",
    "answer": "calculator returned 42.",
    "model": "local",
    "steps": 2,
    "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
    "cost_usd": 0.0,
    "tool_calls": [{"step": 1, "tool": "calculator", "outcome": "success", "latency_ms": 0.1}],
}


def test_an_api_run_reports_tool_names_without_their_arguments():
    observation = Observation.of_api(RUN)

    assert (observation.answer, observation.status, observation.steps, observation.cost_usd) == (
        RUN["answer"],
        "completed",
        2,
        0.0,
    )
    assert [(c.name, c.arguments, c.outcome) for c in observation.tool_calls or []] == [("calculator", None, "success")]


@pytest.mark.parametrize(
    ("task", "status"),
    [
        ({"status": "succeeded", "result": {"answer": "a", "agent_status": "completed", "tool_calls": []}}, "completed"),
        ({"status": "succeeded", "result": {"answer": "a", "agent_status": "answer"}}, "completed"),
        ({"status": "waiting_approval", "result": None}, "awaiting_approval"),
        ({"status": "failed", "result": {"answer": None, "agent_status": "routing_loop"}}, "failed"),
        ({"status": "budget_exceeded", "result": None}, "budget_exceeded"),
    ],
)
def test_a_task_reads_as_its_agents_run_status_or_else_its_task_status(task, status):
    assert Observation.of_task({**task, "steps": 1, "cost_usd": 0.0}).status == status


def test_tool_calls_a_task_result_does_not_report_are_skipped_not_failed():
    routed = Observation.of_task({"status": "succeeded", "steps": 2, "result": {"answer": "INV-1001", "agent_status": "answer"}})
    expect = Expectations.model_validate({"tool_called": {"name": "lookup_invoice"}, "contains": "INV-1001"})

    scores = score_case(expect, routed, prompt="", thresholds=DEFAULT_THRESHOLDS, judge=LocalJudge())

    assert [(s.scorer, s.passed, s.skipped) for s in scores] == [("contains", True, False), ("tool_called", True, True)]
