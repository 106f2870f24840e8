"""Every Step Functions state machine of every pattern, rendered to concrete ASL and checked state by state.

``Template`` gives the raw template, where a definition is an ``Fn::Join`` of
text and references; each is rendered with placeholder ARNs, parsed, and
loaded into moto's Step Functions parser (cfn-lint skips such definitions).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import Duration
from botocore.exceptions import ClientError
from moto import mock_aws

from agentrail_constructs import (
    ApprovalOptions,
    AsyncAgent,
    HierarchicalAgents,
    HierarchicalOptions,
    LongTaskWorkflowOptions,
    RetryOptions,
    TaskTableOptions,
)

LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
DEFAULT_APPROVAL_TIMEOUT = 3 * 86_400
LONGEST_APPROVAL = Duration.days(364)
#: moto runs definitions through its ASL parser only when executions are enabled.
MOTO_PARSES_ASL = {"stepfunctions": {"execute_state_machine": True}}
ROLE_ARN = "arn:aws:iam::123456789012:role/states"


@dataclass(frozen=True)
class Machine:
    """A state machine of a synthesized stack: where it is, its properties and its rendered definition."""

    name: str
    properties: dict[str, Any]
    asl: dict[str, Any]
    definition: str


def machines_of(name: str, synth: Any) -> list[Machine]:
    found = []
    for lid, props in synth.of_type("AWS::StepFunctions::StateMachine").items():
        definition = synth.render(props["DefinitionString"])
        found.append(Machine(f"{name}/{lid}", props, json.loads(definition), definition))
    return found


def all_states(asl: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """``(name, state, in_map_item_processor)`` of every state, nested Map and Parallel states included."""

    def walk(machine: dict[str, Any], in_map: bool) -> Iterator[tuple[str, dict[str, Any], bool]]:
        for name, state in machine["States"].items():
            yield name, state, in_map
            for processor in (state.get("ItemProcessor"), state.get("Iterator")):
                if processor:
                    yield from walk(processor, True)
            for branch in state.get("Branches", []):
                yield from walk(branch, in_map)

    return walk(asl, False)


def is_lambda_task(state: dict[str, Any]) -> bool:
    resource = state.get("Resource", "")
    return state["Type"] == "Task" and (resource.startswith(("arn:aws:states:::lambda:invoke", "arn:aws:lambda:")))


def is_callback_task(state: dict[str, Any]) -> bool:
    return state["Type"] == "Task" and state.get("Resource", "").endswith(".waitForTaskToken")


def caught(state: dict[str, Any]) -> list[str]:
    """The errors of each Catch of ``state``, in order."""
    return [error for catcher in state.get("Catch", []) for error in catcher["ErrorEquals"]]


def on_timeout(state: dict[str, Any]) -> str:
    """The state a ``States.Timeout`` catcher of ``state`` leads to."""
    return next(catcher["Next"] for catcher in state["Catch"] if catcher["ErrorEquals"] == ["States.Timeout"])


def tasks_of(machines: list[Machine], kind: Callable[[dict[str, Any]], bool]) -> list[tuple[str, dict[str, Any]]]:
    """``(machine/state, state)`` of every state of ``machines`` that ``kind`` (``is_lambda_task``, ...) picks, nested ones included."""
    return [(f"{m.name}/{name}", state) for m in machines for name, state, _ in all_states(m.asl) if kind(state)]


def failure_handlers(asl: dict[str, Any]) -> set[str]:
    """States that ``States.ALL`` catchers lead to: they mark the task failed and must not catch themselves."""
    return {
        catcher["Next"]
        for _, state, _ in all_states(asl)
        for catcher in state.get("Catch", [])
        if "States.ALL" in catcher["ErrorEquals"]
    }


@pytest.fixture(scope="module")
def variants(synthesize: Any) -> dict[str, Any]:
    """Stacks beyond the pattern defaults: escalating approvals, the longest approval wait, a wider fan-out."""

    def escalating(stack: cdk.Stack) -> AsyncAgent:
        options = ApprovalOptions(timeout_policy="escalate", escalation_group="leads", decision_timeout=Duration.days(2))
        return AsyncAgent(stack, "Agent", approval_options=options)

    def longest_wait(stack: cdk.Stack) -> AsyncAgent:
        options = ApprovalOptions(decision_timeout=LONGEST_APPROVAL, execution_timeout=Duration.days(365))
        records = TaskTableOptions(retention=Duration.days(365))  # the task's record outlives the execution
        return AsyncAgent(stack, "Agent", approval_options=options, task_table_options=records)

    def wide(stack: cdk.Stack) -> HierarchicalAgents:
        options = HierarchicalOptions(max_concurrency=7, execution_timeout=Duration.hours(6))
        return HierarchicalAgents(stack, "Supervisor", tasks=AsyncAgent(stack, "Tasks"), options=options)

    return {name: synthesize(build)[1] for name, build in (("escalate", escalating), ("longest", longest_wait), ("wide", wide))}


@pytest.fixture(scope="module")
def machines(pattern_stacks: dict[str, Any], variants: dict[str, Any]) -> list[Machine]:
    """Every state machine of every pattern stack and of the variants."""
    found = [m for name, synth in {**pattern_stacks, **variants}.items() for m in machines_of(name, synth)]
    # async: long tasks and approvals; hierarchical: the supervisor; one per variant.
    assert len(found) >= 2 + 1 + len(variants), [m.name for m in found]
    return found


def only_machine(synth: Any, name: str, construct: Any) -> Machine:
    lid = synth.logical_id(construct)
    (machine,) = [m for m in machines_of(name, synth) if m.name.endswith(f"/{lid}")]
    return machine


# -- every state machine ---------------------------------------------------------------------


def test_every_state_machine_is_standard(machines: list[Machine]) -> None:
    assert {m.name: m.properties.get("StateMachineType") for m in machines} == {m.name: "STANDARD" for m in machines}


def test_every_state_machine_is_traced(machines: list[Machine]) -> None:
    assert {m.name for m in machines if m.properties.get("TracingConfiguration") != {"Enabled": True}} == set()


def test_every_state_machine_logs_all_events_but_never_execution_data(machines: list[Machine]) -> None:
    for machine in machines:
        logging = machine.properties["LoggingConfiguration"]
        assert logging["Level"] == "ALL", machine.name
        assert logging["IncludeExecutionData"] is False, machine.name
        assert logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"], machine.name


def test_every_state_machine_has_an_execution_timeout(machines: list[Machine]) -> None:
    assert {m.name for m in machines if not m.asl.get("TimeoutSeconds", 0) > 0} == set()


def test_every_lambda_task_has_a_timeout(machines: list[Machine]) -> None:
    untimed = [where for where, state in tasks_of(machines, is_lambda_task) if not state.get("TimeoutSeconds")]

    assert untimed == []


def test_every_lambda_task_retries_lambdas_transient_errors_and_throttling(machines: list[Machine]) -> None:
    tasks = tasks_of(machines, is_lambda_task)
    offenders = []
    for where, state in tasks:
        retried = {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}
        if not (retried >= LAMBDA_TRANSIENT or "States.ALL" in retried):
            offenders.append(f"{where}: misses {sorted(LAMBDA_TRANSIENT - retried)}")

    assert len(tasks) >= 20
    assert offenders == []


def test_every_lambda_task_retries_a_task_event_the_bus_refused(machines: list[Machine]) -> None:
    # The event waits in the task's outbox; a retry of the step finds the task finished and publishes it.
    tasks = tasks_of(machines, is_lambda_task)

    missing = [where for where, state in tasks if "TaskEventNotPublished" not in retried_errors(state)]

    assert tasks and missing == []


def retried_errors(state: dict[str, Any]) -> set[str]:
    return {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}


def retry_waits(state: dict[str, Any]) -> list[tuple[Any, ...]]:
    """``(first error, IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds, JitterStrategy)`` of each retrier."""
    return [
        (
            r["ErrorEquals"][0],
            r["IntervalSeconds"],
            r["MaxAttempts"],
            r["BackoffRate"],
            r.get("MaxDelaySeconds"),
            r["JitterStrategy"],
        )
        for r in state["Retry"]
    ]


def test_retries_wait_2_seconds_for_lambda_and_10_for_the_model_at_first_doubling_without_a_cap_by_default(
    pattern_stacks: dict[str, Any],
) -> None:
    tasks = tasks_of(
        machines_of("async", pattern_stacks["async"]) + machines_of("h", pattern_stacks["hierarchical"]), is_lambda_task
    )

    waits = {where: retry_waits(state) for where, state in tasks}

    default = [
        ("Lambda.ClientExecutionTimeoutException", 2, 6, 2, None, "FULL"),
        ("ModelThrottledError", 10, 4, 2, None, "FULL"),
    ]
    assert len(waits) >= 10
    assert {where: w for where, w in waits.items() if w != default} == {}


def short_retries() -> RetryOptions:
    return RetryOptions(service_interval=Duration.seconds(3), model_interval=Duration.seconds(5), max_delay=Duration.seconds(7))


@pytest.mark.parametrize(
    "build",
    [
        lambda stack: AsyncAgent(stack, "Agent", long_task_options=LongTaskWorkflowOptions(retries=short_retries())),
        lambda stack: AsyncAgent(stack, "Agent", approval_options=ApprovalOptions(retries=short_retries())),
        lambda stack: HierarchicalAgents(
            stack, "Supervisor", tasks=AsyncAgent(stack, "Tasks"), options=HierarchicalOptions(retries=short_retries())
        ),
    ],
    ids=["long", "approvals", "hierarchical"],
)
def test_retry_options_set_the_first_wait_and_the_cap_of_every_lambda_steps_retries(synthesize: Any, build: Any) -> None:
    _, synth = synthesize(build)

    tasks = tasks_of(machines_of("short", synth), is_lambda_task)

    expected = [
        ("Lambda.ClientExecutionTimeoutException", 3, 6, 2, 7, "FULL"),
        ("ModelThrottledError", 5, 4, 2, 7, "FULL"),
    ]
    assert tasks and {where: retry_waits(state) for where, state in tasks} == {where: expected for where, _ in tasks}


@pytest.mark.parametrize(
    ("retries", "problem"),
    [
        (RetryOptions(service_interval=Duration.seconds(0)), r"retries.service_interval must be a whole number of seconds"),
        (RetryOptions(model_interval=Duration.millis(1500)), r"retries.model_interval must be a whole number of seconds"),
        (
            RetryOptions(max_delay=Duration.days(367)),
            r"retries.max_delay must be a whole number of seconds between 1 and 31622401",
        ),
    ],
    ids=["no-wait", "fraction", "beyond-the-service-limit"],
)
def test_retry_waits_that_step_functions_would_refuse_are_refused_at_synth(retries: RetryOptions, problem: str) -> None:
    for options in (
        LongTaskWorkflowOptions(retries=retries),
        ApprovalOptions(retries=retries),
        HierarchicalOptions(retries=retries),
    ):
        with pytest.raises(ValueError, match=f"{type(options).__name__}.{problem}"):
            options.validate()


def test_every_lambda_task_catches_all_errors_into_the_failure_path(machines: list[Machine]) -> None:
    # Exempt: the failure handler itself (it ends in a Fail state), and tasks inside a distributed Map's
    # item processor, whose failures the Map counts against its tolerated failure percentage.
    offenders = []
    for machine in machines:
        handlers = failure_handlers(machine.asl)
        for name, state, in_map in all_states(machine.asl):
            if is_lambda_task(state) and not in_map and name not in handlers and "States.ALL" not in caught(state):
                offenders.append(f"{machine.name}/{name}")

    assert offenders == []


def test_failure_path_marks_the_task_failed_then_fails_the_execution(machines: list[Machine]) -> None:
    for machine in machines:
        handlers = failure_handlers(machine.asl)
        states = machine.asl["States"]

        assert handlers == {"MarkFailed"}, machine.name
        assert is_lambda_task(states["MarkFailed"])
        assert states[states["MarkFailed"]["Next"]]["Type"] == "Fail", machine.name


def test_every_map_catches_all_errors(machines: list[Machine]) -> None:
    maps = [(m.name, name, state) for m in machines for name, state, _ in all_states(m.asl) if state["Type"] == "Map"]

    assert maps, "the hierarchical pattern fans out with a Map"
    assert [f"{m}/{name}" for m, name, state in maps if "States.ALL" not in caught(state)] == []


# -- callback (human approval) tasks ---------------------------------------------------------


def test_every_callback_task_times_out_and_catches_the_timeout_before_anything_else(machines: list[Machine]) -> None:
    waits = tasks_of(machines, is_callback_task)
    offenders = []
    for where, state in waits:
        errors = caught(state)
        if not state.get("TimeoutSeconds"):
            offenders.append(f"{where}: no TimeoutSeconds")
        if "States.Timeout" not in errors or "States.ALL" not in errors:
            offenders.append(f"{where}: catches {errors}")
        elif errors.index("States.Timeout") > errors.index("States.ALL"):
            offenders.append(f"{where}: States.ALL would swallow the timeout")

    assert len(waits) >= 4, "async, escalate (two waits) and longest each wait for a decision"
    assert offenders == []


def test_approval_waits_three_days_by_default(pattern_stacks: dict[str, Any]) -> None:
    synth = pattern_stacks["async"]
    machine = only_machine(synth, "async", synth.stack.agent.approval_workflow.state_machine)

    waits = [state for _, state, _ in all_states(machine.asl) if is_callback_task(state)]

    assert [state["TimeoutSeconds"] for state in waits] == [DEFAULT_APPROVAL_TIMEOUT]


def test_approval_wait_follows_the_timeout_option_up_to_just_under_a_year(variants: dict[str, Any]) -> None:
    synth = variants["longest"]
    machine = only_machine(synth, "longest", synth.stack.node.find_child("Agent").approval_workflow.state_machine)

    waits = [state for _, state, _ in all_states(machine.asl) if is_callback_task(state)]

    assert [state["TimeoutSeconds"] for state in waits] == [int(LONGEST_APPROVAL.to_seconds())]
    assert machine.asl["TimeoutSeconds"] > waits[0]["TimeoutSeconds"]


def test_timed_out_approval_applies_the_reject_policy_then_resumes(pattern_stacks: dict[str, Any]) -> None:
    synth = pattern_stacks["async"]
    states = only_machine(synth, "async", synth.stack.agent.approval_workflow.state_machine).asl["States"]

    after_timeout = on_timeout(states["RequestApproval"])

    assert after_timeout == "ApplyTimeoutPolicy"
    assert states["ApplyTimeoutPolicy"]["Parameters"]["Payload"]["action"] == "approval_timeout"
    assert states["ApplyTimeoutPolicy"]["Next"] == "Resume"


def test_escalate_policy_waits_a_second_time_for_the_escalation_group(variants: dict[str, Any]) -> None:
    synth = variants["escalate"]
    (machine,) = machines_of("escalate", synth)
    states = machine.asl["States"]

    waits = {name: state for name, state, _ in all_states(machine.asl) if is_callback_task(state)}

    assert set(waits) == {"RequestApproval", "RequestEscalatedApproval"}
    assert [waits[n]["Parameters"]["Payload"]["level"] for n in ("RequestApproval", "RequestEscalatedApproval")] == [0, 1]
    assert {state["TimeoutSeconds"] for state in waits.values()} == {2 * 86_400}
    first_timeout = on_timeout(states["RequestApproval"])
    assert states[first_timeout]["Next"] == "RequestEscalatedApproval"
    second_timeout = on_timeout(states["RequestEscalatedApproval"])
    assert states[second_timeout]["Parameters"]["Payload"]["level"] == 1
    assert states[second_timeout]["Next"] == "Resume"


def test_callback_tasks_hand_the_task_token_to_the_function(machines: list[Machine]) -> None:
    waits = tasks_of(machines, is_callback_task)

    assert waits, "async and the variants wait for approval decisions"
    assert [where for where, state in waits if state["Parameters"]["Payload"].get("task_token.$") != "$$.Task.Token"] == []


# -- the hierarchical fan-out ----------------------------------------------------------------


def fan_out(synth: Any, name: str) -> dict[str, Any]:
    (machine,) = machines_of(name, synth)
    maps = [state for _, state, _ in all_states(machine.asl) if state["Type"] == "Map"]
    assert len(maps) == 1
    return maps[0]


def test_fan_out_is_a_distributed_map_capped_by_max_concurrency(pattern_stacks: dict[str, Any], variants: dict[str, Any]) -> None:
    default, wide = fan_out(pattern_stacks["hierarchical"], "hierarchical"), fan_out(variants["wide"], "wide")

    assert default["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert (default["MaxConcurrency"], wide["MaxConcurrency"]) == (4, 7)


def test_fan_out_reads_its_tolerated_failure_percentage_from_the_plan(pattern_stacks: dict[str, Any]) -> None:
    # moto's ASL parser rejects an integer ToleratedFailurePercentage (CDK renders 50.0 as 50), so the
    # construct passes the percentage through the plan's state with ToleratedFailurePercentagePath.
    state = fan_out(pattern_stacks["hierarchical"], "hierarchical")

    assert state["ToleratedFailurePercentagePath"] == "$.work.tolerance"
    assert "ToleratedFailurePercentage" not in state


def test_hierarchical_execution_timeout_follows_the_options(variants: dict[str, Any]) -> None:
    (machine,) = machines_of("wide", variants["wide"])

    assert machine.asl["TimeoutSeconds"] == 6 * 3600


# -- valid ASL for moto's parser -------------------------------------------------------------


def test_every_rendered_definition_is_accepted_by_moto(machines: list[Machine]) -> None:
    with mock_aws(config=MOTO_PARSES_ASL):
        client = boto3.client("stepfunctions", region_name="us-east-1")
        for index, machine in enumerate(machines):
            created = client.create_state_machine(
                name=f"machine-{index}", definition=machine.definition, roleArn=ROLE_ARN, type="STANDARD"
            )

            described = client.describe_state_machine(stateMachineArn=created["stateMachineArn"])
            assert json.loads(described["definition"]) == machine.asl, machine.name


def test_moto_rejects_a_definition_that_is_not_valid_asl(machines: list[Machine]) -> None:
    # Proof that the acceptance above is not vacuous: a misspelt state type fails to load.
    broken = json.loads(machines[0].definition)
    first = broken["StartAt"]
    broken["States"][first]["Type"] = "Taks"

    with mock_aws(config=MOTO_PARSES_ASL):
        client = boto3.client("stepfunctions", region_name="us-east-1")
        with pytest.raises(ClientError, match="Taks"):
            client.create_state_machine(name="broken", definition=json.dumps(broken), roleArn=ROLE_ARN)


def test_no_state_passes_prompt_text_or_the_approvers_comment_through_the_execution_history(machines: list[Machine]) -> None:
    # The Map's items and each Lambda task's payload land in the execution history: ids and indexes only.
    # A task with payload_response_only invokes the function directly: its Parameters are the payload.
    payloads = [
        (where, state.get("Parameters", {}).get("Payload", state.get("Parameters", {})), state.get("ResultSelector", {}))
        for where, state in tasks_of(machines, lambda state: state["Type"] == "Task")
    ]

    carried = [
        where
        for where, payload, selector in payloads
        if {"text.$", "message.$", "reason.$"} & set(payload) or "reason.$" in selector
    ]
    assert payloads and carried == []
    work = [payload for where, payload, _ in payloads if where.endswith("/Work")]
    assert work and all(set(p) == {"action", "task_id.$", "correlation_id.$", "index.$", "attempt.$"} for p in work)
