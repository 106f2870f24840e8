"""Agent metrics from real runs (the local model, real tools, real Powertools): what a run emits, and a failing tool
moving the success rate."""

from __future__ import annotations

from collections import Counter

import pytest

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.tools import ToolError, tool
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.metering.metrics import ENDED_TOOL_OUTCOMES
from agentrail_runtime.models.base import ModelError
from agentrail_runtime.service import AgentService

ORDERS = {"A-1001": "shipped"}


@tool(local_patterns=(r"order (?P<order_id>[A-Z]-\d+)",))
def order_status(order_id: str) -> dict:
    """Look up the status of an order."""
    if order_id not in ORDERS:
        raise ToolError(f"no order {order_id}")
    return {"order_id": order_id, "status": ORDERS[order_id]}


def emf(records: list[dict]) -> list[dict]:
    return [r for r in records if "_aws" in r]


def dimension_sets(record: dict) -> list[list[str]]:
    return [dims for directive in record["_aws"]["CloudWatchMetrics"] for dims in directive["Dimensions"]]


def success_rate(records: list[dict], tool_name: str) -> float:
    """The README's math: ToolCalls{outcome=success} / ToolCalls over every ended outcome, for one tool."""
    calls: Counter[str] = Counter()
    for record in records:
        if "ToolCalls" in record and record["tool"] == tool_name:
            calls[record["outcome"]] += sum(record["ToolCalls"])
    ended = sum(count for outcome, count in calls.items() if outcome in ENDED_TOOL_OUTCOMES)
    return calls["success"] / ended


def test_a_run_emits_tokens_cost_steps_latencies_outcome_and_tool_calls_with_their_dimensions_and_version(stdout_records):
    service = AgentService(definition=demo_definition, settings=RuntimeSettings())

    result = service.run("Calculate (12 + 30) * 2 and convert 10 km to mi")

    records = emf(stdout_records())
    [run] = [r for r in records if "Steps" in r]
    assert {"InputTokens", "OutputTokens", "CostUSD", "Steps", "StepLatency", "TaskLatency", "Tasks_completed"} <= set(run)
    assert len(run["StepLatency"]) == result.steps == run["Steps"][0]
    assert dimension_sets(run) == [["service"], ["service", "agent", "model"]]
    assert (run["agent"], run["model"]) == (demo_definition.name, result.model)
    tool_lines = [r for r in records if "ToolCalls" in r]
    assert sorted((r["tool"], r["outcome"]) for r in tool_lines) == [("calculator", "success"), ("convert_units", "success")]
    assert all(dimension_sets(r) == [["service", "agent", "tool", "outcome"]] for r in tool_lines)
    assert {r["agent_version"] for r in [run, *tool_lines]} == {service.version}


def test_a_failing_tool_moves_its_success_rate_from_one_to_a_half(stdout_records):
    service = AgentService(
        definition=AgentDefinition(name="orders", system_prompt="", tools=(order_status,)), settings=RuntimeSettings()
    )
    service.run("What is the status of order A-1001?")
    first = emf(stdout_records())

    service.run("What is the status of order B-2002?")
    second = emf(stdout_records())

    assert [(r["outcome"], r["ToolCalls"]) for r in first if "ToolCalls" in r] == [("success", [1.0])]
    assert [(r["outcome"], r["ToolCalls"]) for r in second if "ToolCalls" in r] == [("error", [1.0])]
    assert success_rate(first, "order_status") == 1.0
    assert success_rate([*first, *second], "order_status") == 0.5


class BrokenModel:
    name = "local"

    def converse(self, **_: object):
        raise ModelError("the model is unreachable", model="local", retryable=True)


def test_a_run_that_raises_counts_as_failed_and_still_raises(stdout_records, monkeypatch):
    service = AgentService(definition=demo_definition, settings=RuntimeSettings())
    monkeypatch.setattr(service, "model", lambda requested=None: BrokenModel())

    with pytest.raises(ModelError):
        service.run("Calculate 6 * 7")

    [failed] = [r for r in emf(stdout_records()) if "Tasks_failed" in r]
    assert failed["Tasks_failed"] == [1.0]
    assert dimension_sets(failed) == [["service"], ["service", "agent", "model"]]
    assert failed["agent_version"] == service.version
