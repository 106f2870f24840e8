"""The agent loop: tool execution, validation, failures, limits and human approval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import pytest
from agentrail_runtime.agent.loop import Agent, AgentStatus, ApprovalDecision
from agentrail_runtime.agent.tools import ToolError, tool
from agentrail_runtime.metering.pricing import ModelPrice, PriceTable
from agentrail_runtime.models.base import (
    Message,
    ModelProvider,
    ModelResponse,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
)
from agentrail_runtime.models.local import LocalModel
from pydantic import Field


class ScriptedModel(ModelProvider):
    """Answers with the given responses in order and keeps what each call was asked."""

    name = "scripted"

    def __init__(self, *responses: ModelResponse) -> None:
        self.responses = list(responses)
        self.calls: list[dict[str, Any]] = []

    def converse(self, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int) -> ModelResponse:
        self.calls.append({"messages": list(messages), "tools": list(tools), "max_tokens": max_tokens})
        return self.responses.pop(0)

    def check(self) -> None:
        return None


def wants(*uses: tuple[str, str, dict[str, Any]], tokens: tuple[int, int] = (100, 20)) -> ModelResponse:
    """A model turn asking for tools, each given as (tool_use_id, name, input)."""
    blocks = [ToolUseBlock(id=use_id, name=name, input=arguments) for use_id, name, arguments in uses]
    return ModelResponse(
        message=Message(role="assistant", content=blocks),
        stop_reason="tool_use",
        usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]),
        model="scripted",
    )


def says(text: str, tokens: tuple[int, int] = (100, 20)) -> ModelResponse:
    return ModelResponse(
        message=Message(role="assistant", content=[TextBlock(text=text)]),
        stop_reason="end_turn",
        usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]),
        model="scripted",
    )


def results_seen_by(model: ScriptedModel, call: int) -> list[ToolResultBlock]:
    """The tool results the model was given on its ``call``-th call (0-based)."""
    return model.calls[call]["messages"][-1].tool_results


@pytest.fixture
def ran() -> list[tuple[str, dict[str, Any]]]:
    """What the test tools were actually called with, in order."""
    return []


@pytest.fixture
def add(ran):
    @tool(local_patterns=[r"\badd (?P<a>\d+) and (?P<b>\d+)"])
    def add(a: int, b: int) -> int:
        """Add two integers."""
        ran.append(("add", {"a": a, "b": b}))
        return a + b

    return add


@pytest.fixture
def shout(ran):
    @tool(local_patterns=[r"\bshout (?P<word>[a-z]+)"])
    def shout(word: Annotated[str, Field(min_length=1, max_length=20)]) -> str:
        """Upper-case a word."""
        ran.append(("shout", {"word": word}))
        return word.upper()

    return shout


@pytest.fixture
def refund(ran):
    @tool(
        requires_approval=lambda arguments: arguments["amount_usd"] > 100,
        local_patterns=[r"\brefund (?P<amount_usd>\d+(?:\.\d+)?) usd on order (?P<order_id>[A-Z]-\d{4})"],
    )
    def refund(order_id: Annotated[str, Field(pattern=r"^[A-Z]-\d{4}$")], amount_usd: Annotated[float, Field(gt=0)]) -> dict:
        """Refund part of an order to the customer's card."""
        ran.append(("refund", {"order_id": order_id, "amount_usd": amount_usd}))
        return {"refunded_usd": amount_usd}

    return refund


#: A refund over the 100 USD that ``refund`` may pay without approval.
REFUND_OVER_THE_LIMIT = "Please refund 250 usd on order A-1001"


@pytest.fixture
def refund_agent(refund) -> Agent:
    """The local model with the ``refund`` tool."""
    return Agent(model=LocalModel(), tools=[refund])


@pytest.fixture
def paused(refund_agent):
    """``refund_agent``'s run of :data:`REFUND_OVER_THE_LIMIT`, paused for approval."""
    return refund_agent.run(REFUND_OVER_THE_LIMIT)


# -- running tools ------------------------------------------------------------------


def test_tools_run_in_the_order_the_request_mentions_them_and_the_answer_uses_their_results(add, shout, ran):
    agent = Agent(model=LocalModel(), tools=[add, shout])

    result = agent.run("Please shout hello, then add 2 and 3")

    assert ran == [("shout", {"word": "hello"}), ("add", {"a": 2, "b": 3})]
    assert result.status is AgentStatus.COMPLETED
    assert [(c.step, c.tool, c.outcome) for c in result.tool_calls] == [(1, "shout", "success"), (2, "add", "success")]
    assert result.answer == "shout returned HELLO; add returned 5."
    assert result.steps == 3


def test_tool_results_are_fed_back_to_the_model_under_the_id_it_asked_with(add):
    model = ScriptedModel(wants(("call-1", "add", {"a": 40, "b": 2})), says("42"))

    result = Agent(model=model, tools=[add]).run("what is 40 + 2?")

    assert results_seen_by(model, 1) == [ToolResultBlock(tool_use_id="call-1", content=42, status="success")]
    assert result.answer == "42"


def test_invalid_arguments_never_reach_the_tool_and_the_model_is_told_which_field(add, ran):
    model = ScriptedModel(wants(("call-1", "add", {"a": "forty-two-secret", "b": 2})), says("sorry"))

    result = Agent(model=model, tools=[add]).run("add things")

    assert ran == []
    [seen] = results_seen_by(model, 1)
    assert seen.status == "error"
    assert seen.content["error"] == "invalid arguments"
    assert [p["field"] for p in seen.content["problems"]] == ["a"]
    assert "forty-two-secret" not in str(seen.content)
    assert [c.outcome for c in result.tool_calls] == ["invalid_arguments"]
    assert result.status is AgentStatus.COMPLETED


def test_arguments_are_coerced_by_the_signature_before_the_tool_runs(add, ran):
    model = ScriptedModel(wants(("call-1", "add", {"a": "40", "b": 2.0})), says("42"))

    Agent(model=model, tools=[add]).run("add things")

    assert ran == [("add", {"a": 40, "b": 2})]


def test_unknown_tool_is_reported_to_the_model_and_the_run_goes_on(add):
    model = ScriptedModel(wants(("call-1", "delete_everything", {})), says("I cannot do that"))

    result = Agent(model=model, tools=[add]).run("wipe it")

    [seen] = results_seen_by(model, 1)
    assert (seen.status, seen.content) == ("error", {"error": "no tool has this name"})
    assert [(c.tool, c.outcome) for c in result.tool_calls] == [("delete_everything", "unknown_tool")]
    assert result.status is AgentStatus.COMPLETED


def test_tool_error_message_reaches_the_model_but_an_unexpected_exception_is_hidden():
    @tool
    def reserve(item: str) -> str:
        """Reserve an item."""
        raise ToolError("out of stock")

    @tool
    def charge(amount: int) -> str:
        """Charge the card."""
        raise RuntimeError("db password=hunter2 leaked in a stack trace")

    model = ScriptedModel(wants(("c1", "reserve", {"item": "lamp"}), ("c2", "charge", {"amount": 5})), says("both failed"))

    result = Agent(model=model, tools=[reserve, charge]).run("buy a lamp")

    reserved, charged = results_seen_by(model, 1)
    assert (reserved.status, reserved.content) == ("error", {"error": "out of stock"})
    assert (charged.status, charged.content) == ("error", {"error": "the tool failed unexpectedly"})
    assert [c.outcome for c in result.tool_calls] == ["error", "error"]
    assert result.status is AgentStatus.COMPLETED
    assert result.answer == "both failed"


# -- limits -------------------------------------------------------------------------


def test_max_steps_stops_the_run_and_still_reports_usage_and_cost(add):
    model = ScriptedModel(*(wants((f"c{i}", "add", {"a": i, "b": 1}), tokens=(1000, 100)) for i in range(5)))
    prices = PriceTable({"scripted": ModelPrice(input_per_million=2.0, output_per_million=10.0)})

    result = Agent(model=model, tools=[add], max_steps=2, prices=prices).run("count forever")

    assert result.status is AgentStatus.MAX_STEPS_EXCEEDED
    assert result.answer is None
    assert result.steps == 2
    assert len(model.calls) == 2
    assert result.usage == Usage(input_tokens=2000, output_tokens=200)
    assert result.cost_usd == pytest.approx((2000 * 2.0 + 200 * 10.0) / 1e6)


def test_token_budget_stops_before_running_tools_once_it_is_spent(add, ran):
    model = ScriptedModel(wants(("c1", "add", {"a": 1, "b": 1}), tokens=(90, 20)), says("never reached"))

    result = Agent(model=model, tools=[add], token_budget=100).run("add")

    assert result.status is AgentStatus.TOKEN_BUDGET_EXCEEDED
    assert result.usage == Usage(input_tokens=90, output_tokens=20)
    assert ran == []
    assert len(model.calls) == 1


def test_each_model_call_may_only_spend_what_is_left_of_the_token_budget(add):
    model = ScriptedModel(wants(("c1", "add", {"a": 1, "b": 1}), tokens=(300, 100)), says("2"))

    Agent(model=model, tools=[add], token_budget=1000, max_output_tokens=800).run("add")

    assert [call["max_tokens"] for call in model.calls] == [800, 600]


def test_an_answer_cut_off_by_the_remaining_budget_is_not_reported_as_complete(add):
    cut = says('{"partial": ', tokens=(300, 600)).model_copy(update={"stop_reason": "max_tokens"})
    model = ScriptedModel(wants(("c1", "add", {"a": 1, "b": 1}), tokens=(300, 100)), cut)

    result = Agent(model=model, tools=[add], token_budget=1000, max_output_tokens=800).run("add")

    assert result.status == AgentStatus.TOKEN_BUDGET_EXCEEDED
    assert result.answer is None
    assert result.usage.total_tokens == 1300


def test_an_answer_cut_off_by_the_per_call_cap_is_still_an_answer(add):
    cut = says("a long answer, cut", tokens=(300, 800)).model_copy(update={"stop_reason": "max_tokens"})

    result = Agent(model=ScriptedModel(cut), tools=[add], token_budget=10_000, max_output_tokens=800).run("add")

    assert result.status == AgentStatus.COMPLETED
    assert result.answer == "a long answer, cut"


# -- approval -----------------------------------------------------------------------


def test_tool_requiring_approval_pauses_before_it_runs_with_validated_arguments(refund_agent, ran):
    result = refund_agent.run(REFUND_OVER_THE_LIMIT)

    assert ran == []
    assert result.status is AgentStatus.AWAITING_APPROVAL
    assert result.answer is None
    assert result.pending is not None
    assert result.pending.tool == "refund"
    assert result.pending.arguments == {"order_id": "A-1001", "amount_usd": 250.0}
    assert [c.outcome for c in result.tool_calls] == ["pending_approval"]


def test_approval_rule_that_does_not_hold_lets_the_tool_run_at_once(refund_agent, ran):
    result = refund_agent.run("Please refund 20 usd on order A-1001")

    assert result.status is AgentStatus.COMPLETED
    assert ran == [("refund", {"order_id": "A-1001", "amount_usd": 20.0})]


def test_approved_call_runs_exactly_the_approved_arguments_then_the_run_completes(refund_agent, paused, ran):
    result = refund_agent.resume(
        transcript=paused.new_messages,
        pending=paused.pending,
        decision=ApprovalDecision(approved=True),
        steps_so_far=paused.steps,
        usage_so_far=paused.usage,
        tool_calls_so_far=paused.tool_calls,
    )

    assert ran == [("refund", {"order_id": "A-1001", "amount_usd": 250.0})]
    assert result.status is AgentStatus.COMPLETED
    assert result.answer == 'refund returned {"refunded_usd": 250.0}.'
    assert [c.outcome for c in result.tool_calls] == ["pending_approval", "success"]
    assert result.steps == paused.steps + 1
    assert result.usage.total_tokens > paused.usage.total_tokens


def test_approval_runs_the_pending_arguments_even_if_the_transcript_asks_for_others(refund, ran):
    model = ScriptedModel(wants(("c1", "refund", {"order_id": "A-1001", "amount_usd": 250})), says("done"))
    agent = Agent(model=model, tools=[refund])
    paused = agent.run("refund it")
    tampered = [*paused.new_messages[:-1], wants(("c1", "refund", {"order_id": "A-1001", "amount_usd": 9999})).message]

    agent.resume(transcript=tampered, pending=paused.pending, decision=ApprovalDecision(approved=True))

    assert ran == [("refund", {"order_id": "A-1001", "amount_usd": 250.0})]


def test_rejection_never_runs_the_tool_and_tells_the_model_why(refund_agent, paused, ran):
    result = refund_agent.resume(
        transcript=paused.new_messages,
        pending=paused.pending,
        decision=ApprovalDecision(approved=False, reason="over the agent's refund limit"),
    )

    assert ran == []
    assert result.status is AgentStatus.COMPLETED
    assert result.answer == ("refund was not completed: rejected by a human approver (reason: over the agent's refund limit).")
    assert [c.outcome for c in result.tool_calls] == ["rejected"]


def test_results_of_tools_before_the_paused_one_are_kept_for_the_resumed_turn(add, refund, ran):
    model = ScriptedModel(
        wants(("c1", "add", {"a": 1, "b": 2}), ("c2", "refund", {"order_id": "A-1001", "amount_usd": 500})),
        says("refunded"),
    )
    agent = Agent(model=model, tools=[add, refund])
    paused = agent.run("add then refund")

    agent.resume(transcript=paused.new_messages, pending=paused.pending, decision=ApprovalDecision(approved=True))

    assert [name for name, _ in ran] == ["add", "refund"]
    assert [(r.tool_use_id, r.status) for r in results_seen_by(model, 1)] == [("c1", "success"), ("c2", "success")]


def test_resume_refuses_a_transcript_without_the_pending_tool_call(refund_agent, paused):
    with pytest.raises(ValueError, match="does not end with the assistant turn"):
        refund_agent.resume(transcript=paused.new_messages[:1], pending=paused.pending, decision=ApprovalDecision(approved=True))


# -- construction -------------------------------------------------------------------


def test_duplicate_tool_names_are_rejected(add):
    @tool(name="add")
    def other_add(a: int) -> int:
        """Another add."""
        return a

    with pytest.raises(ValueError, match="tool names must be unique; repeated: add"):
        Agent(model=LocalModel(), tools=[add, other_add])


@pytest.mark.parametrize(("option", "value"), [("max_steps", 0), ("token_budget", 0)])
def test_limits_below_one_are_rejected(option, value):
    with pytest.raises(ValueError, match=f"{option} must be at least 1"):
        Agent(model=LocalModel(), **{option: value})
