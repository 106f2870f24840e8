"""The loop writes one structured JSON log line per reasoning step and per tool call."""

from __future__ import annotations

import json

from agentrail_runtime.agent.loop import Agent
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.demo import calculator, convert_units
from agentrail_runtime.models.local import LocalModel

TOOL_FIELDS = {"step", "tool", "latency_ms", "input_tokens", "output_tokens", "outcome"}
# A reasoning step has no tool; Powertools drops keys whose value is None.
STEP_FIELDS = TOOL_FIELDS - {"tool"} | {"model"}


def test_every_reasoning_step_is_logged_with_its_tokens_latency_and_outcome(stdout_records):
    agent = Agent(model=LocalModel(), tools=[calculator, convert_units])

    result = agent.run("Calculate (12 + 30) * 2 and convert 10 km to mi")

    steps = [r for r in stdout_records() if r.get("event") == "reasoning_step"]
    assert len(steps) == result.steps == 3
    assert all(set(line) >= STEP_FIELDS and line["level"] == "INFO" for line in steps)
    assert [(s["step"], s["model"], s["outcome"]) for s in steps] == [
        (1, "local", "tool_use"),
        (2, "local", "tool_use"),
        (3, "local", "end_turn"),
    ]
    assert all(s["latency_ms"] >= 0 for s in steps)
    assert sum(s["input_tokens"] for s in steps) == result.usage.input_tokens
    assert sum(s["output_tokens"] for s in steps) == result.usage.output_tokens


def test_every_tool_call_is_logged_with_its_step_tool_and_outcome(stdout_records):
    agent = Agent(model=LocalModel(), tools=[calculator, convert_units])

    agent.run("Calculate 1 / 0 and convert 10 km to mi")

    calls = [r for r in stdout_records() if r.get("event") == "tool_call"]
    assert all(set(line) >= TOOL_FIELDS and line["level"] == "INFO" for line in calls)
    assert [(c["step"], c["tool"], c["outcome"]) for c in calls] == [(1, "calculator", "error"), (2, "convert_units", "success")]
    assert all(c["latency_ms"] >= 0 and c["input_tokens"] == c["output_tokens"] == 0 for c in calls)


def test_invalid_arguments_are_logged_by_outcome_and_no_line_carries_the_input(stdout_records):
    @tool(local_patterns=[r"order (?P<order_id>\S+)"])
    def track(order_id: int) -> str:
        """Track an order by its numeric id."""
        return "in transit"

    Agent(model=LocalModel(), tools=[track]).run("where is order SECRET-XYZ")

    records = stdout_records()
    [call] = [r for r in records if r.get("event") == "tool_call"]
    assert (call["tool"], call["outcome"]) == ("track", "invalid_arguments")
    assert "SECRET-XYZ" not in json.dumps(records)
