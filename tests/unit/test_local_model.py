"""The deterministic local model: tool choice, answers, memory, token counting."""

from __future__ import annotations

import pytest

from agentrail_runtime.agent.tools import ToolError, tool
from agentrail_runtime.demo import calculator, convert_units, lookup_order
from agentrail_runtime.models.base import Message, ToolResultBlock
from agentrail_runtime.models.local import LocalModel, plan_tool_calls
from agentrail_runtime.models.tokens import count_tokens

DEMO_SPECS = [calculator.spec, convert_units.spec, lookup_order.spec]


@tool
def ask_billing(question: str) -> str:
    """Hand invoice, refund and payment questions to the billing specialist."""
    return "forwarded"


@tool
def forecast(city: str, days: int) -> str:
    """Weather forecast for a city, also for invoice deadlines."""
    return "sunny"


def converse(messages: list[Message], specs=DEMO_SPECS, *, system: str = "", max_tokens: int = 1024):
    return LocalModel().converse(system=system, messages=messages, tools=specs, max_tokens=max_tokens)


def test_same_conversation_gives_the_same_response_including_tool_ids():
    messages = [Message.user("Calculate 6 * 7")]

    first, second = converse(messages), converse(messages)

    assert first == second
    assert first.message.tool_uses[0].id.startswith("tooluse_")


def test_tools_are_planned_in_the_order_the_request_mentions_them():
    plan = plan_tool_calls("Convert 5 kg to lb, then look up order A-1002 and calculate 2 * 21", DEMO_SPECS)

    assert plan == [
        ("convert_units", {"value": "5", "from_unit": "kg", "to_unit": "lb"}),
        ("lookup_order", {"order_id": "A-1002"}),
        ("calculator", {"expression": "2 * 21"}),
    ]


def test_a_call_mentioned_twice_is_planned_once():
    assert plan_tool_calls("calculate 1 + 1, I said calculate 1 + 1", DEMO_SPECS) == [("calculator", {"expression": "1 + 1"})]


def test_planned_tools_are_called_one_step_at_a_time_with_distinct_ids():
    request = Message.user("Calculate 6 * 7 and convert 10 km to mi")
    first = converse([request])
    result = Message(role="user", content=[ToolResultBlock(tool_use_id=first.message.tool_uses[0].id, content=42)])

    second = converse([request, first.message, result])

    assert [(r.stop_reason, r.message.tool_uses[0].name) for r in (first, second)] == [
        ("tool_use", "calculator"),
        ("tool_use", "convert_units"),
    ]
    assert first.message.tool_uses[0].id != second.message.tool_uses[0].id


def test_without_a_pattern_match_a_one_string_argument_tool_is_chosen_by_its_description():
    plan = plan_tool_calls("Why is my invoice wrong?", [forecast.spec, ask_billing.spec])

    assert plan == [("ask_billing", {"question": "Why is my invoice wrong?"})]


def test_description_matching_never_picks_a_tool_that_needs_more_than_one_argument():
    assert plan_tool_calls("What is the weather forecast for Paris?", [forecast.spec]) == []


def test_answer_is_built_from_the_tool_results():
    request = Message.user("Calculate 6 * 7")
    ask = converse([request]).message
    use_id = ask.tool_uses[0].id

    answer = converse([request, ask, Message(role="user", content=[ToolResultBlock(tool_use_id=use_id, content=42)])])

    assert answer.stop_reason == "end_turn"
    assert answer.message.text == "calculator returned 42."


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"error": "division by zero"}, "calculator was not completed: division by zero."),
        (
            {"error": "rejected by a human approver", "reason": "too expensive"},
            "calculator was not completed: rejected by a human approver (reason: too expensive).",
        ),
    ],
)
def test_failed_and_rejected_tool_results_are_reported_as_not_completed(content, expected):
    request = Message.user("Calculate 1 / 0")
    ask = converse([request]).message
    failed = ToolResultBlock(tool_use_id=ask.tool_uses[0].id, content=content, status="error")

    answer = converse([request, ask, Message(role="user", content=[failed])])

    assert answer.message.text == expected


def test_a_fact_stated_earlier_is_recalled():
    history = [Message.user("Hi, my name is Ada."), Message.assistant("Noted: your name is Ada.")]

    answer = converse([*history, Message.user("What is my name?")], specs=[])

    assert answer.message.text == "Your name is Ada."


def test_a_fact_never_stated_is_not_invented():
    answer = converse([Message.user("What is my favourite colour?")], specs=[])

    assert answer.message.text == "I don't know your favourite colour yet."


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("abc", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)])
def test_tokens_are_counted_as_one_per_four_characters_rounded_up(text, tokens):
    assert count_tokens(text) == tokens


def test_input_tokens_grow_with_the_prompt_the_model_is_sent():
    messages = [Message.user("What is my name?")]

    short, long = converse(messages, system=""), converse(messages, system="x" * 400)

    assert long.usage.input_tokens - short.usage.input_tokens == 100
    assert short.usage.output_tokens == long.usage.output_tokens > 0


def test_an_answer_longer_than_max_tokens_is_cut_and_reported_as_such():
    full = converse([Message.user("hello there")])

    cut = converse([Message.user("hello there")], max_tokens=20)

    assert full.stop_reason == "end_turn" and full.usage.output_tokens > 20
    assert cut.stop_reason == "max_tokens"
    assert cut.usage.output_tokens == 20
    assert full.message.text.startswith(cut.message.text)
    assert len(cut.message.text) <= 20 * 4


@pytest.mark.parametrize(
    ("request_text", "expression"),
    [
        ("Calculate 1e308 * 10", "1e308 * 10"),
        ("compute 2.5E-3 + .5", "2.5E-3 + .5"),
        ("what is 2 ^ 10?", "2 ^ 10"),
        ("Calculate 3 + 4 eggs", "3 + 4"),
    ],
    ids=["exponent", "signed-exponent-and-leading-dot", "caret-power", "stops-at-words"],
)
def test_the_calculator_is_given_whole_numbers_with_exponents_not_their_first_digit(request_text, expression):
    assert plan_tool_calls(request_text, DEMO_SPECS) == [("calculator", {"expression": expression})]


def test_a_calculation_past_the_float_range_is_reported_as_too_large_rather_than_answered():
    [use] = converse([Message.user("Calculate 1e308 * 10")]).message.tool_uses

    with pytest.raises(ToolError, match="result too large"):
        calculator.invoke(calculator.validate(use.input))
