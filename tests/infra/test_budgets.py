"""Daily budgets as infrastructure: the counters table, the grants and environment of the functions that call a
model, the app's context keys, cdk-nag and checkov, and declarations refused at synth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest

from agentrail_constructs import (
    PATTERN_STACKS,
    AsyncAgent,
    Budget,
    BudgetOptions,
    DailyBudgets,
    SessionOptions,
    StatefulAgent,
    StatelessAgent,
)
from agentrail_constructs.app_config import AppConfig
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.contract import BudgetLimit
from tests.infra.conftest import TEST_ENV, SynthesizedStack
from tests.infra.test_checkov import SKIPPABLE, run_checkov

BUDGETS = BudgetOptions(budgets=[Budget(per="tenant", daily_usd=5.0), Budget(per="agent", daily_tokens=2_000_000)])


@pytest.fixture(scope="module")
def async_with_budgets(app_factory: Callable[..., cdk.App]) -> SynthesizedStack:
    app = app_factory()
    return SynthesizedStack(PATTERN_STACKS["async"](app, "Budgets-async", env=TEST_ENV, budget_options=BUDGETS))


def test_a_stack_with_budgets_has_one_counters_table_on_demand_encrypted_with_ttl_and_point_in_time_recovery(
    async_with_budgets: SynthesizedStack,
) -> None:
    # Given the async stack with budgets, when its template is read,
    budgets = async_with_budgets.stack.budgets
    assert budgets is not None
    table = async_with_budgets.properties(budgets.table)
    # then the counters table is keyed by pk, billed on demand, expires counters by TTL, is encrypted and recoverable,
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    # and its name is an output, for `agentrail budgets`.
    outputs = async_with_budgets.template.to_json()["Outputs"]
    assert "BudgetTableName" in outputs


def test_every_function_that_calls_a_model_gets_the_budgets_and_only_update_and_get_on_the_counters(
    async_with_budgets: SynthesizedStack,
) -> None:
    stack = async_with_budgets
    agent = stack.stack.agent
    budgets = stack.stack.budgets
    table = stack.logical_id(budgets.table)
    calling = [agent.agent_function, agent.worker, agent.workflow.step_function, agent.approval_workflow.step_function]
    for function in calling:
        # Given a function whose code runs the agent (or refuses a task over budget), then it gets the budgets,
        environment = stack.environment(function)
        assert environment["AGENT_BUDGETS"] == (
            '[{"per":"tenant","unit":"usd","limit":5.0},{"per":"agent","unit":"tokens","limit":2000000}]'
        )
        assert table in str(environment["AGENT_BUDGET_TABLE"])
        # and may only reserve, settle and read counters on that table.
        assert {action for action, resource in stack.grants(function) if table in resource} == {
            "dynamodb:UpdateItem",
            "dynamodb:GetItem",
        }
    # The notifier calls no model: it gets neither.
    assert "AGENT_BUDGETS" not in stack.environment(agent.notifier)
    assert not {action for action, resource in stack.grants(agent.notifier) if table in resource}


def test_the_budgets_environment_a_construct_writes_loads_into_the_runtime_settings(
    async_with_budgets: SynthesizedStack,
) -> None:
    environment = async_with_budgets.environment(async_with_budgets.stack.agent.worker)

    settings = RuntimeSettings(budgets=environment["AGENT_BUDGETS"], budget_table="counters")

    assert settings.budgets == (BudgetLimit("tenant", "usd", 5.0), BudgetLimit("agent", "tokens", 2_000_000))


def test_a_stateless_agent_takes_budget_options_or_existing_budgets_shared_with_another_pattern(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> tuple[StatelessAgent, StatelessAgent, DailyBudgets]:
        shared = DailyBudgets(stack, "Shared", options=BUDGETS)
        return (
            StatelessAgent(stack, "One", existing_budgets=shared),
            StatelessAgent(stack, "Two", existing_budgets=shared),
            shared,
        )

    (one, two, shared), synthesized = synthesize(build)

    assert len(synthesized.of_type("AWS::DynamoDB::Table")) == 1
    table = synthesized.logical_id(shared.table)
    for agent in (one, two):
        assert table in str(synthesized.environment(agent.agent_function)["AGENT_BUDGET_TABLE"])


def test_a_stateful_and_an_async_agent_take_budget_options_for_every_function_that_calls_a_model(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> tuple[StatefulAgent, AsyncAgent]:
        stateful = StatefulAgent(stack, "Chat", session_options=SessionOptions(concurrency="enqueue"), budget_options=BUDGETS)
        return stateful, AsyncAgent(stack, "Jobs", budget_options=BUDGETS)

    (stateful, tasks), synthesized = synthesize(build)

    assert stateful.worker is not None and stateful.budgets is not None and tasks.budgets is not None
    for owner, functions in (
        (stateful, [stateful.agent_function, stateful.worker]),
        (tasks, [tasks.agent_function, tasks.worker]),
    ):
        table = synthesized.logical_id(owner.budgets.table)
        for function in functions:
            assert table in str(synthesized.environment(function)["AGENT_BUDGET_TABLE"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (BudgetOptions(budgets=[Budget(per="tenant")]), "has no limit: give daily_tokens, daily_usd or both"),
        (BudgetOptions(budgets=[Budget(per="tenant", daily_usd=0)]), "must be a number above zero"),
        (BudgetOptions(budgets=[Budget(per="agent", daily_tokens=-5)]), "must be a number above zero"),
        (BudgetOptions(budgets=[Budget(per="agent", daily_tokens=10), Budget(per="agent", daily_usd=1.0)]), "more than one"),
        (BudgetOptions(budgets=[Budget(per="team", daily_usd=1.0)]), "per tenant or per agent"),  # type: ignore[arg-type]
        (BudgetOptions(), "declares no budget"),
    ],
)
def test_a_bad_budget_declaration_fails_the_synth_naming_the_fix(
    app_factory: Callable[..., cdk.App], options: BudgetOptions, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PATTERN_STACKS["stateless"](app_factory(), "Bad", env=TEST_ENV, budget_options=options)


def test_budget_options_and_existing_budgets_together_are_refused_naming_the_fix(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> None:
        StatelessAgent(stack, "Agent", budget_options=BUDGETS, existing_budgets=DailyBudgets(stack, "Shared", options=BUDGETS))

    with pytest.raises(ValueError, match="pass either existing_budgets or budget_options, not both"):
        synthesize(build)


def test_the_apps_context_declares_budgets(app_factory: Callable[..., cdk.App]) -> None:
    app = app_factory(context={"budget_tenant_daily_usd": "2.5", "budget_agent_daily_tokens": "100000"})

    options = AppConfig.from_context(app, tuple(PATTERN_STACKS)).stack_options("stateless")

    assert options["budget_options"] == BudgetOptions(
        budgets=[Budget(per="tenant", daily_usd=2.5), Budget(per="agent", daily_tokens=100_000)]
    )


@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_a_budget_context_key_without_a_positive_number_is_refused(app_factory: Callable[..., cdk.App], value: str) -> None:
    app = app_factory(context={"budget_tenant_daily_usd": value})

    with pytest.raises(ValueError, match="above zero"):
        AppConfig.from_context(app, tuple(PATTERN_STACKS))


def test_a_stack_with_budgets_has_no_failed_checkov_check(real_app_variants: dict[str, Any]) -> None:
    # Given the real app's async stack with budgets (-c budget_tenant_daily_usd=... -c budget_agent_daily_tokens=...),
    pattern, assembly = real_app_variants["async-budgets"]
    template = assembly.template_path(assembly.pattern_stack_name(pattern))
    # when checkov scans it,
    results = run_checkov([template])[template.name]
    # then nothing fails, and every skip is one of the reviewed kinds.
    assert not results["failed"], [(c["check_id"], c["resource"]) for c in results["failed"]]
    assert {c["check_id"] for c in results["skipped"]} <= set(SKIPPABLE)
    assert any("CounterTable" in c["resource"] for c in results["passed"])
