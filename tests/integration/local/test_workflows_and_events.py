"""Step Functions and EventBridge in local mode: workflows call the real handler code through the function's alias.

The ``Local-Workflows`` stack (see ``conftest.py``) mirrors what the patterns' workflows rely on: Retry and
Catch matched on the Python exception's class name, a task-token wait with a timeout, a distributed Map with
a tolerated failure percentage read from the input, and an EventBridge rule with a Lambda target.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from agentrail_local.cloud import LocalCloud

pytestmark = pytest.mark.slow
STACK = "Local-Workflows"


@pytest.fixture(scope="module")
def cloud(local_cloud: Callable[..., LocalCloud], services_assembly: Path) -> LocalCloud:
    return local_cloud(services_assembly, stacks=[STACK])


def _resource(cloud: LocalCloud, construct_id: str, resource_type: str) -> Any:
    deployment = next(d for d in cloud.deployments if d.stack_name == STACK)
    return next(r for r in deployment.resources.values() if r.logical_id[:-8] == construct_id and r.type == resource_type)


def _machine(cloud: LocalCloud, construct_id: str) -> str:
    return _resource(cloud, construct_id, "AWS::StepFunctions::StateMachine").ref


def _start(cloud: LocalCloud, machine: str, payload: dict[str, Any]) -> str:
    # Named, as the task API names executions: moto names every unnamed execution "None".
    return cloud.clients("stepfunctions").start_execution(
        stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(payload)
    )["executionArn"]


def _run(cloud: LocalCloud, machine: str, payload: dict[str, Any], *, seconds: float = 30) -> dict[str, Any]:
    return _finished(cloud, _start(cloud, machine, payload), seconds=seconds)


def _finished(cloud: LocalCloud, execution: str, *, seconds: float = 30) -> dict[str, Any]:
    sfn = cloud.clients("stepfunctions")
    deadline = time.monotonic() + seconds
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    return described


def _history(cloud: LocalCloud, execution: str) -> list[dict[str, Any]]:
    return cloud.clients("stepfunctions").get_execution_history(executionArn=execution)["events"]


def _waiting_for_its_token(cloud: LocalCloud, marker: Path) -> str:
    """An execution of ``Paused`` once its task has written its token to ``marker`` and it waits (asserted)."""
    execution = _start(cloud, _machine(cloud, "Paused"), {"marker": str(marker)})
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cloud.clients("stepfunctions").describe_execution(executionArn=execution)["status"] == "RUNNING"
    return execution


def _item_counts(cloud: LocalCloud, execution: str) -> dict[str, int]:
    """The item counts of the one map run of ``execution``."""
    sfn = cloud.clients("stepfunctions")
    (run,) = sfn.list_map_runs(executionArn=execution)["mapRuns"]
    return sfn.describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]


@pytest.mark.parametrize("machine", ["Guarded", "ServiceGuarded"], ids=["lambda-arn", "lambda-invoke-integration"])
def test_a_function_error_is_caught_by_its_python_exception_class_name(cloud: LocalCloud, machine: str) -> None:
    described = _run(cloud, _machine(cloud, machine), {"action": "reject"})

    assert described["status"] == "SUCCEEDED"
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "OrderRejected"
    assert json.loads(error["Cause"])["errorMessage"] == "order A-1 is over the limit"


def test_a_function_error_named_in_retry_is_retried_and_the_execution_succeeds(cloud: LocalCloud, tmp_path: Path) -> None:
    marker = tmp_path / "flaky"

    described = _run(cloud, _machine(cloud, "Guarded"), {"action": "flaky", "marker": str(marker)})

    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["result"] == {"attempts": 2}
    failures = [e for e in _history(cloud, described["executionArn"]) if e["type"] == "LambdaFunctionFailed"]
    assert [e["lambdaFunctionFailedEventDetails"]["error"] for e in failures] == ["FlakyError"]


def test_a_task_token_wait_resumes_with_the_output_sent_to_send_task_success(cloud: LocalCloud, tmp_path: Path) -> None:
    marker = tmp_path / "token"
    sfn = cloud.clients("stepfunctions")
    execution = _waiting_for_its_token(cloud, marker)

    sfn.send_task_success(taskToken=marker.read_text(), output=json.dumps({"approved": True}))

    described = _finished(cloud, execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["decision"] == {"approved": True}


def test_stopping_an_execution_that_waits_for_a_task_token_aborts_it_at_once(cloud: LocalCloud, tmp_path: Path) -> None:
    marker = tmp_path / "token"
    sfn = cloud.clients("stepfunctions")
    execution = _waiting_for_its_token(cloud, marker)

    sfn.stop_execution(executionArn=execution, error="Cancelled", cause="cancelled by its owner")

    described = _finished(cloud, execution, seconds=2)
    assert described["status"] == "ABORTED"
    time.sleep(0.5)
    entered = [e["stateEnteredEventDetails"]["name"] for e in _history(cloud, execution) if "stateEnteredEventDetails" in e]
    assert entered == ["WaitForDecision"]
    with pytest.raises(ClientError) as late:
        sfn.send_task_success(taskToken=marker.read_text(), output="{}")
    assert late.value.response["Error"]["Code"] in {"InvalidToken", "TaskDoesNotExist", "TaskTimedOut"}


def test_a_task_token_wait_past_its_timeout_is_caught_as_states_timeout(cloud: LocalCloud, tmp_path: Path) -> None:
    started = time.monotonic()

    described = _run(cloud, _machine(cloud, "Paused"), {"marker": str(tmp_path / "token")})

    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["decision"] == {"timed_out": True}
    assert output["timeout"]["Error"] == "States.Timeout"
    assert 3 <= time.monotonic() - started < 15


def test_a_distributed_map_within_its_tolerated_failure_percentage_succeeds(cloud: LocalCloud) -> None:
    items = [{"action": "item", "index": i, "fail": i == 1} for i in range(3)]

    described = _run(cloud, _machine(cloud, "FanOut"), {"items": items, "tolerance": 50})

    assert described["status"] == "SUCCEEDED", described
    counts = _item_counts(cloud, described["executionArn"])
    assert (counts["total"], counts["succeeded"], counts["failed"]) == (3, 2, 1)


def test_moto_does_not_yet_fail_a_distributed_map_over_its_tolerated_failure_percentage(cloud: LocalCloud) -> None:
    """A known local difference (README, Local mode): in AWS this Map fails with States.ExceedToleratedFailureThreshold.

    The hierarchical pattern's review applies the same threshold itself. When this test fails, moto enforces
    the threshold and the README's note can go.
    """
    items = [{"action": "item", "index": i, "fail": i > 0} for i in range(3)]

    described = _run(cloud, _machine(cloud, "FanOut"), {"items": items, "tolerance": 50})

    assert described["status"] == "SUCCEEDED"
    counts = _item_counts(cloud, described["executionArn"])
    assert (counts["total"], counts["failed"]) == (3, 2)


def test_an_eventbridge_rule_delivers_to_its_lambda_target_and_its_queue(cloud: LocalCloud) -> None:
    listener = _resource(cloud, "Listener", "AWS::Lambda::Function")
    queue = _resource(cloud, "Heard", "AWS::SQS::Queue").ref
    events = cloud.clients("events")

    answer = events.put_events(
        Entries=[
            {
                "EventBusName": "local-workflow-bus",
                "Source": "agentrail.tests",
                "DetailType": "Order Placed",
                "Detail": '{"order": "A-7"}',
            }
        ]
    )

    assert answer["FailedEntryCount"] == 0
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    log = cloud.function_log(listener.logical_id)
    while not received and time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        received = [json.loads(line)["received"] for line in lines if line.startswith('{"event": "received"')]
        time.sleep(0.1)
    assert len(received) == 1
    assert (received[0]["source"], received[0]["detail-type"], received[0]["detail"]) == (
        "agentrail.tests",
        "Order Placed",
        {"order": "A-7"},
    )
    assert received[0]["time"].endswith("Z") and received[0]["account"] == "123456789012"
    queued = cloud.clients("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    assert json.loads(queued[0]["Body"])["detail"] == {"order": "A-7"}


def test_an_event_that_matches_no_rule_reaches_no_target(cloud: LocalCloud) -> None:
    listener = _resource(cloud, "Listener", "AWS::Lambda::Function")
    log = cloud.function_log(listener.logical_id)
    before = log.read_text() if log.exists() else ""

    answer = cloud.clients("events").put_events(
        Entries=[{"EventBusName": "local-workflow-bus", "Source": "someone.else", "DetailType": "Other", "Detail": "{}"}]
    )

    assert answer["FailedEntryCount"] == 0
    time.sleep(0.5)
    assert (log.read_text() if log.exists() else "") == before
