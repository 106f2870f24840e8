"""Daily budgets as infrastructure: the counters table, the grants and environment of the functions that call a
model, the app's context keys, cdk-nag and checkov, and declarations refused at synth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest

from agentrail_constructs import (
    PATTERN_STACKS,
    AgentApi,
    AgentFunction,
    AsyncAgent,
    Budget,
    BudgetOptions,
    DailyBudgets,
    ErasureOptions,
    HierarchicalAgents,
    MultiAgentSystem,
    SessionOptions,
    SpecialistOptions,
    StatefulAgent,
    StatelessAgent,
)
from agentrail_constructs.app_config import AppConfig
from agentrail_constructs.erasure import serve_erasure
from agentrail_constructs.sources import handler_dir
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.contract import BudgetLimit
from agentrail_runtime.service import AgentService
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
        # and may only reserve, settle and read counters on that table (and delete a tenant's, for erasure).
        assert {action for action, resource in stack.grants(function) if table in resource} == {
            "dynamodb:UpdateItem",
            "dynamodb:GetItem",
        } | erases(environment)
    # The notifier calls no model: it gets neither.
    assert "AGENT_BUDGETS" not in stack.environment(agent.notifier)
    assert not {action for action, resource in stack.grants(agent.notifier) if table in resource}


def test_the_budgets_environment_a_construct_writes_loads_into_the_runtime_settings(
    async_with_budgets: SynthesizedStack,
) -> None:
    environment = async_with_budgets.environment(async_with_budgets.stack.agent.worker)

    settings = RuntimeSettings(budgets=environment["AGENT_BUDGETS"], budget_table="counters")

    assert settings.budgets == (BudgetLimit("tenant", "usd", 5.0), BudgetLimit("agent", "tokens", 2_000_000))


def test_the_counter_retention_a_construct_writes_reaches_the_runtime_budgets(
    synthesize: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stateless agent whose counters are kept 10 days after their day
    options = BudgetOptions(budgets=[Budget(per="tenant", daily_tokens=1_000)], counter_retention_days=10)
    agent, synthesized = synthesize(lambda stack: StatelessAgent(stack, "Agent", budget_options=options))

    # When its function's budget environment loads into the runtime
    environment = synthesized.environment(agent.agent_function)
    for name, value in environment.items():
        if name.startswith("AGENT_BUDGET") and isinstance(value, str):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AGENT_BUDGET_TABLE", "counters")
    service = AgentService.from_settings(RuntimeSettings())

    # Then its daily budgets write counters that live 10 days after their day
    assert service.budgets is not None
    assert service.budgets.retention_days == 10


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


def budget_grants(stack: SynthesizedStack, function: AgentFunction, budgets: DailyBudgets) -> set[str]:
    """The actions ``function`` may take on ``budgets``' counters table."""
    table = stack.logical_id(budgets.table)
    return {action for action, resource in stack.grants(function) if table in resource}


def enforces(stack: SynthesizedStack, function: AgentFunction, budgets: DailyBudgets) -> bool:
    """Whether ``function`` has the budgets' environment and exactly UpdateItem and GetItem on their counters (and
    DeleteItem for the API function that serves erasure)."""
    environment = stack.environment(function)
    if "AGENT_BUDGETS" not in environment:
        assert not budget_grants(stack, function, budgets), "a grant on the counters without the budgets' environment"
        return False
    assert environment["AGENT_BUDGETS"] == budgets.environment["AGENT_BUDGETS"]
    assert stack.logical_id(budgets.table) in str(environment["AGENT_BUDGET_TABLE"])
    assert budget_grants(stack, function, budgets) == {"dynamodb:UpdateItem", "dynamodb:GetItem"} | erases(environment)
    return True


def erases(environment: dict[str, Any]) -> set[str]:
    """DeleteItem on the counters for the API function that serves ``POST /erase`` (it deletes a tenant's counters)."""
    return {"dynamodb:DeleteItem"} if "AGENT_ERASE_OPERATOR_GROUP" in environment else set()


def counters_tables(stack: SynthesizedStack) -> list[str]:
    """The logical ids of the stack's budget counters tables (partition key ``pk``, TTL on ``expires_at``)."""
    return [
        lid
        for lid, table in stack.of_type("AWS::DynamoDB::Table").items()
        if table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
        and table.get("TimeToLiveSpecification", {}).get("AttributeName") == "expires_at"
    ]


def agent_functions(stack: SynthesizedStack) -> dict[str, AgentFunction]:
    """Every AgentFunction of the stack, by its path in the stack."""
    prefix = f"{stack.stack.node.path}/"
    return {f.node.path.removeprefix(prefix): f for f in stack.stack.node.find_all() if isinstance(f, AgentFunction)}


#: The functions of each multi-agent pattern stack whose code calls a model (or refuses POST /tasks over budget).
MODEL_CALLERS = {
    "multiagent": {
        "Team/Tasks/Agent",
        "Team/Tasks/Worker",
        *(f"Team/Specialist{n}" for n in ("Billing", "Technical", "Account")),
    },
    "hierarchical": {"Tasks/Agent", "Tasks/Worker", "Supervisor/Steps"},
}


@pytest.mark.parametrize("pattern", sorted(MODEL_CALLERS))
def test_a_multi_agent_pattern_stack_with_budgets_enforces_them_in_exactly_the_functions_that_call_a_model(
    app_factory: Callable[..., cdk.App], pattern: str
) -> None:
    # Given a multi-agent pattern stack with daily budgets,
    stack = SynthesizedStack(PATTERN_STACKS[pattern](app_factory(), f"Budgets-{pattern}", env=TEST_ENV, budget_options=BUDGETS))
    budgets = stack.stack.budgets
    assert budgets is not None
    # when each of its functions is read, then exactly those that call a model enforce them (the orchestrator and the
    # notifier call none).
    functions = agent_functions(stack)
    assert {path for path, function in functions.items() if enforces(stack, function, budgets)} == MODEL_CALLERS[pattern]


SPECIALISTS = (
    SpecialistOptions(name="billing", description="Billing questions and invoices.", agent_definition="m:billing"),
    SpecialistOptions(name="technical", description="Errors, outages and the api.", agent_definition="m:technical"),
)


def test_a_multi_agent_system_takes_budget_options_for_its_task_api_router_and_specialists_not_its_orchestrator(
    synthesize: Any,
) -> None:
    # Given a MultiAgentSystem given budget_options, when it is synthesized,
    (system,), stack = synthesize(lambda s: (MultiAgentSystem(s, "Team", specialists=SPECIALISTS, budget_options=BUDGETS),))

    # then it owns one counters table, enforced by the functions that call a model and by no other.
    assert system.budgets is not None and system.budgets.node.scope is system
    assert counters_tables(stack) == [stack.logical_id(system.budgets.table)]
    calling = [system.tasks.agent_function, system.router, *system.specialists.values()]
    assert all(enforces(stack, function, system.budgets) for function in calling)
    assert not enforces(stack, system.orchestrator, system.budgets)
    assert not enforces(stack, system.tasks.notifier, system.budgets)


def test_a_multi_agent_system_takes_existing_budgets_shared_with_another_pattern(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> tuple[MultiAgentSystem, StatelessAgent, DailyBudgets]:
        shared = DailyBudgets(stack, "Shared", options=BUDGETS)
        team = MultiAgentSystem(stack, "Team", specialists=SPECIALISTS, existing_budgets=shared)
        return team, StatelessAgent(stack, "Agent", existing_budgets=shared), shared

    (team, agent, shared), stack = synthesize(build)

    assert team.budgets is shared
    assert all(enforces(stack, f, shared) for f in (team.router, *team.specialists.values(), agent.agent_function))
    assert not enforces(stack, team.orchestrator, shared)


def test_hierarchical_agents_take_budget_options_for_the_supervisor_and_workers_step_function(synthesize: Any) -> None:
    # Given HierarchicalAgents given budget_options over an AsyncAgent without budgets,
    def build(stack: cdk.Stack) -> tuple[HierarchicalAgents, AsyncAgent]:
        tasks = AsyncAgent(stack, "Tasks")
        return HierarchicalAgents(stack, "Research", tasks=tasks, budget_options=BUDGETS), tasks

    (hierarchy, tasks), stack = synthesize(build)

    # then its step function (every supervisor and worker call) enforces them, and the AsyncAgent's functions do not.
    assert hierarchy.budgets is not None and hierarchy.budgets.node.scope is hierarchy
    assert enforces(stack, hierarchy.function, hierarchy.budgets)
    assert not any(enforces(stack, f, hierarchy.budgets) for f in (tasks.agent_function, tasks.worker, tasks.notifier))


def test_hierarchical_agents_share_the_budgets_of_their_task_api_by_default(synthesize: Any) -> None:
    # Given an AsyncAgent with budgets, and HierarchicalAgents over it given none,
    def build(stack: cdk.Stack) -> tuple[HierarchicalAgents, AsyncAgent]:
        tasks = AsyncAgent(stack, "Tasks", budget_options=BUDGETS)
        return HierarchicalAgents(stack, "Research", tasks=tasks), tasks

    (hierarchy, tasks), stack = synthesize(build)

    # then the step function counts against the same counters as POST /tasks.
    assert tasks.budgets is not None and hierarchy.budgets is tasks.budgets
    assert counters_tables(stack) == [stack.logical_id(tasks.budgets.table)]
    assert enforces(stack, hierarchy.function, tasks.budgets) and enforces(stack, tasks.agent_function, tasks.budgets)


def test_hierarchical_agents_refuse_budget_options_over_a_task_api_that_has_budgets_naming_the_fix(stack: cdk.Stack) -> None:
    tasks = AsyncAgent(stack, "Tasks", budget_options=BUDGETS)

    with pytest.raises(ValueError, match=r"tasks already enforces daily budgets.*drop budget_options, or pass existing_budgets"):
        HierarchicalAgents(stack, "Research", tasks=tasks, budget_options=BUDGETS)


@pytest.mark.parametrize("construct", ["MultiAgentSystem", "HierarchicalAgents"])
def test_a_multi_agent_construct_given_budget_options_and_existing_budgets_is_refused_naming_the_fix(
    stack: cdk.Stack, construct: str
) -> None:
    both = {"budget_options": BUDGETS, "existing_budgets": DailyBudgets(stack, "Shared", options=BUDGETS)}
    builds: dict[str, Callable[[], Any]] = {
        "MultiAgentSystem": lambda: MultiAgentSystem(stack, "Team", specialists=SPECIALISTS, **both),
        "HierarchicalAgents": lambda: HierarchicalAgents(stack, "Research", tasks=AsyncAgent(stack, "Tasks"), **both),
    }

    with pytest.raises(ValueError, match="pass either existing_budgets or budget_options, not both"):
        builds[construct]()


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


@pytest.mark.parametrize("variant", ["async-budgets", "multiagent-budgets", "hierarchical-budgets"])
def test_a_stack_with_budgets_has_no_failed_checkov_check(real_app_variants: dict[str, Any], variant: str) -> None:
    # Given the real app's stack with budgets (-c budget_tenant_daily_usd=... -c budget_agent_daily_tokens=...),
    pattern, assembly = real_app_variants[variant]
    template = assembly.template_path(assembly.pattern_stack_name(pattern))
    # when checkov scans it,
    results = run_checkov([template])[template.name]
    # then nothing fails, and every skip is one of the reviewed kinds.
    assert not results["failed"], [(c["check_id"], c["resource"]) for c in results["failed"]]
    assert {c["check_id"] for c in results["skipped"]} <= set(SKIPPABLE)
    assert any("CounterTable" in c["resource"] for c in results["passed"])


@pytest.mark.parametrize("budgets_first", [True, False])
def test_a_function_that_serves_erasure_may_delete_counters_whichever_it_was_given_first(app_factory, budgets_first):
    # given a hand-wired function whose budgets are enforced before, or after, POST /erase is routed to it
    stack = cdk.Stack(app_factory(), "HandWired", env=TEST_ENV)
    agent = AgentFunction(stack, "Agent", handler_code=handler_dir("stateless"))
    budgets = DailyBudgets(stack, "Budgets", options=BUDGETS)
    api = AgentApi(stack, "Api")
    steps = [lambda: budgets.enforce_on(agent), lambda: serve_erasure(api, agent, agent.alias, ErasureOptions())]
    for step in steps if budgets_first else reversed(steps):
        step()

    # then either way it may delete a tenant's counters, besides reserving and settling
    grants = budget_grants(SynthesizedStack(stack), agent, budgets)
    assert grants == {"dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:DeleteItem"}
