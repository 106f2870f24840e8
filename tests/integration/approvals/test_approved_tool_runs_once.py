"""An approved tool with side effects runs once, however often the step that runs it is retried.

The ApprovalWorkflow's definition, as the construct renders it (with retry waits under a second), runs in
moto's Step Functions; its Lambda tasks run the workflow function in this process. After the decision, the
Resume step runs the approved refund and then calls the model again: when that call is throttled (retried
4 times) or the invocation is lost after the tool ran (a Lambda service error, retried up to 6 times), Step
Functions runs Resume again with the same input, and the refund must not be issued again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from agentrail_runtime.models.base import ModelResponse, ModelThrottledError
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.tasks.service import TaskSubmission

REFUND_REQUEST = "Please refund 150 USD for order A-1002"
REQUESTER = "iam:arn:aws:iam::123456789012:role/agentrail-caller"


class FailsAfterTheTool(LocalModel):
    """The local model, raising ``failure`` on its first ``times`` calls that follow a tool result."""

    def __init__(self, failure: BaseException, *, times: int) -> None:
        self.failure, self.times = failure, times

    def converse(self, **request: Any) -> ModelResponse:
        if request["messages"][-1].tool_results and self.times > 0:
            self.times -= 1
            raise self.failure
        return super().converse(**request)


@dataclass
class Running:
    """A reviewed task whose execution of the rendered ApprovalWorkflow waits for a decision on its refund."""

    approvals: Any
    function: Any
    task_id: str
    execution_arn: str
    approval_id: str


@pytest.fixture
def waiting_for_approval(aws, deployment, workflow_definitions, workflow_function, monkeypatch) -> Running:
    """Submit a ``reviewed`` task to the rendered ApprovalWorkflow and wait until it asks for approval."""
    approvals = deployment()
    function = workflow_function(approvals.workflow.handle)
    machine = aws.sfn.create_state_machine(
        name="agentrail-approval-workflow",
        definition=workflow_definitions["reviewed"],
        roleArn="arn:aws:iam::123456789012:role/agentrail-approval-workflow",
    )["stateMachineArn"]
    monkeypatch.setitem(approvals.tasks.routes, "reviewed", machine)
    task = approvals.tasks.submit(TaskSubmission(message=REFUND_REQUEST, task_type="reviewed"), owner=REQUESTER)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        requested = [i.answer for i in function.invocations if i.event["action"] == "request_approval" and i.answer]
        if requested:
            assert task.execution_arn is not None
            return Running(approvals, function, task.task_id, task.execution_arn, requested[0]["approval_id"])
        time.sleep(0.02)
    raise AssertionError(f"the execution never asked for approval: {aws.sfn.describe_execution(executionArn=task.execution_arn)}")


def test_an_approved_refund_followed_by_a_throttled_model_runs_once_through_the_resume_steps_four_retries(
    aws, waiting_for_approval, api_event, agents_with, monkeypatch, history, failures
):
    run = waiting_for_approval
    throttled_four_times = FailsAfterTheTool(ModelThrottledError("busy", model="local"), times=4)
    monkeypatch.setattr(run.approvals.tasks, "agents", agents_with(throttled_four_times))

    decided = run.approvals.call(api_event("decide-approve", approval_id=run.approval_id))
    execution = aws.execution_after_wait(run.execution_arn, seconds=30)

    assert decided.status == 200
    assert execution["status"] == "SUCCEEDED", execution
    assert failures(history(aws.sfn, run.execution_arn), "Resume") == ["ModelThrottledError"] * 4
    assert run.function.errors("resume") == ["ModelThrottledError"] * 4 + [None]
    assert run.approvals.refunds == {"A-1002": 150.0}
    task = run.approvals.task(run.task_id)
    assert task.status.value == "succeeded"
    assert [c.outcome for c in task.result.tool_calls if c.tool == "issue_refund"] == ["pending_approval", "success"]


def test_an_approved_refund_whose_invocation_is_lost_after_the_tool_runs_once_through_the_resume_steps_retry(
    aws, waiting_for_approval, api_event, agents_with, monkeypatch, history, failures, invocation_lost
):
    run = waiting_for_approval
    monkeypatch.setattr(run.approvals.tasks, "agents", agents_with(FailsAfterTheTool(invocation_lost(), times=1)))

    decided = run.approvals.call(api_event("decide-approve", approval_id=run.approval_id))
    execution = aws.execution_after_wait(run.execution_arn, seconds=30)

    assert decided.status == 200
    assert execution["status"] == "SUCCEEDED", execution
    assert failures(history(aws.sfn, run.execution_arn), "Resume") == ["Lambda.ServiceException"]
    assert run.function.errors("resume") == ["Lambda.ServiceException", None]
    assert run.approvals.refunds == {"A-1002": 150.0}
    assert '"refunded_usd": 150.0' in run.approvals.task(run.task_id).result.answer
