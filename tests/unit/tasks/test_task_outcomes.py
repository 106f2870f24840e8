"""How an agent run or an error becomes a task's status and stored cause."""

from __future__ import annotations

import json

import pytest

from agentrail_runtime.agent.loop import AgentResult, AgentStatus
from agentrail_runtime.models.base import ModelThrottledError, Usage
from agentrail_runtime.tasks.models import CANCELLABLE, FINISHED, TaskStatus
from agentrail_runtime.tasks.service import _status_for, short_cause

STACK_TRACE = [
    '  File "/var/task/agentrail_handlers/task_workflow/app.py", line 20, in handler\n    return steps.handle(event)\n',
    '  File "/opt/python/agentrail_runtime/workflows/long_task.py", line 43, in handle\n    return self.step(task_id)\n',
]


def result(status: AgentStatus) -> AgentResult:
    return AgentResult(
        status=status,
        answer="done" if status == AgentStatus.COMPLETED else None,
        model="local",
        steps=2,
        usage=Usage(input_tokens=10, output_tokens=5),
        cost_usd=0.0,
        tool_calls=[],
        new_messages=[],
    )


# -- status mapping ----------------------------------------------------------------------------


def test_a_completed_run_succeeds_without_an_error():
    assert _status_for(result(AgentStatus.COMPLETED)) == (TaskStatus.SUCCEEDED, None)


@pytest.mark.parametrize("status", [AgentStatus.MAX_STEPS_EXCEEDED, AgentStatus.TOKEN_BUDGET_EXCEEDED])
def test_a_run_stopped_by_a_limit_fails_naming_the_limit(status):
    task_status, error = _status_for(result(status))

    assert task_status == TaskStatus.FAILED
    assert error.code == status.value
    assert error.message == f"The agent stopped: {status.value}."


def test_a_run_waiting_for_approval_fails_when_the_task_type_has_no_approval_workflow():
    task_status, error = _status_for(result(AgentStatus.AWAITING_APPROVAL))

    assert task_status == TaskStatus.FAILED
    assert error.code == "approval_required"


def test_finished_and_cancellable_statuses_do_not_overlap():
    assert not FINISHED & CANCELLABLE
    assert set(TaskStatus) == FINISHED | CANCELLABLE


# -- short_cause -------------------------------------------------------------------------------


def test_an_exception_becomes_its_type_and_message():
    cause = short_cause(ModelThrottledError("Bedrock throttled the request", model="bedrock:x"))

    assert (cause.code, cause.message) == ("ModelThrottledError", "Bedrock throttled the request")


def test_an_exception_without_a_message_is_named_by_its_type():
    assert short_cause(TimeoutError()).message == "TimeoutError"


def test_a_long_exception_message_is_bounded():
    assert len(short_cause(RuntimeError("x" * 10_000)).message) == 500


def test_a_step_functions_error_keeps_the_error_type_and_message_but_not_the_stack_trace():
    error = {
        "Error": "TimeoutError",
        "Cause": json.dumps(
            {"errorMessage": "the order service timed out", "errorType": "TimeoutError", "stackTrace": STACK_TRACE}
        ),
    }

    cause = short_cause(error)

    assert (cause.code, cause.message) == ("TimeoutError", "the order service timed out")
    assert "File" not in cause.model_dump_json()


def test_a_step_functions_error_with_a_plain_text_cause_keeps_only_its_first_line():
    cause = short_cause({"Error": "States.Timeout", "Cause": "The task timed out.\nTraceback (most recent call last):"})

    assert (cause.code, cause.message) == ("States.Timeout", "The task timed out.")


def test_a_step_functions_error_without_a_cause_is_named_by_its_error():
    assert short_cause({"Error": "States.Runtime"}).model_dump() == {"code": "States.Runtime", "message": "States.Runtime"}
    assert short_cause({}).model_dump() == {"code": "Error", "message": "Error"}


def test_a_cause_with_only_an_error_type_uses_it_as_the_message():
    cause = short_cause({"Error": "Lambda.Unknown", "Cause": json.dumps({"errorType": "Runtime.ExitError"})})

    assert cause.message == "Runtime.ExitError"
