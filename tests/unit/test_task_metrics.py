"""Agent metrics in CloudWatch EMF: tokens, cost, steps and their latency, outcomes, tool calls by tool and outcome,
approvals waiting; the agent version as a property, and a bounded set of dimension sets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_lambda_powertools import Metrics

from agentrail_runtime.agent.loop import AgentResult, AgentStatus, ToolCallRecord
from agentrail_runtime.metering.feedback import Feedback
from agentrail_runtime.metering.metrics import (
    DIMENSION_SETS,
    emit_batch_lane,
    emit_feedback_metrics,
    emit_outcome,
    emit_pending_approvals,
    emit_task_metrics,
)
from agentrail_runtime.models.base import Usage


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    # Powertools keeps the metric set at class level, shared by every Metrics instance.
    metrics = Metrics(namespace="AgentrailUnitTests", service="checkout")
    metrics.clear_metrics()
    yield metrics
    metrics.clear_metrics()


def task(*, cost_usd: float | None = 0.00123, calls: list[tuple[str, str]] = ()) -> AgentResult:
    return AgentResult(
        status=AgentStatus.COMPLETED,
        answer="done",
        model="bedrock:amazon.nova-lite-v1:0",
        steps=4,
        usage=Usage(input_tokens=1500, output_tokens=320),
        cost_usd=cost_usd,
        tool_calls=[
            ToolCallRecord(step=i + 1, tool=name, tool_use_id=f"t{i}", outcome=outcome, latency_ms=1.0)
            for i, (name, outcome) in enumerate(calls)
        ],
        new_messages=[],
        step_latencies_ms=[812.5, 640.25, 701.0, 455.75],
    )


def metric_names(blob: dict) -> set[str]:
    return {m["Name"] for directive in blob["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]}


def dimension_sets(blob: dict) -> list[list[str]]:
    return [dims for directive in blob["_aws"]["CloudWatchMetrics"] for dims in directive["Dimensions"]]


def test_a_run_is_one_emf_record_with_totals_step_latencies_task_latency_and_the_version_as_a_property(metrics, stdout_records):
    emit_task_metrics(metrics, task(), agent_name="support", agent_version="3f9a0c1b2d4e", task_latency_ms=2750.0)

    [blob] = [r for r in stdout_records() if "_aws" in r]
    assert metric_names(blob) == {
        "InputTokens",
        "OutputTokens",
        "Steps",
        "CostUSD",
        "Tasks_completed",
        "StepLatency",
        "TaskLatency",
    }
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AgentrailUnitTests"
    assert (blob["InputTokens"], blob["OutputTokens"], blob["Steps"], blob["CostUSD"]) == ([1500], [320], [4], [0.00123])
    assert blob["StepLatency"] == [812.5, 640.25, 701.0, 455.75]
    assert blob["TaskLatency"] == [2750.0]
    assert dimension_sets(blob) == [["service"], ["service", "agent", "model"]]
    assert (blob["service"], blob["agent"], blob["model"]) == ("checkout", "support", "bedrock:amazon.nova-lite-v1:0")
    assert blob["agent_version"] == "3f9a0c1b2d4e"
    assert "agent_version" not in {d for dims in dimension_sets(blob) for d in dims}


def test_tool_calls_get_one_line_per_tool_and_outcome_with_those_dimensions(metrics, stdout_records):
    calls = [("lookup_order", "success"), ("refund", "rejected"), ("lookup_order", "success"), ("lookup_order", "error")]

    emit_task_metrics(metrics, task(calls=calls), agent_name="support")

    lines = [r for r in stdout_records() if "_aws" in r and "ToolCalls" in metric_names(r)]
    assert sorted((line["tool"], line["outcome"], line["ToolCalls"]) for line in lines) == [
        ("lookup_order", "error", [1]),
        ("lookup_order", "success", [2]),
        ("refund", "rejected", [1]),
    ]
    assert all(dimension_sets(line) == [["service", "agent", "tool", "outcome"]] for line in lines)
    assert all((line["service"], line["agent"]) == ("checkout", "support") for line in lines)


def test_a_task_on_an_unpriced_model_emits_no_cost(metrics, stdout_records):
    emit_task_metrics(metrics, task(cost_usd=None))

    [blob] = [r for r in stdout_records() if "_aws" in r]
    assert "CostUSD" not in metric_names(blob)
    assert "InputTokens" in metric_names(blob)


def test_a_failed_task_and_a_rejected_approval_are_outcomes_under_the_runs_dimensions(metrics, stdout_records):
    emit_outcome(metrics, "failed", agent_name="support", model="local", agent_version="v1")
    emit_outcome(metrics, "rejected", agent_name="support", model="local", agent_version="v1")

    failed, rejected = [r for r in stdout_records() if "_aws" in r]
    assert (failed["Tasks_failed"], rejected["Tasks_rejected"]) == ([1.0], [1.0])
    assert dimension_sets(failed) == dimension_sets(rejected) == [["service"], ["service", "agent", "model"]]
    assert failed["agent_version"] == rejected["agent_version"] == "v1"


def test_pending_approvals_are_a_count_and_the_oldest_age_in_seconds_under_the_service_only(metrics, stdout_records):
    emit_pending_approvals(metrics, count=3, oldest_age_seconds=7200)

    [blob] = [r for r in stdout_records() if "_aws" in r]
    assert (blob["ApprovalsPending"], blob["OldestPendingApprovalAgeSeconds"]) == ([3.0], [7200.0])
    assert dimension_sets(blob) == [["service"]]
    units = {m["Name"]: m["Unit"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"ApprovalsPending": "Count", "OldestPendingApprovalAgeSeconds": "Seconds"}


def test_the_batch_lane_emits_what_waits_and_the_oldest_age_in_seconds_under_the_service_only(metrics, stdout_records):
    emit_batch_lane(metrics, waiting=42, oldest_age_seconds=1800, jobs_open=2)

    [blob] = [r for r in stdout_records() if "_aws" in r]
    assert (blob["BatchTasksWaiting"], blob["OldestBatchTaskAgeSeconds"], blob["BatchJobsOpen"]) == ([42.0], [1800.0], [2.0])
    assert dimension_sets(blob) == [["service"]]
    units = {m["Name"]: m["Unit"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"BatchTasksWaiting": "Count", "OldestBatchTaskAgeSeconds": "Seconds", "BatchJobsOpen": "Count"}


def test_every_agent_metric_uses_one_of_a_fixed_bounded_list_of_dimension_sets(metrics, stdout_records):
    # given every emitter, each with every optional dimension it may carry
    emit_task_metrics(
        metrics,
        task(calls=[("lookup_order", "success"), ("refund", "error")]),
        agent_name="support",
        agent_version="v1",
        task_latency_ms=1.0,
    )
    emit_outcome(metrics, "failed", agent_name="support", model="local", agent_version="v1")
    emit_pending_approvals(metrics, count=0, oldest_age_seconds=0)
    emit_batch_lane(metrics, waiting=0, oldest_age_seconds=0, jobs_open=0)
    emit_feedback_metrics(metrics, Feedback(score=4, given_at=0), agent_name="support", agent_version="v1")

    # when the dimension sets of every record are collected
    used = {tuple(dims) for r in stdout_records() if "_aws" in r for dims in dimension_sets(r)}

    # then they are exactly these, none with the version or an unbounded value (task id, principal) in it
    assert used == {
        ("service",),
        ("service", "agent"),
        ("service", "agent", "model"),
        ("service", "agent", "tool", "outcome"),
    }
    assert used == set(DIMENSION_SETS)
