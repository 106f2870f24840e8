"""The async pattern end to end: tasks submitted over HTTP, run by the SQS worker or a Step Functions workflow."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agentrail_cli.client import AgentApiClient

pytestmark = pytest.mark.slow
SECRET_MARKER = "e2e-secret-marker"


@pytest.fixture
def tasks(local: Any) -> Iterator[AgentApiClient]:
    with local.client("async") as api:
        yield api


def _submit(tasks: AgentApiClient, body: dict[str, Any], *, key: str | None = None) -> dict[str, Any]:
    response = tasks.request("POST", "/tasks", json=body, headers={"Idempotency-Key": key} if key else None)
    assert response.status_code == 202, response.text
    return response.json()


def _task_count(local: Any) -> int:
    return local.aws("dynamodb").scan(TableName=local.output("async", "TaskTableName"), Select="COUNT")["Count"]


def _messages_in(local: Any, queue_url: str) -> int:
    attributes = local.aws("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _drained(local: Any, queue_url: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while _messages_in(local, queue_url) and time.monotonic() < deadline:
        time.sleep(0.1)


def test_a_submitted_task_runs_to_success_and_reports_tokens_cost_and_tool_calls(
    tasks: AgentApiClient, wait_for_task: Callable[..., dict[str, Any]]
) -> None:
    accepted = _submit(tasks, {"message": "Calculate (12 + 30) * 2", "metadata": {"ticket": "T-1"}})

    task = wait_for_task(tasks, accepted["task_id"])

    assert (accepted["status"], accepted["status_url"]) == ("queued", f"/tasks/{accepted['task_id']}")
    assert task["status"] == "succeeded"
    assert "84" in task["result"]["answer"]
    assert [c["tool"] for c in task["result"]["tool_calls"]] == ["calculator"]
    usage = task["usage"]
    assert usage["total_tokens"] == sum(
        usage[k] for k in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
    )
    # Local mode's model simulates the prompt cache: a later step reads the prefix the first one sent (written by it,
    # or by an earlier task that asked the same).
    assert usage["cache_read_tokens"] > 0
    assert task["cost_usd"] == 0.0
    assert task["metadata"] == {"ticket": "T-1"}
    assert task["started_at"] >= task["created_at"] and task["finished_at"] >= task["started_at"]


def test_a_retried_submission_with_the_same_idempotency_key_returns_the_same_task(local: Any, tasks: AgentApiClient) -> None:
    key = uuid.uuid4().hex
    body = {"message": "Calculate 6 * 7"}

    first = _submit(tasks, body, key=key)
    before = _task_count(local)
    again = _submit(tasks, body, key=key)

    assert again["task_id"] == first["task_id"]
    assert _task_count(local) == before


def test_an_idempotency_key_reused_with_another_payload_is_a_422(tasks: AgentApiClient) -> None:
    key = uuid.uuid4().hex
    _submit(tasks, {"message": "Calculate 6 * 7"}, key=key)

    response = tasks.request(
        "POST", "/tasks", json={"message": f"Calculate 6 * 8 {SECRET_MARKER}"}, headers={"Idempotency-Key": key}
    )

    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert SECRET_MARKER not in response.text


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"message": "Calculate 1 + 1", "task_type": "no-such-type"}, "unknown_task_type"),
        ({"message": ""}, "invalid_request"),
        ({"message": "Calculate 1 + 1", "unexpected": SECRET_MARKER}, "invalid_request"),
        ({"message": "Calculate 1 + 1", "callback_url": "http://169.254.169.254/latest"}, "invalid_callback_url"),
    ],
    ids=["unknown-type", "empty-message", "unknown-field", "internal-callback"],
)
def test_an_invalid_submission_is_a_400_and_nothing_is_queued(
    local: Any, tasks: AgentApiClient, body: dict[str, Any], error: str
) -> None:
    queue = local.output("async", "TaskQueueUrl")
    _drained(local, queue)  # tasks of earlier tests may still be in flight
    before = _task_count(local)

    response = tasks.request("POST", "/tasks", json=body)

    assert response.status_code == 400
    assert response.json()["error"] == error
    assert SECRET_MARKER not in response.text and "Traceback" not in response.text
    assert _task_count(local) == before
    assert _messages_in(local, queue) == 0


def test_another_callers_task_is_a_404_for_reads_and_cancels(local: Any, tasks: AgentApiClient) -> None:
    task_id = _submit(tasks, {"message": "Calculate 1 + 1"})["task_id"]

    with local.client("async", principal="agentrail-other") as other:
        read = other.request("GET", f"/tasks/{task_id}")
        cancelled = other.request("DELETE", f"/tasks/{task_id}")

    assert (read.status_code, cancelled.status_code) == (404, 404)
    assert read.json()["error"] == cancelled.json()["error"] == "task_not_found"
    assert tasks.request("GET", f"/tasks/{task_id}").json()["status"] != "cancelled"


def test_cancelling_a_task_that_waits_stops_its_workflow_and_its_approval_can_no_longer_be_decided(
    local: Any, tasks: AgentApiClient, wait_for_task: Callable[..., dict[str, Any]]
) -> None:
    task_id = _submit(tasks, {"message": "Please refund 150 USD for order A-1002", "task_type": "reviewed"})["task_id"]
    wait_for_task(tasks, task_id, until={"waiting_approval"})

    response = tasks.request("DELETE", f"/tasks/{task_id}")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert wait_for_task(tasks, task_id)["status"] == "cancelled"
    sfn = local.aws("stepfunctions")
    machines = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if "Approvals" in m["name"]]
    (execution,) = [e for m in machines for e in sfn.list_executions(stateMachineArn=m)["executions"] if e["name"] == task_id]
    assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "ABORTED"
    with local.client("async", principal="agentrail-approver") as approver:
        (approval,) = [
            a for a in approver.request("GET", "/approvals?status=pending").json()["approvals"] if a["task_id"] == task_id
        ]
        late = approver.request("POST", f"/approvals/{approval['approval_id']}/decision", json={"decision": "approve"})
    assert late.status_code == 409
    assert late.json()["error"] == "approval_expired"


def test_cancelling_a_finished_task_is_a_409(tasks: AgentApiClient, wait_for_task: Callable[..., dict[str, Any]]) -> None:
    task_id = _submit(tasks, {"message": "Calculate 1 + 1"})["task_id"]
    wait_for_task(tasks, task_id)

    response = tasks.request("DELETE", f"/tasks/{task_id}")

    assert response.status_code == 409
    assert response.json()["error"] == "task_finished"
    assert tasks.request("GET", f"/tasks/{task_id}").json()["status"] == "succeeded"


def test_a_long_task_runs_through_its_step_functions_workflow_to_success(
    local: Any,
    tasks: AgentApiClient,
    wait_for_task: Callable[..., dict[str, Any]],
    wait_for_execution: Callable[..., dict[str, Any]],
) -> None:
    task_id = _submit(tasks, {"message": "Calculate (12 + 30) * 2 and convert 10 km to mi", "task_type": "long"})["task_id"]

    task = wait_for_task(tasks, task_id)

    assert task["status"] == "succeeded"
    assert {c["tool"] for c in task["result"]["tool_calls"]} == {"calculator", "convert_units"}
    sfn = local.aws("stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if "LongTasks" in m["name"])
    (execution,) = [e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"] == task_id]
    assert wait_for_execution(sfn, execution["executionArn"])["status"] == "SUCCEEDED"
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered[:3] == ["Start", "PinVersion", "Done?"] and "Step" in entered and entered[-1] == "Finished"
    # the version of the step function that Start ran through `live`, which every later step invokes
    (pinned,) = [
        json.loads(e["stateExitedEventDetails"]["output"])["pinned"]
        for e in history
        if e.get("stateExitedEventDetails", {}).get("name") == "PinVersion"
    ]
    assert pinned["version"].isdigit()
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])["task_id"] == task_id
