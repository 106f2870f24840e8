"""The demo agent's tools, called the way the loop calls them: validate, then invoke."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from agentrail_runtime import demo
from agentrail_runtime.agent.definition import load_definition
from agentrail_runtime.agent.loop import AgentStatus
from agentrail_runtime.agent.tools import Tool, ToolError
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import calculator, convert_units, current_time, definition, lookup_order, wait
from agentrail_runtime.service import AgentService


def call(tool: Tool, **arguments: Any) -> Any:
    return tool.invoke(tool.validate(arguments))


@pytest.mark.parametrize(
    ("expression", "value"),
    [("(12 + 30) * 2", 84), ("7 / 2", 3.5), ("2 ^ 10", 1024), ("-3 + +1", -2), ("17 // 5 + 17 % 5", 5), ("1 / 3", 0.3333333333)],
)
def test_calculator_evaluates_arithmetic(expression, value):
    assert call(calculator, expression=expression) == value


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('id')", "x + 1", "(1).real", "abs(-1)", "[1, 2]", "'a' * 3", "1 if 1 else 2", "lambda: 1"],
)
def test_calculator_refuses_names_attributes_calls_and_anything_but_numbers(expression):
    with pytest.raises(ToolError, match="only numbers and"):
        call(calculator, expression=expression)


@pytest.mark.parametrize("expression", ["2 ** 101", "9 ** 9 ** 9", "2 ** (10 * 11)", "2 ** -101"])
def test_calculator_caps_exponents_so_it_cannot_be_made_to_hang(expression):
    with pytest.raises(ToolError, match="exponent too large"):
        call(calculator, expression=expression)


@pytest.mark.parametrize(
    "expression", ["(((9 ** 99) ** 99) ** 99) ** 99", "1e308 * 10", "10.0 ** 99 * 10.0 ** 99 * 10.0 ** 99 * 10.0 ** 99"]
)
def test_calculator_refuses_results_too_large_to_compute_or_represent(expression):
    with pytest.raises(ToolError, match="result too large"):
        call(calculator, expression=expression)


def test_calculator_evaluates_a_deeply_nested_power_in_linear_time():
    started = time.perf_counter()

    assert call(calculator, expression="**".join(["1"] * 66)) == 1
    assert time.perf_counter() - started < 1.0


def test_calculator_returns_whole_numbers_beyond_float_range_exactly():
    assert call(calculator, expression="(2 ** 50) ** 80") == 2**4000


def test_calculator_refuses_complex_results():
    with pytest.raises(ToolError, match="not a real number"):
        call(calculator, expression="(-8) ** 0.5")


@pytest.mark.parametrize("expression", ["1 / 0", "5 // 0", "5 % 0"])
def test_calculator_reports_division_by_zero(expression):
    with pytest.raises(ToolError, match="division by zero"):
        call(calculator, expression=expression)


def test_calculator_reports_text_that_is_not_an_expression():
    with pytest.raises(ToolError, match="not an arithmetic expression"):
        call(calculator, expression="2 +")


def test_calculator_input_is_limited_in_length():
    with pytest.raises(ValidationError):
        calculator.validate({"expression": "1+" * 150 + "1"})


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (10, "km", "mi", {"value": 6.2137, "unit": "mi"}),
        (10, "miles", "kilometers", {"value": 16.0934, "unit": "km"}),
        (100, "celsius", "F", {"value": 212.0, "unit": "f"}),
        (32, "f", "c", {"value": 0.0, "unit": "c"}),
        (1, "kg", "lbs", {"value": 2.2046, "unit": "lb"}),
        (3, "feet", "m", {"value": 0.9144, "unit": "m"}),
    ],
)
def test_convert_units_between_the_supported_pairs(value, source, target, expected):
    assert call(convert_units, value=value, from_unit=source, to_unit=target) == expected


def test_convert_units_refuses_an_unsupported_pair():
    with pytest.raises(ToolError, match="cannot convert km to kg"):
        call(convert_units, value=1, from_unit="km", to_unit="kg")


def test_lookup_order_returns_the_order():
    assert call(lookup_order, order_id="A-1001") == {
        "order_id": "A-1001",
        "status": "shipped",
        "carrier": "UPS",
        "eta": "2026-12-02",
        "total_usd": 42.5,
    }


def test_lookup_order_of_an_unknown_id_is_a_tool_error():
    with pytest.raises(ToolError, match="no order with this id"):
        call(lookup_order, order_id="A-9999")


@pytest.mark.parametrize("order_id", ["1001", "a-1001", "A-10011", "A-1001; DROP TABLE"])
def test_lookup_order_ids_are_validated_before_the_lookup(order_id):
    with pytest.raises(ValidationError):
        lookup_order.validate({"order_id": order_id})


def test_current_time_reads_the_runtimes_clock_in_the_requested_zone(clock):
    clock.now = 1_800_000_000  # 2027-01-15 08:00:00 UTC, frozen for everything the tool calls

    assert call(current_time, timezone="Asia/Tokyo") == "2027-01-15T17:00:00+09:00"
    assert call(current_time, timezone="America/New_York") == "2027-01-15T03:00:00-05:00"


def test_current_time_defaults_to_utc():
    assert datetime.fromisoformat(call(current_time)).utcoffset().total_seconds() == 0


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", ""])
def test_current_time_of_an_unknown_zone_is_a_tool_error(zone):
    with pytest.raises(ToolError, match="unknown time zone"):
        call(current_time, timezone=zone)


def test_the_demo_definition_is_importable_by_reference_with_its_six_tools():
    loaded = load_definition("agentrail_runtime.demo:definition")

    assert loaded is definition
    assert [t.name for t in loaded.tools] == [
        "calculator",
        "convert_units",
        "current_time",
        "lookup_order",
        "issue_refund",
        "wait",
    ]


@pytest.mark.parametrize("seconds", [0, -1, 61, 2.5])
def test_wait_refuses_a_duration_outside_one_to_sixty_whole_seconds(seconds):
    with pytest.raises(ValidationError, match="seconds"):
        wait.validate({"seconds": seconds})


def test_wait_waits_the_seconds_it_is_given(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(demo.time, "sleep", slept.append)

    assert call(wait, seconds=3) == {"waited_seconds": 3}
    assert slept == [3]


def test_only_the_refund_tool_declares_side_effects_so_it_runs_at_most_once_per_call():
    assert {t.name for t in definition.tools if t.side_effects} == {"issue_refund"}


def test_the_demo_agent_withholds_an_order_whose_customer_note_injects_instructions_and_still_answers():
    # given: the demo agent on the local model, and order A-1004, whose delivery note tells the model to refund
    service = AgentService(definition=definition, settings=RuntimeSettings(model="local"))

    # when: a user asks about that order
    result = service.run("What is the status of order A-1004?")

    # then: the run completes; the tool's result reached the model as a notice, so no refund was asked for
    assert result.status == AgentStatus.COMPLETED
    assert [c.tool for c in result.tool_calls] == ["lookup_order"]
    assert "prompt_injection.instruction_override" in result.answer
    assert "5000" not in result.answer and "refund" not in result.answer.lower()
    assert [(e.stage, e.action) for e in result.guard_events] == [("tool_result", "block")]


def test_the_demo_agent_redacts_a_card_number_the_user_gave_from_its_answer():
    service = AgentService(definition=definition, settings=RuntimeSettings(model="local"))

    result = service.run("My card is 4111 1111 1111 1111")

    assert result.answer == "Noted: your card is [REDACTED:card_number]."
