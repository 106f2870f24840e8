"""Long tasks: the Step Functions workflow's Lambda (start, step, fail), checkpointing the agent between steps."""

from __future__ import annotations

import copy
import json

import pytest

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.loop import AgentCheckpoint
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.tasks.store import INLINE_LIMIT

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

REQUEST = "Calculate (12 + 30) * 2 and convert 10 km to mi"


@pytest.fixture
def workflow(task_handler):
    """The workflow function with one model call per step, so a request needing two tools takes three steps."""
    return task_handler("task_workflow", slice_steps="1")


@pytest.fixture
def long_task(task_handler, api_event, call):
    """Submit a task of the ``long`` type: it is stored and a (moto) execution named after it is started."""
    api = task_handler("tasks").handler

    def submit(message: str = REQUEST) -> str:
        reply = call(api, api_event("submit", body={"message": message, "task_type": "long"}))
        assert reply.status == 202, reply.body
        return reply.body["task_id"]

    return submit


@pytest.fixture
def step_event(load_event):
    def build(action: str, task_id: str) -> dict:
        event = copy.deepcopy(load_event(f"tasks/workflow-{action}.json"))
        event["task_id"] = task_id
        return event

    return build


def checkpoint_of(aws, task_id: str) -> AgentCheckpoint:
    item = aws.task_item(task_id)
    if "checkpoint_json" in item:
        return AgentCheckpoint.model_validate_json(item["checkpoint_json"]["S"])
    body = aws.s3.get_object(Bucket=aws.bucket, Key=item["checkpoint_s3_key"]["S"])["Body"].read()
    return AgentCheckpoint.model_validate_json(body)


def test_each_step_continues_from_the_checkpoint_the_previous_one_saved(aws, workflow, long_task, step_event, lambda_context):
    task_id = long_task()

    started = workflow.handler(step_event("start", task_id), lambda_context)
    after_start = checkpoint_of(aws, task_id)
    progress = [workflow.handler(step_event("step", task_id), lambda_context) for _ in range(2)]
    checkpoints = [checkpoint_of(aws, task_id)]
    finished = workflow.handler(step_event("step", task_id), lambda_context)

    assert (started["task_id"], started["done"], started["status"]) == (task_id, False, "running")
    assert (after_start.steps, [m.role for m in after_start.messages]) == (0, ["user"])
    assert [(p["done"], p["steps"]) for p in progress] == [(False, 1), (False, 2)]
    assert checkpoints[0].steps == 2
    assert [c.tool for c in checkpoints[0].tool_calls] == ["calculator", "convert_units"]
    assert (finished["done"], finished["status"], finished["steps"]) == (True, "succeeded", 3)
    item = aws.task_item(task_id)
    assert item["status"]["S"] == "succeeded"
    assert json.loads(item["result_json"]["S"])["answer"] == (
        'calculator returned 84; convert_units returned {"unit": "mi", "value": 6.2137}.'
    )
    assert [(e["detail"]["task_id"], e["detail"]["status"]) for e in aws.task_events()] == [(task_id, "succeeded")]


def test_a_step_after_the_task_finished_does_nothing(aws, workflow, long_task, step_event, lambda_context):
    task_id = long_task("Calculate 2 + 2")
    workflow.handler(step_event("start", task_id), lambda_context)
    while not workflow.handler(step_event("step", task_id), lambda_context)["done"]:
        pass
    item = aws.task_item(task_id)

    again = workflow.handler(step_event("step", task_id), lambda_context)

    assert again == {"task_id": task_id, "done": True, "awaiting_approval": False, "status": "succeeded"}
    assert aws.task_item(task_id) == item


REPORT = "Quarterly figures, region by region, line after line. " * 6_000


@tool(local_patterns=[r"\bfetch the (?P<name>[a-z]+) report\b"])
def fetch_report(name: str) -> str:
    """Fetch a long report by name."""
    return REPORT


reports = AgentDefinition(name="reports", system_prompt="Summarize reports.", tools=(*demo_definition.tools, fetch_report))


def test_a_checkpoint_too_large_for_an_item_is_kept_in_s3_and_read_back(
    aws, workflow, long_task, step_event, lambda_context, agents_with, monkeypatch
):
    monkeypatch.setattr(
        workflow.steps.tasks,
        "agents",
        agents_with(LocalModel(), definition=reports, token_budget=1_000_000, max_tool_result_bytes=1_000_000),
    )
    task_id = long_task("Please fetch the quarterly report")
    workflow.handler(step_event("start", task_id), lambda_context)

    workflow.handler(step_event("step", task_id), lambda_context)

    item = aws.task_item(task_id)
    assert "checkpoint_json" not in item
    assert item["checkpoint_s3_key"]["S"] == f"checkpoints/{task_id}.json"
    stored = aws.s3.get_object(Bucket=aws.bucket, Key=f"checkpoints/{task_id}.json")["Body"].read()
    assert len(stored) > INLINE_LIMIT
    assert checkpoint_of(aws, task_id).messages[-1].tool_results[0].content == REPORT

    finished = workflow.handler(step_event("step", task_id), lambda_context)

    assert (finished["done"], finished["status"]) == (True, "succeeded")
    result = json.loads(aws.task_item(task_id)["result_json"]["S"])
    assert result["answer"].startswith("fetch_report returned Quarterly figures")


def test_fail_stores_only_the_error_type_and_message_never_the_stack_trace(
    aws, workflow, long_task, step_event, lambda_context, load_event
):
    task_id = long_task()
    workflow.handler(step_event("start", task_id), lambda_context)
    event = step_event("fail", task_id)
    assert "stackTrace" in json.loads(event["error"]["Cause"])

    answered = workflow.handler(event, lambda_context)

    assert answered == {"task_id": task_id, "done": True, "awaiting_approval": False, "status": "failed"}
    item = aws.task_item(task_id)
    assert item["status"]["S"] == "failed"
    assert json.loads(item["error_json"]["S"]) == {
        "code": "TimeoutError",
        "message": "the order service timed out after 30 seconds",
    }
    stored = json.dumps(item)
    assert "stackTrace" not in stored and "workflow.py" not in stored and 'File \\"' not in stored
    [failed] = aws.task_events()
    assert failed["detail"]["error"] == {"code": "TimeoutError", "message": "the order service timed out after 30 seconds"}


def test_fail_after_the_task_finished_leaves_the_outcome_alone(aws, workflow, long_task, step_event, lambda_context):
    task_id = long_task("Calculate 2 + 2")
    workflow.handler(step_event("start", task_id), lambda_context)
    while not workflow.handler(step_event("step", task_id), lambda_context)["done"]:
        pass

    answered = workflow.handler(step_event("fail", task_id), lambda_context)

    assert answered == {"task_id": task_id, "done": True, "awaiting_approval": False, "status": "unchanged"}
    assert aws.task_item(task_id)["status"]["S"] == "succeeded"


def test_start_of_a_task_cancelled_before_the_workflow_ran_ends_the_workflow(
    aws, workflow, long_task, step_event, lambda_context, task_handler, api_event, call
):
    task_id = long_task()
    call(task_handler("tasks").handler, api_event("cancel-task", task_id=task_id))

    started = workflow.handler(step_event("start", task_id), lambda_context)

    assert started == {"task_id": task_id, "done": True, "awaiting_approval": False, "status": "cancelled"}
    assert "checkpoint_json" not in aws.task_item(task_id)


def test_an_unknown_workflow_action_is_an_error(workflow, lambda_context):
    with pytest.raises(ValueError, match="unknown workflow action"):
        workflow.handler({"action": "explode", "task_id": "0" * 32, "correlation_id": None}, lambda_context)


def test_a_workflow_step_carries_its_task_id_on_every_log_line_and_its_trace(
    aws, workflow, long_task, step_event, lambda_context
):
    from agentrail_runtime.observability import logger

    task_id = long_task()

    workflow.handler(step_event("start", task_id), lambda_context)

    # correlate() appended it for the rest of the invocation, and put the same key on the trace as an annotation.
    assert logger.get_current_keys()["task_id"] == task_id


def test_a_long_task_emits_each_steps_latency_once_and_its_totals_and_wall_time_once_at_its_end(
    aws, workflow, long_task, step_event, lambda_context, stdout_records
):
    task_id = long_task()
    workflow.handler(step_event("start", task_id), lambda_context)
    stdout_records()

    while not workflow.handler(step_event("step", task_id), lambda_context)["done"]:
        pass

    emitted = [r for r in stdout_records() if "_aws" in r]
    assert sum(len(r.get("StepLatency", [])) for r in emitted) == 3  # three slices of one model call each
    [totals] = [r for r in emitted if "Steps" in r]
    assert (totals["Steps"], totals["Tasks_completed"], len(totals["TaskLatency"])) == ([3.0], [1.0], 1)
    assert sorted(r["tool"] for r in emitted if "ToolCalls" in r) == ["calculator", "convert_units"]


def test_a_workflow_that_failed_counts_the_task_as_failed_once(
    aws, workflow, long_task, step_event, lambda_context, stdout_records
):
    task_id = long_task()
    workflow.handler(step_event("start", task_id), lambda_context)
    stdout_records()

    workflow.handler(step_event("fail", task_id), lambda_context)
    workflow.handler(step_event("fail", task_id), lambda_context)  # a retried Catch step changes nothing

    assert [r["Tasks_failed"] for r in stdout_records() if "Tasks_failed" in r] == [[1.0]]
