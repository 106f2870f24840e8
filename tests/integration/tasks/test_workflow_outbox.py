"""The ``Task Finished`` event of a workflow task is never lost when ``PutEvents`` fails after the status write.

The LongTaskWorkflow's definition, as the construct renders it (retry waits under a second), runs in moto's
Step Functions; its Lambda tasks run the workflow handler in this process. The status write puts the event
in the task's outbox (``event_pending``); when EventBridge then fails, the step fails with
``TaskEventNotPublished``, Step Functions retries the step, and the retry finds the task finished with its
event pending and publishes it, once.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from agentrail_runtime.tasks.events import TASK_FINISHED, TaskEventNotPublished, TaskEvents
from agentrail_runtime.tasks.models import TaskRecord

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def long_tasks(aws, task_handler, workflow_definitions, workflow_function, lambda_context, call, api_event):
    """``submit(message)``: ``POST /tasks`` of a ``long`` task, routed to the rendered LongTaskWorkflow, whose
    steps the workflow handler (one model call per step) answers; returns the task id and its execution's ARN."""
    machine = aws.sfn.create_state_machine(
        name="agentrail-long-task-workflow",
        definition=workflow_definitions["long"],
        roleArn="arn:aws:iam::123456789012:role/agentrail-long-tasks",
    )["stateMachineArn"]
    workflow = task_handler("task_workflow", slice_steps="1")
    function = workflow_function(lambda event: workflow.handler(event, lambda_context))
    api = task_handler("tasks", routes=json.dumps({"default": "queue", "long": machine})).handler

    def submit(message: str) -> tuple[str, str]:
        reply = call(api, api_event("submit", body={"message": message, "task_type": "long"}))
        assert reply.status == 202, reply.body
        task_id = reply.body["task_id"]
        return task_id, aws.task_item(task_id)["execution_arn"]["S"]

    submit.workflow, submit.function = workflow, function  # type: ignore[attr-defined]
    return submit


def finished(aws, execution_arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (execution := aws.sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution is still running"
        time.sleep(0.02)
    return execution


def test_an_event_refused_after_the_final_steps_status_write_is_published_once_by_the_steps_retry(
    aws, long_tasks, history, failures, refuse_put_events_once
):
    refused = refuse_put_events_once(long_tasks.workflow.tasks)

    task_id, execution_arn = long_tasks("Calculate 2 + 2")
    execution = finished(aws, execution_arn)

    assert refused == ["PutEvents"]
    assert execution["status"] == "SUCCEEDED", execution
    assert failures(history(aws.sfn, execution_arn), "Step") == ["TaskEventNotPublished"]
    assert long_tasks.function.errors("step")[-2:] == ["TaskEventNotPublished", None]
    [event] = aws.task_events()
    assert (event["detail-type"], event["detail"]["task_id"], event["detail"]["status"]) == (
        "Task Finished",
        task_id,
        "succeeded",
    )
    item = aws.task_item(task_id)
    assert item["status"]["S"] == "succeeded"
    assert "event_pending" not in item


def test_an_event_refused_after_mark_faileds_status_write_is_published_once_by_its_retry(
    aws, long_tasks, agents_with, counting_model, monkeypatch, history, failures, refuse_put_events_once
):
    unreachable = counting_model(fail_on="Calculate", failure=RuntimeError("the calculator service is unreachable"))
    monkeypatch.setattr(long_tasks.workflow.tasks, "agents", agents_with(unreachable))
    refused = refuse_put_events_once(long_tasks.workflow.tasks)

    task_id, execution_arn = long_tasks("Calculate 2 + 2")
    execution = finished(aws, execution_arn)

    assert refused == ["PutEvents"]
    [event] = aws.task_events()
    assert (event["detail"]["task_id"], event["detail"]["status"]) == (task_id, "failed")
    assert (execution["status"], execution.get("error")) == ("FAILED", "AgentTaskFailed")
    steps = history(aws.sfn, execution_arn)
    assert failures(steps, "Step") == ["RuntimeError"]
    assert failures(steps, "MarkFailed") == ["TaskEventNotPublished"]
    assert event["detail"]["error"] == {"code": "RuntimeError", "message": "the calculator service is unreachable"}
    item = aws.task_item(task_id)
    assert item["status"]["S"] == "failed"
    assert "event_pending" not in item


def test_an_entry_eventbridge_refuses_is_a_task_event_not_published_naming_its_error_code(aws):
    # moto's PutEvents never refuses a single entry (EventBridge does, with 200 and FailedEntryCount): a Stubber.
    events = boto3.client("events")
    record = TaskRecord(task_id="0" * 32, owner="iam:alice", task_type="long", message="m", created_at=1, updated_at=1)

    with Stubber(events) as stub:
        refused = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]}
        stub.add_response("put_events", refused)
        with pytest.raises(TaskEventNotPublished, match=r"refused the task event \(ThrottlingException\)"):
            TaskEvents("agentrail-task-events", client=events).publish(TASK_FINISHED, record)


def test_an_execution_that_started_on_version_1_runs_every_later_step_on_version_1_after_the_alias_moves_to_2(aws, long_tasks):
    # given: a long task of several steps (one model call each) whose first step moves `live` to version 2, as a
    # deployment does while the execution runs
    handle = long_tasks.function.handle

    def deploy_during_the_first_step(event: dict[str, Any]) -> Any:
        if event.get("action") == "step":
            long_tasks.function.live_version = "2"
        return handle(event)

    long_tasks.function.handle = deploy_during_the_first_step
    # when: the execution runs to its end
    task_id, execution_arn = long_tasks("Calculate (2 + 3) * 4 and convert 10 km to mi")
    execution = finished(aws, execution_arn)
    # then: Start ran on version 1 through the alias, and every step after it on version 1 too
    assert execution["status"] == "SUCCEEDED", execution
    ran = [(i.event["action"], i.version) for i in long_tasks.function.invocations]
    assert ran[0] == ("start", "1")
    assert len(ran) > 2 and all(version == "1" for _, version in ran), ran
    assert long_tasks.function.live_version == "2"
    assert aws.task_item(task_id)["status"]["S"] == "succeeded"
