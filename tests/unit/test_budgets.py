"""Daily budgets: UTC day keys, Retry-After to the next UTC midnight, the AGENT_BUDGETS format, and the loop's
reserve-then-settle around every model call."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from agentrail_runtime.agent.loop import Agent, AgentStatus
from agentrail_runtime.api.gateway_models import openapi_documents
from agentrail_runtime.budgets import (
    BudgetExceeded,
    BudgetRefusal,
    DailyBudgets,
    Reservation,
    counter_key,
    seconds_to_next_utc_midnight,
    utc_day,
)
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.contract import BudgetLimit, budgets_from_env, budgets_to_env, check_budget
from agentrail_runtime.models.base import Usage
from agentrail_runtime.models.tokens import estimate_input_tokens
from tests.unit.test_agent_loop import ScriptedModel, says, wants


def _midnight_of(at: float) -> float:
    return at - at % 86_400


def test_the_day_key_is_the_utc_calendar_day_of_the_clock(clock):
    midnight = _midnight_of(clock.now)
    day = dt.datetime.fromtimestamp(midnight, dt.UTC).strftime("%Y-%m-%d")

    assert utc_day(midnight) == day
    assert utc_day(midnight + 86_399) == day
    assert utc_day(midnight + 86_400) != day
    assert counter_key("tenant", "iam:arn:aws:iam::1:role/r", day) == f"tenant#iam:arn:aws:iam::1:role/r#{day}"


def test_retry_after_is_one_second_at_23_59_59_and_a_whole_day_at_midnight(clock):
    midnight = _midnight_of(clock.now)

    assert seconds_to_next_utc_midnight(midnight + 86_399) == 1
    assert seconds_to_next_utc_midnight(midnight) == 86_400
    assert seconds_to_next_utc_midnight(midnight + 0.5) == 86_400
    assert seconds_to_next_utc_midnight(midnight + 43_200) == 43_200


def test_a_counter_expires_the_retention_days_after_its_day_ends(clock):
    budgets = DailyBudgets("counters", [BudgetLimit("tenant", "tokens", 100)], client=object(), retention_days=3)
    midnight = _midnight_of(clock.now)

    assert budgets.expires_at(midnight) == midnight + 4 * 86_400
    assert budgets.expires_at(midnight + 86_399) == midnight + 4 * 86_400


def test_budgets_round_trip_through_their_environment_variable():
    declared = (BudgetLimit("tenant", "usd", 2.5), BudgetLimit("agent", "tokens", 1_000_000))

    assert budgets_from_env(budgets_to_env(declared)) == declared
    assert budgets_from_env("") == ()
    assert RuntimeSettings(budgets=budgets_to_env(declared), budget_table="t").budgets == declared


@pytest.mark.parametrize(
    ("per", "unit", "limit", "problem"),
    [
        ("tenant", "usd", 0, "above zero"),
        ("tenant", "usd", -1.0, "above zero"),
        ("agent", "tokens", None, "above zero"),
        ("agent", "tokens", float("inf"), "above zero"),
        ("agent", "tokens", 10.5, "whole number"),
        ("team", "usd", 1.0, "per tenant or per agent"),
        ("tenant", "eur", 1.0, "tokens or usd"),
    ],
)
def test_a_budget_without_a_positive_limit_or_with_an_unknown_kind_is_refused_naming_the_fix(per, unit, limit, problem):
    with pytest.raises(ValueError, match=problem):
        check_budget(per, unit, limit)


def test_two_budgets_of_the_same_kind_are_refused():
    with pytest.raises(ValueError, match="declare each"):
        budgets_to_env([BudgetLimit("tenant", "usd", 1.0), BudgetLimit("tenant", "usd", 2.0)])


def test_budgets_without_their_counters_table_fail_at_cold_start():
    with pytest.raises(ValueError, match="AGENT_BUDGET_TABLE"):
        RuntimeSettings(budgets=budgets_to_env([BudgetLimit("tenant", "usd", 1.0)]))


class RecordingGuard:
    """Stands in for the DynamoDB-backed guard: records the reserves and settles; refuses after ``allowed`` reserves."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.log: list[tuple[str, Any]] = []

    def reserve(self, model: str, input_tokens: int, max_output_tokens: int, *, calls_before: int = 0) -> Reservation:
        if len([e for e in self.log if e[0] == "reserve"]) >= self.allowed:
            refusal = BudgetRefusal(
                per="tenant", name="t", unit="tokens", limit=1, day="d", retry_after_seconds=1, calls_before=calls_before
            )
            raise BudgetExceeded(refusal)
        self.log.append(("reserve", (input_tokens, max_output_tokens)))
        return Reservation(keys=("k",), model=model, tokens=input_tokens + max_output_tokens, usd=0)  # type: ignore[arg-type]

    def settle(self, reservation: Reservation, usage: Usage) -> None:
        self.log.append(("settle", usage.total_tokens))


def test_each_model_call_is_reserved_at_its_estimated_input_plus_output_cap_and_settled_at_its_usage():
    model = ScriptedModel(wants(("t1", "calculator", {"expression": "1+1"}), tokens=(100, 20)), says("2", tokens=(130, 5)))
    guard = RecordingGuard(allowed=5)
    agent = Agent(model=model, max_output_tokens=256)

    result = agent.run("add", budget=guard)  # type: ignore[arg-type]

    assert result.status == AgentStatus.COMPLETED
    first_input = estimate_input_tokens("", [model.calls[0]["messages"][0]], [])
    assert guard.log[0] == ("reserve", (first_input, 256))
    assert [kind for kind, _ in guard.log] == ["reserve", "settle", "reserve", "settle"]
    assert guard.log[1] == ("settle", 120) and guard.log[3] == ("settle", 135)


def test_a_run_whose_next_call_a_budget_refuses_stops_budget_exceeded_with_its_tokens_so_far():
    model = ScriptedModel(wants(("t1", "calculator", {"expression": "1+1"}), tokens=(100, 20)), says("2"))
    guard = RecordingGuard(allowed=1)

    result = Agent(model=model).run("add", budget=guard)  # type: ignore[arg-type]

    assert result.status == AgentStatus.BUDGET_EXCEEDED
    assert result.budget is not None and result.budget.calls_before == 1
    assert result.usage.total_tokens == 120
    assert len(model.calls) == 1


def test_a_failed_model_call_gives_its_reservation_back():
    class Failing(ScriptedModel):
        def converse(self, **kwargs: Any) -> Any:
            raise RuntimeError("the model broke")

    guard = RecordingGuard(allowed=5)

    with pytest.raises(RuntimeError):
        Agent(model=Failing()).run("add", budget=guard)  # type: ignore[arg-type]

    assert [entry for entry in guard.log if entry[0] == "settle"] == [("settle", 0)]


@pytest.mark.parametrize(
    ("pattern", "path"),
    [("stateless", "/invoke"), ("stateful", "/sessions/{session_id}/messages"), ("async", "/tasks")],
)
def test_the_routes_that_run_a_model_document_429_budget_exceeded_with_retry_after(pattern, path):
    answer = openapi_documents()[pattern]["paths"][path]["post"]["responses"]["429"]

    assert "`budget_exceeded` (function)" in answer["description"]
    assert "Retry-After" in answer["headers"]
