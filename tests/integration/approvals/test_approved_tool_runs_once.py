"""An approved tool with side effects runs once, however often the step that runs it is retried.

The Resume step is retried by Step Functions (model throttling 4 times, Lambda errors 6 times) with the same
input; each retry here is that same input handed to the workflow function again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentrail_runtime.models.base import ModelResponse, ModelThrottledError
from agentrail_runtime.models.local import LocalModel


class ProcessDied(BaseException):
    """The execution environment dying after the tool ran (timeout, out of memory): nothing catches it."""


class FailsAfterTheTool(LocalModel):
    """The local model, raising ``failure`` on its first ``times`` calls that follow a tool result."""

    def __init__(self, failure: BaseException, *, times: int) -> None:
        self.failure, self.times = failure, times

    def converse(self, **request: Any) -> ModelResponse:
        if request["messages"][-1].tool_results and self.times > 0:
            self.times -= 1
            raise self.failure
        return super().converse(**request)


def decision_received(aws, paused) -> dict:
    """What SendTaskSuccess delivered to the waiting execution: the Resume step's input."""
    return json.loads(aws.execution_after_wait(paused.execution_arn)["output"])["decision"]


def approved(deployment, api_event, aws, monkeypatch, agents_with, model):
    approvals = deployment()
    paused = approvals.pause()
    assert approvals.call(api_event("decide-approve", approval_id=paused.approval_id)).status == 200
    monkeypatch.setattr(approvals.tasks, "agents", agents_with(model))
    resume = {"action": "resume", "task_id": paused.task_id, "decision": decision_received(aws, paused)}
    return approvals, paused, resume


def test_an_approved_refund_followed_by_a_throttled_model_runs_once_through_every_retry_of_resume(
    deployment, api_event, aws, monkeypatch, agents_with
):
    approvals, paused, resume = approved(
        deployment,
        api_event,
        aws,
        monkeypatch,
        agents_with,
        FailsAfterTheTool(ModelThrottledError("busy", model="local"), times=4),
    )

    for _ in range(4):  # the Resume step's retries of ModelThrottledError
        with pytest.raises(ModelThrottledError):
            approvals.workflow.handle(resume)
    finished = approvals.workflow.handle(resume)

    assert approvals.refunds == {"A-1002": 150.0}
    assert finished["status"] == "succeeded"
    task = approvals.task(paused.task_id)
    refund_calls = [c.outcome for c in task.result.tool_calls if c.tool == "issue_refund"]
    assert refund_calls == ["pending_approval", "success"]


def test_an_approved_refund_followed_by_a_crashed_function_runs_once_when_the_same_input_is_invoked_again(
    deployment, api_event, aws, monkeypatch, agents_with
):
    approvals, paused, resume = approved(
        deployment, api_event, aws, monkeypatch, agents_with, FailsAfterTheTool(ProcessDied(), times=1)
    )
    with pytest.raises(ProcessDied):
        approvals.workflow.handle(resume)
    assert approvals.refunds == {"A-1002": 150.0}  # the tool ran before the crash

    finished = approvals.workflow.handle(resume)  # Lambda's error, retried by the Resume step with the same input

    assert approvals.refunds == {"A-1002": 150.0}
    assert finished["status"] == "succeeded"
    assert '"refunded_usd": 150.0' in approvals.task(paused.task_id).result.answer
