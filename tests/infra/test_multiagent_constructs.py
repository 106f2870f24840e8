"""MultiAgentSystem (router, specialists, orchestrator) and HierarchicalAgents (supervisor and workers)."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration

from agentrail_constructs import (
    AsyncAgent,
    HierarchicalAgents,
    HierarchicalOptions,
    MultiAgentOptions,
    MultiAgentSystem,
    SpecialistOptions,
    TaskTableOptions,
)

QUEUE_SEND = "sqs:SendMessage"


def specialist(
    name: str, *, handoffs: tuple[str, ...] = (), max_concurrency: int = 5, description: str | None = None
) -> SpecialistOptions:
    return SpecialistOptions(
        name=name,
        description=description or f"Questions about {name}, routed here by the router.",
        agent_definition=f"agentrail_runtime.demo_team:{name}",
        handoffs=handoffs,
        max_concurrency=max_concurrency,
    )


#: A team whose specialists each have their own concurrency, so a mix-up shows.
TEAM = (
    specialist("billing", handoffs=("account",), max_concurrency=3),
    specialist("technical", max_concurrency=7),
    specialist("account", handoffs=("billing",), max_concurrency=11),
)


@pytest.fixture(scope="module")
def team(synthesize: Any) -> tuple[MultiAgentSystem, Any]:
    """A MultiAgentSystem with ``TEAM``, a fallback and spend limits."""
    options = MultiAgentOptions(fallback="technical", max_hops=3, max_task_tokens=50_000, max_task_usd=0.5)
    return synthesize(lambda stack: MultiAgentSystem(stack, "Team", specialists=TEAM, options=options))


@pytest.fixture(scope="module")
def hierarchical(pattern_stacks: dict[str, Any]) -> Any:
    """The hierarchical pattern stack (its ``research`` tasks run the supervisor workflow)."""
    return pattern_stacks["hierarchical"]


def text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def queue_arn(synth: Any, queue: Any) -> str:
    return text({"Fn::GetAtt": [synth.logical_id(queue), "Arn"]})


def mapping_from(synth: Any, queue: Any) -> dict[str, Any]:
    arn = {"Fn::GetAtt": [synth.logical_id(queue), "Arn"]}
    found = [p for p in synth.of_type("AWS::Lambda::EventSourceMapping").values() if p["EventSourceArn"] == arn]
    assert len(found) == 1, f"expected one mapping from {queue.node.path}, found {len(found)}"
    return found[0]


def may_send_to(synth: Any, agent_function: Any) -> set[str]:
    """Logical ids of the queues ``agent_function`` may send to."""
    queues = set(synth.of_type("AWS::SQS::Queue"))
    return {
        lid
        for action, resource in synth.grants(agent_function)
        if action == QUEUE_SEND
        for lid in queues
        if resource == text({"Fn::GetAtt": [lid, "Arn"]})
    }


# -- specialists scale and fail on their own -------------------------------------------------


@pytest.mark.parametrize("spec", TEAM, ids=lambda s: s.name)
def test_each_specialist_has_its_own_queue_with_a_dead_letter_queue(
    team: tuple[MultiAgentSystem, Any], spec: SpecialistOptions
) -> None:
    system, synth = team
    queues = system.specialist_queues[spec.name]

    props = synth.properties(queues.queue)

    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [synth.logical_id(queues.dead_letter_queue), "Arn"]},
        "maxReceiveCount": 5,
    }
    others = [system.specialist_queues[s.name].queue for s in TEAM if s.name != spec.name]
    assert synth.logical_id(queues.queue) not in {synth.logical_id(q) for q in others}


@pytest.mark.parametrize("spec", TEAM, ids=lambda s: s.name)
def test_each_specialist_consumes_its_queue_on_its_live_alias_with_its_own_concurrency(
    team: tuple[MultiAgentSystem, Any], spec: SpecialistOptions
) -> None:
    system, synth = team

    mapping = mapping_from(synth, system.specialist_queues[spec.name].queue)

    assert f'"Ref": "{synth.logical_id(system.specialists[spec.name].alias)}"' in text(mapping["FunctionName"])
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": spec.max_concurrency}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_router_consumes_the_task_queue_and_the_orchestrator_the_outcomes_queue(team: tuple[MultiAgentSystem, Any]) -> None:
    system, synth = team

    router = mapping_from(synth, system.tasks.queue)
    orchestrator = mapping_from(synth, system.orchestrator_queue)

    assert f'"Ref": "{synth.logical_id(system.router.alias)}"' in text(router["FunctionName"])
    assert f'"Ref": "{synth.logical_id(system.orchestrator.alias)}"' in text(orchestrator["FunctionName"])
    assert orchestrator["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "MaximumConcurrency" in orchestrator["ScalingConfig"]


def test_demo_team_has_a_queue_per_specialist_in_the_multiagent_pattern(pattern_stacks: dict[str, Any]) -> None:
    system = pattern_stacks["multiagent"].stack.system

    assert sorted(system.specialist_queues) == ["account", "billing", "technical"]
    assert sorted(system.specialists) == ["account", "billing", "technical"]


# -- who may hand off to whom ----------------------------------------------------------------


def test_specialist_may_send_only_to_its_handoffs_and_the_orchestrator(team: tuple[MultiAgentSystem, Any]) -> None:
    system, synth = team
    queue = {name: synth.logical_id(q.queue) for name, q in system.specialist_queues.items()}
    orchestrator = synth.logical_id(system.orchestrator_queue)

    assert may_send_to(synth, system.specialists["billing"]) == {queue["account"], orchestrator}
    assert may_send_to(synth, system.specialists["account"]) == {queue["billing"], orchestrator}
    assert may_send_to(synth, system.specialists["technical"]) == {orchestrator}


def test_router_may_send_to_every_specialist_and_the_orchestrator(team: tuple[MultiAgentSystem, Any]) -> None:
    system, synth = team

    expected = {synth.logical_id(q.queue) for q in system.specialist_queues.values()} | {
        synth.logical_id(system.orchestrator_queue)
    }

    assert may_send_to(synth, system.router) == expected


def test_every_member_is_told_the_team_its_handoffs_and_the_orchestrator_queue(team: tuple[MultiAgentSystem, Any]) -> None:
    system, synth = team
    members = {"router": system.router, **system.specialists}
    expected_handoffs = {
        "router": ["billing", "technical", "account"],
        "billing": ["account"],
        "technical": [],
        "account": ["billing"],
    }
    orchestrator_url = synth.render({"Ref": synth.logical_id(system.orchestrator_queue)})

    for name, member in members.items():
        environment = synth.render(synth.environment(member))
        catalog = json.loads(environment["AGENT_MULTI_SPECIALISTS"])
        assert environment["AGENT_MULTI_AGENT_NAME"] == name
        assert json.loads(environment["AGENT_MULTI_HANDOFFS"]) == expected_handoffs[name]
        assert environment["AGENT_MULTI_ORCHESTRATOR_QUEUE_URL"] == orchestrator_url
        assert [(s["name"], s["queue_url"]) for s in catalog] == [
            (spec.name, synth.render({"Ref": synth.logical_id(system.specialist_queues[spec.name].queue)})) for spec in TEAM
        ]
        assert environment["AGENT_MULTI_MAX_HOPS"] == "3"
        assert environment["AGENT_MULTI_MAX_TASK_TOKENS"] == "50000"
        assert environment["AGENT_MULTI_MAX_TASK_USD"] == "0.5"


def test_fallback_specialist_is_named_to_the_router(team: tuple[MultiAgentSystem, Any]) -> None:
    system, synth = team

    assert synth.environment(system.router)["AGENT_MULTI_FALLBACK"] == "technical"
    assert "AGENT_MULTI_FALLBACK" not in synth.environment(system.specialists["billing"])


@pytest.mark.parametrize("member", ["router", "billing"])
def test_synthesized_team_environment_is_accepted_by_the_runtime_settings(
    team: tuple[MultiAgentSystem, Any], member: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The construct writes AGENT_MULTI_* and the runtime reads them: a rename on either side breaks here.
    from agentrail_runtime.multiagent.settings import MultiAgentSettings

    system, synth = team
    agent_function = system.router if member == "router" else system.specialists[member]
    for name, value in synth.render(synth.environment(agent_function)).items():
        monkeypatch.setenv(name, value)

    settings = MultiAgentSettings()

    assert settings.agent_name == member
    assert [s.name for s in settings.specialists] == [s.name for s in TEAM]
    assert settings.max_hops == 3


def test_specialists_and_orchestrator_record_on_the_task_table(team: tuple[MultiAgentSystem, Any]) -> None:
    system, synth = team
    table = text({"Fn::GetAtt": [synth.logical_id(system.tasks.task_table.table), "Arn"]})

    for member in (system.orchestrator, *system.specialists.values()):
        assert ("dynamodb:PutItem", table) in synth.grants(member), member.node.path
        assert synth.environment(member)["AGENT_TASK_TABLE"] == {"Ref": synth.logical_id(system.tasks.task_table.table)}


# -- validation ------------------------------------------------------------------------------


def test_unknown_handoff_fails_naming_it_and_the_known_specialists(stack: cdk.Stack) -> None:
    team = (specialist("billing", handoffs=("acount",)), specialist("account"))

    with pytest.raises(ValueError, match=r"'billing' hands off to unknown specialist 'acount'; known: account, billing"):
        MultiAgentSystem(stack, "Team", specialists=team)


def test_unknown_fallback_fails_naming_it_and_the_known_specialists(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match=r"fallback names unknown specialist 'sales'; known: account, billing"):
        MultiAgentSystem(
            stack, "Team", specialists=(specialist("billing"), specialist("account")), options=MultiAgentOptions(fallback="sales")
        )


def test_repeated_specialist_names_are_refused(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="specialist names must be unique; repeated: billing"):
        MultiAgentSystem(stack, "Team", specialists=(specialist("billing"), specialist("billing")))


@pytest.mark.parametrize("name", ["Billing", "1st-line", "with space", "x" * 33, ""])
def test_badly_formed_specialist_names_are_refused(stack: cdk.Stack, name: str) -> None:
    with pytest.raises(ValueError, match="must be 1-32 characters of a-z, 0-9, _ and -, starting with a letter"):
        MultiAgentSystem(stack, "Team", specialists=(specialist(name),))


@pytest.mark.parametrize("description", ["Billing", "x" * 501])
def test_description_outside_10_to_500_characters_is_refused(stack: cdk.Stack, description: str) -> None:
    with pytest.raises(ValueError, match=r"'billing': description must be 10-500 characters"):
        MultiAgentSystem(stack, "Team", specialists=(specialist("billing", description=description),))


def test_specialist_handing_off_to_itself_is_refused(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="'billing' cannot hand off to itself"):
        MultiAgentSystem(stack, "Team", specialists=(specialist("billing", handoffs=("billing",)),))


@pytest.mark.parametrize("concurrency", [1, 1001])
def test_specialist_max_concurrency_outside_2_to_1000_is_refused(stack: cdk.Stack, concurrency: int) -> None:
    with pytest.raises(ValueError, match="'billing': max_concurrency must be between 2 and 1000"):
        MultiAgentSystem(stack, "Team", specialists=(specialist("billing", max_concurrency=concurrency),))


@pytest.mark.parametrize("hops", [0, 21])
def test_max_hops_outside_1_to_20_is_refused(stack: cdk.Stack, hops: int) -> None:
    with pytest.raises(ValueError, match="max_hops must be between 1 and 20"):
        MultiAgentSystem(stack, "Team", specialists=(specialist("billing"),), options=MultiAgentOptions(max_hops=hops))


def test_team_without_specialists_is_refused(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="needs at least one specialist"):
        MultiAgentSystem(stack, "Team", specialists=())


# -- HierarchicalAgents ----------------------------------------------------------------------


def test_hierarchy_routes_its_task_types_to_its_state_machine_on_the_async_agent(hierarchical: Any) -> None:
    stack = hierarchical.stack
    machine = {"Ref": hierarchical.logical_id(stack.hierarchy.state_machine)}

    routes = json.loads(hierarchical.render(hierarchical.environment(stack.tasks.agent_function)["AGENT_TASK_ROUTES"]))

    assert routes == {"default": "queue", "research": hierarchical.render(machine)}
    assert ("states:StartExecution", text(machine)) in hierarchical.grants(stack.tasks.agent_function)


def test_supervisor_steps_are_told_the_review_and_failure_policy(synthesize: Any) -> None:
    options = HierarchicalOptions(
        task_types=("report",), max_review_rounds=2, tolerated_failure_percentage=25, max_task_tokens=90_000, max_task_usd=1.5
    )

    def build(stack: cdk.Stack) -> HierarchicalAgents:
        return HierarchicalAgents(stack, "Supervisor", tasks=AsyncAgent(stack, "Tasks"), options=options)

    hierarchy, synth = synthesize(build)

    environment = synth.environment(hierarchy.function)
    assert environment["AGENT_MULTI_MAX_REVIEW_ROUNDS"] == "2"
    assert environment["AGENT_MULTI_TOLERATED_FAILURE_PERCENTAGE"] == "25.0"
    assert environment["AGENT_MULTI_MAX_TASK_TOKENS"] == "90000"
    assert environment["AGENT_MULTI_MAX_TASK_USD"] == "1.5"
    assert "AGENT_MULTI_MAX_HOPS" not in environment
    assert synth.properties(hierarchy.function.function)["Timeout"] == 300


def test_hierarchy_cannot_take_a_task_type_that_already_has_a_route(stack: cdk.Stack) -> None:
    tasks = AsyncAgent(stack, "Tasks")
    HierarchicalAgents(stack, "First", tasks=tasks)

    with pytest.raises(ValueError, match=r"task types \['research'\] already have a route"):
        HierarchicalAgents(stack, "Second", tasks=tasks)


@pytest.mark.parametrize("concurrency", [0, 1001])
def test_hierarchy_max_concurrency_outside_1_to_1000_is_refused(concurrency: int) -> None:
    with pytest.raises(ValueError, match="max_concurrency must be between 1 and 1000"):
        HierarchicalOptions(max_concurrency=concurrency).validate()


@pytest.mark.parametrize("percentage", [-1, 100.5])
def test_tolerated_failure_percentage_outside_0_to_100_is_refused(percentage: float) -> None:
    with pytest.raises(ValueError, match="tolerated_failure_percentage must be between 0 and 100"):
        HierarchicalOptions(tolerated_failure_percentage=percentage).validate()


@pytest.mark.parametrize("rounds", [-1, 6])
def test_review_rounds_outside_0_to_5_is_refused(rounds: int) -> None:
    with pytest.raises(ValueError, match="max_review_rounds must be between 0 and 5"):
        HierarchicalOptions(max_review_rounds=rounds).validate()


def test_hierarchy_step_timeout_beyond_15_minutes_is_refused() -> None:
    with pytest.raises(ValueError, match="step_timeout cannot exceed Lambda's 15 minutes"):
        HierarchicalOptions(step_timeout=Duration.minutes(16)).validate()


def test_hierarchy_validates_its_options(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="max_review_rounds"):
        HierarchicalAgents(
            stack, "Supervisor", tasks=AsyncAgent(stack, "Tasks"), options=HierarchicalOptions(max_review_rounds=9)
        )


def test_a_hierarchy_that_may_run_longer_than_its_task_records_live_fails_synth_naming_the_fix(stack: cdk.Stack) -> None:
    tasks = AsyncAgent(stack, "Tasks", task_table_options=TaskTableOptions(retention=Duration.days(1)))

    with pytest.raises(
        ValueError,
        match=r"HierarchicalOptions.execution_timeout \(3 days\) is longer than the task table's retention \(1 day\)"
        r".*raise TaskTableOptions\(retention=\.\.\.\) or lower execution_timeout",
    ):
        HierarchicalAgents(stack, "Supervisor", tasks=tasks, options=HierarchicalOptions(execution_timeout=Duration.days(3)))
