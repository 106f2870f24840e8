"""Task metrics in CloudWatch EMF: tokens, steps, cost and tool calls by tool and outcome."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_lambda_powertools import Metrics

from agentrail_runtime.agent.loop import AgentResult, AgentStatus, ToolCallRecord
from agentrail_runtime.metering.metrics import emit_task_metrics
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
    )


def metric_names(blob: dict) -> set[str]:
    return {m["Name"] for directive in blob["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]}


def dimension_sets(blob: dict) -> list[list[str]]:
    return [dims for directive in blob["_aws"]["CloudWatchMetrics"] for dims in directive["Dimensions"]]


def test_task_totals_are_flushed_as_one_emf_blob(metrics, stdout_records):
    emit_task_metrics(metrics, task(), agent_name="support")
    metrics.flush_metrics()

    [blob] = [r for r in stdout_records() if "_aws" in r]
    assert {"InputTokens", "OutputTokens", "Steps", "CostUSD", "Tasks_completed"} <= metric_names(blob)
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AgentrailUnitTests"
    assert (blob["InputTokens"], blob["OutputTokens"], blob["Steps"], blob["CostUSD"]) == ([1500], [320], [4], [0.00123])


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
    metrics.flush_metrics()

    [blob] = [r for r in stdout_records() if "_aws" in r]
    assert "CostUSD" not in metric_names(blob)
    assert "InputTokens" in metric_names(blob)
