"""One construct rule: ``<x>_options`` for what a construct creates, ``existing_<x>`` for what you bring.

Keywords renamed to follow it keep working for one release: each old name still
works and warns with the new name. Our own app uses only the new names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_events as events
from aws_cdk import aws_sqs as sqs

import agentrail_constructs
from agentrail_constructs import (
    PATTERN_STACKS,
    AgentApiOptions,
    AgentFunctionOptions,
    ApiAuth,
    ApprovalOptions,
    ApprovalWorkflow,
    AsyncAgent,
    AsyncAgentStack,
    HierarchicalAgents,
    HierarchicalStack,
    LongTaskWorkflow,
    LongTaskWorkflowOptions,
    MultiAgentStack,
    MultiAgentSystem,
    SessionOptions,
    SessionTable,
    SessionTableOptions,
    SpecialistOptions,
    StatefulAgent,
    StatefulAgentStack,
    StatelessAgent,
    StatelessAgentStack,
    TaskTable,
    TaskTableOptions,
)
from agentrail_constructs.renames import renamed_keywords

SPECIALISTS = (SpecialistOptions(name="billing", description="Billing questions and invoices.", agent_definition="m:billing"),)
FUNCTION = AgentFunctionOptions(max_steps=3)
API = AgentApiOptions(stage_name="v7")


def task_table(stack: cdk.Stack) -> TaskTable:
    return TaskTable(stack, "Tasks")


def same(value: Any) -> Callable[[Any], bool]:
    return lambda used: used is value


def max_steps_of(value: AgentFunctionOptions) -> Callable[[Any], bool]:
    """Workflow steps get the options with their own timeout: the rest must be the caller's."""
    return lambda used: used.max_steps == value.max_steps


Build = Callable[[cdk.Stack, dict[str, Any]], Any]
#: (owner, build with extra keywords, old keyword, new keyword, value, the option as the construct used it, check).
ALIASES: list[tuple[str, Build, str, str, Callable[[cdk.Stack], Any], Callable[[Any], Any], Callable[[Any], Callable[[Any], bool]]]] = [
    ("StatelessAgent", lambda s, kw: StatelessAgent(s, "A", **kw), "function", "function_options", lambda s: FUNCTION,
     lambda a: a.agent_function.options, same),
    ("StatelessAgent", lambda s, kw: StatelessAgent(s, "A", **kw), "api", "api_options", lambda s: API, lambda a: a.api.options, same),
    ("StatefulAgent", lambda s, kw: StatefulAgent(s, "A", **kw), "function", "function_options", lambda s: FUNCTION,
     lambda a: a.agent_function.options, same),
    ("StatefulAgent", lambda s, kw: StatefulAgent(s, "A", **kw), "sessions", "session_options",
     lambda s: SessionOptions(window_turns=7), lambda a: a.session_options, same),
    ("StatefulAgent", lambda s, kw: StatefulAgent(s, "A", **kw), "session_table", "existing_session_table",
     lambda s: SessionTable(s, "Mine"), lambda a: a.session_table, same),
    ("StatefulAgent", lambda s, kw: StatefulAgent(s, "A", **kw), "table_options", "session_table_options",
     lambda s: SessionTableOptions(offload_large_turns=False), lambda a: a.session_table.offload_bucket, lambda v: lambda used: used is None),
    ("StatefulAgent", lambda s, kw: StatefulAgent(s, "A", **kw), "api", "api_options", lambda s: API, lambda a: a.api.options, same),
    ("AsyncAgent", lambda s, kw: AsyncAgent(s, "A", **kw), "function", "function_options", lambda s: FUNCTION,
     lambda a: a.agent_function.options, same),
    ("AsyncAgent", lambda s, kw: AsyncAgent(s, "A", **kw), "worker_function", "worker_function_options", lambda s: FUNCTION,
     lambda a: a.worker.options, same),
    ("AsyncAgent", lambda s, kw: AsyncAgent(s, "A", **kw), "task_table", "existing_task_table", task_table,
     lambda a: a.task_table, same),
    ("AsyncAgent", lambda s, kw: AsyncAgent(s, "A", **kw), "table_options", "task_table_options",
     lambda s: TaskTableOptions(retention=Duration.days(3)), lambda a: a.task_table.options, same),
    ("AsyncAgent", lambda s, kw: AsyncAgent(s, "A", **kw), "long_tasks", "long_task_options", lambda s: LongTaskWorkflowOptions(),
     lambda a: a.workflow.options, same),
    ("AsyncAgent", lambda s, kw: AsyncAgent(s, "A", **kw), "approvals", "approval_options", lambda s: ApprovalOptions(),
     lambda a: a.approval_workflow.options, same),
    ("AsyncAgent", lambda s, kw: AsyncAgent(s, "A", **kw), "api", "api_options", lambda s: API, lambda a: a.api.options, same),
    ("TaskTable", lambda s, kw: TaskTable(s, "T", **kw), "options", "table_options", lambda s: TaskTableOptions(retention=Duration.days(3)),
     lambda t: t.options, same),
    ("LongTaskWorkflow", lambda s, kw: LongTaskWorkflow(s, "W", task_table=task_table(s), **kw), "function", "function_options",
     lambda s: FUNCTION, lambda w: w.step_function.options, max_steps_of),
    ("ApprovalWorkflow", lambda s, kw: ApprovalWorkflow(s, "W", task_table=task_table(s), event_bus=events.EventBus(s, "B"), **kw),
     "function", "function_options", lambda s: FUNCTION, lambda w: w.step_function.options, max_steps_of),
    ("MultiAgentSystem", lambda s, kw: MultiAgentSystem(s, "M", specialists=SPECIALISTS, **kw), "function", "function_options",
     lambda s: FUNCTION, lambda m: m.tasks.agent_function.options, same),
    ("MultiAgentSystem", lambda s, kw: MultiAgentSystem(s, "M", specialists=SPECIALISTS, **kw), "api", "api_options",
     lambda s: API, lambda m: m.api.options, same),
    ("HierarchicalAgents", lambda s, kw: HierarchicalAgents(s, "H", tasks=AsyncAgent(s, "A"), **kw), "function", "function_options",
     lambda s: FUNCTION, lambda h: h.function.options, max_steps_of),
]  # fmt: skip


@pytest.mark.parametrize(
    ("owner", "build", "old", "new", "value_in", "used", "check"), ALIASES, ids=[f"{a[0]}-{a[2]}" for a in ALIASES]
)
def test_an_old_keyword_still_works_and_warns_with_its_new_name(
    stack: cdk.Stack, owner: str, build: Build, old: str, new: str, value_in: Any, used: Any, check: Any
) -> None:
    value = value_in(stack)

    with pytest.warns(DeprecationWarning, match=rf"{owner}\({old}=\.\.\.\) is deprecated .* use {new}=\.\.\."):
        built = build(stack, {old: value})

    assert check(value)(used(built))


#: (stack class, old keyword, new keyword, value, the option as the stack's construct used it).
STACK_ALIASES: list[tuple[type[cdk.Stack], str, str, Any, Callable[[Any], Any]]] = [
    (StatelessAgentStack, "function", "function_options", FUNCTION, lambda s: s.agent.agent_function.options),
    (StatelessAgentStack, "api", "api_options", API, lambda s: s.agent.api.options),
    (StatefulAgentStack, "function", "function_options", FUNCTION, lambda s: s.agent.agent_function.options),
    (StatefulAgentStack, "api", "api_options", API, lambda s: s.agent.api.options),
    (StatefulAgentStack, "sessions", "session_options", SessionOptions(window_turns=7), lambda s: s.agent.session_options),
    (StatefulAgentStack, "table_options", "session_table_options", SessionTableOptions(),
     lambda s: s.agent.session_table.options),
    (AsyncAgentStack, "function", "function_options", FUNCTION, lambda s: s.agent.agent_function.options),
    (AsyncAgentStack, "api", "api_options", API, lambda s: s.agent.api.options),
    (AsyncAgentStack, "long_tasks", "long_task_options", LongTaskWorkflowOptions(slice_steps=3), lambda s: s.agent.workflow.options),
    (AsyncAgentStack, "approvals", "approval_options", ApprovalOptions(slice_steps=3), lambda s: s.agent.approval_workflow.options),
    (MultiAgentStack, "function", "function_options", FUNCTION, lambda s: s.system.tasks.agent_function.options),
    (MultiAgentStack, "api", "api_options", API, lambda s: s.system.api.options),
    (HierarchicalStack, "function", "function_options", FUNCTION, lambda s: s.tasks.agent_function.options),
    (HierarchicalStack, "api", "api_options", API, lambda s: s.tasks.api.options),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stack_class", "old", "new", "value", "used"), STACK_ALIASES, ids=[f"{a[0].__name__}-{a[1]}" for a in STACK_ALIASES]
)
def test_an_old_keyword_of_a_pattern_stack_still_works_and_warns_with_its_new_name(
    app_factory: Callable[..., cdk.App], stack_class: type[cdk.Stack], old: str, new: str, value: Any, used: Any
) -> None:
    with pytest.warns(DeprecationWarning, match=rf"{stack_class.__name__}\({old}=\.\.\.\) is deprecated .* use {new}=\.\.\."):
        built = stack_class(app_factory(), "Pattern", **{old: value})

    assert used(built) is value


@pytest.mark.parametrize(
    ("options_class", "old", "new"),
    [(LongTaskWorkflowOptions, "timeout", "execution_timeout"), (ApprovalOptions, "timeout", "decision_timeout")],
)
def test_an_options_field_renamed_for_one_meaning_per_word_still_works_and_warns(options_class: type, old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=rf"{options_class.__name__}\({old}=\.\.\.\) is deprecated .* use {new}=\.\.\."):
        options = options_class(**{old: Duration.hours(5)})

    assert getattr(options, new).to_hours() == 5


def test_the_old_specialist_name_still_imports_the_specialist_options_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match="Specialist is deprecated .* use SpecialistOptions"):
        old = agentrail_constructs.Specialist

    assert old is SpecialistOptions
    assert "Specialist" not in agentrail_constructs.__all__


def test_the_warning_points_at_the_callers_line_so_python_shows_it_outside_tests(stack: cdk.Stack) -> None:
    # Python shows a DeprecationWarning by default only when it is attributed to the caller's own code (not jsii's).
    with pytest.warns(DeprecationWarning, match="function_options=") as construct_warning:
        StatelessAgent(stack, "A", function=FUNCTION)
    with pytest.warns(DeprecationWarning, match="decision_timeout=") as options_warning:
        ApprovalOptions(timeout=Duration.days(1))
    with pytest.warns(DeprecationWarning, match="SpecialistOptions") as class_warning:
        agentrail_constructs.Specialist  # noqa: B018 - the attribute access is what warns

    assert [w.filename for w in (*construct_warning, *options_warning, *class_warning)] == [__file__] * 3


def test_an_old_and_a_new_name_together_are_refused_naming_the_fix(stack: cdk.Stack) -> None:
    with pytest.raises(TypeError, match=r"StatelessAgent: pass function_options= only; function= is its deprecated name"):
        StatelessAgent(stack, "A", function=FUNCTION, function_options=FUNCTION)


def test_the_shared_helper_renames_only_what_it_was_told() -> None:
    class Thing:
        @renamed_keywords(old="new")
        def __init__(self, *, new: int = 0, other: int = 0) -> None:
            self.new, self.other = new, other

    thing = Thing(other=2)

    assert (thing.new, thing.other) == (0, 2)


# -- existing_<x>: what you bring is used, nothing is created in its place -----------------------


def test_an_async_agent_given_a_queue_consumes_and_sends_to_it_and_creates_no_task_queue(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> tuple[AsyncAgent, sqs.Queue]:
        mine = sqs.Queue(stack, "MyQueue", enforce_ssl=True)
        return AsyncAgent(stack, "Agent", existing_queue=mine), mine

    (agent, mine), synth = synthesize(build)

    assert agent.queue is mine and agent.dead_letter_queue is None
    queue_id = synth.logical_id(mine)
    mappings = synth.of_type("AWS::Lambda::EventSourceMapping")
    assert [m["EventSourceArn"] for m in mappings.values() if "EventSourceArn" in m] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
    assert synth.environment(agent.agent_function)["AGENT_TASK_QUEUE_URL"] == {"Ref": queue_id}
    assert not [lid for lid in synth.of_type("AWS::SQS::Queue") if lid.startswith("AgentTaskQueue")]


def test_an_async_agent_given_an_event_bus_announces_tasks_on_it_and_creates_no_bus(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> tuple[AsyncAgent, events.IEventBus]:
        mine = events.EventBus.from_event_bus_name(stack, "Shared", "shared-bus")
        return AsyncAgent(stack, "Agent", existing_event_bus=mine), mine

    (agent, mine), synth = synthesize(build)

    assert agent.event_bus is mine
    assert synth.of_type("AWS::Events::EventBus") == {}
    assert synth.environment(agent.worker)["AGENT_TASK_EVENT_BUS"] == "shared-bus"
    assert [rule["EventBusName"] for rule in synth.of_type("AWS::Events::Rule").values()] == ["shared-bus"]


def test_an_existing_task_table_together_with_task_table_options_is_refused(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="pass either existing_task_table or task_table_options, not both"):
        AsyncAgent(stack, "A", existing_task_table=task_table(stack), task_table_options=TaskTableOptions())


# -- our own app uses the new names ------------------------------------------------------------


def test_our_app_synthesizes_every_pattern_with_deprecation_warnings_as_errors(real_app_strict: Any) -> None:
    # real_app_strict runs app.py with PYTHONWARNINGS=error::DeprecationWarning: an old name anywhere fails the synth.
    real_app_strict.assert_synthesized()

    assert {p.name for p in real_app_strict.outdir.glob("*.template.json")} == {
        f"{real_app_strict.pattern_stack_name(pattern)}.template.json" for pattern in PATTERN_STACKS
    }


# -- existing_rest_api ---------------------------------------------------------------------------


def test_an_agent_given_a_rest_api_adds_its_routes_there_and_creates_no_api_or_stage(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> tuple[StatelessAgent, apigw.RestApi]:
        mine = apigw.RestApi(stack, "Mine", deploy_options=apigw.StageOptions(stage_name="prod"))
        return StatelessAgent(stack, "Agent", existing_rest_api=mine), mine

    (agent, mine), synth = synthesize(build)

    assert agent.rest_api is mine and agent.api.access_log_group is None
    assert list(synth.of_type("AWS::ApiGateway::RestApi")) == [synth.logical_id(mine)]
    assert [stage["StageName"] for stage in synth.of_type("AWS::ApiGateway::Stage").values()] == ["prod"]
    assert ("POST", "/invoke") in synth.routes()
    assert all(
        method["RestApiId"] == {"Ref": synth.logical_id(mine)} for method in synth.of_type("AWS::ApiGateway::Method").values()
    )


def test_stage_options_together_with_an_existing_rest_api_are_refused_naming_the_fix(stack: cdk.Stack) -> None:
    mine = apigw.RestApi(stack, "Mine")

    with pytest.raises(ValueError, match="stage_name configure the stage of a new REST API; with existing_rest_api, set them"):
        StatelessAgent(stack, "Agent", existing_rest_api=mine, api_options=AgentApiOptions(stage_name="v2"))


def test_auth_options_apply_to_the_routes_on_an_existing_rest_api(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> StatelessAgent:
        mine = apigw.RestApi(stack, "Mine")
        return StatelessAgent(
            stack, "Agent", existing_rest_api=mine, api_options=AgentApiOptions(auth=ApiAuth.api_key(single_tenant=True))
        )

    _, synth = synthesize(build)

    assert synth.routes()[("POST", "/invoke")]["ApiKeyRequired"] is True
    assert len(synth.of_type("AWS::ApiGateway::UsagePlan")) == 1


def test_a_multi_agent_system_passes_what_you_bring_to_its_task_api(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> tuple[MultiAgentSystem, tuple[Any, ...]]:
        bus = events.EventBus.from_event_bus_name(stack, "Shared", "shared-bus")
        queue = sqs.Queue(stack, "MyQueue", enforce_ssl=True)
        api = apigw.RestApi(stack, "Mine", deploy_options=apigw.StageOptions(stage_name="prod"))
        table = task_table(stack)
        system = MultiAgentSystem(
            stack,
            "Team",
            specialists=SPECIALISTS,
            existing_task_table=table,
            existing_queue=queue,
            existing_event_bus=bus,
            existing_rest_api=api,
        )
        return system, (table, queue, bus, api)

    (system, (table, queue, bus, api)), synth = synthesize(build)

    assert system.tasks.task_table is table and system.tasks.queue is queue and system.tasks.event_bus is bus
    assert system.tasks.rest_api is api
    assert list(synth.of_type("AWS::ApiGateway::RestApi")) == [synth.logical_id(api)]
    assert synth.of_type("AWS::Events::EventBus") == {}
    assert synth.environment(system.router)["AGENT_TASK_EVENT_BUS"] == "shared-bus"


def test_a_multi_agent_system_refuses_an_existing_task_table_with_task_table_options(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="pass either existing_task_table or task_table_options, not both"):
        MultiAgentSystem(
            stack, "Team", specialists=SPECIALISTS, existing_task_table=task_table(stack), task_table_options=TaskTableOptions()
        )
