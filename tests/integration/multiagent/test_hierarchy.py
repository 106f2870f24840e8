"""Hierarchical agents: the supervisor function behind every state of the plan → work → review → synthesize workflow.

The state machine is not run here: :func:`run_research` plays its states in order (the Choice rules of
HierarchicalAgents, the Map's tolerated failure percentage, the Catch to ``fail``) and hands each Lambda
task the payload Step Functions would, starting from the shared events in events/multiagent/.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import pytest

from agentrail_runtime.budgets import counter_key, utc_day
from agentrail_runtime.contract import BudgetLimit
from agentrail_runtime.models.base import Message
from agentrail_runtime.models.tokens import estimate_input_tokens
from agentrail_runtime.multiagent import SUPERVISOR_DEFINITION, SubtaskFailed
from agentrail_runtime.tasks.events import TaskEventNotPublished
from tests.integration.multiagent.conftest import BUDGET_TABLE, RESEARCH

# The supervisor's steps add no metrics of their own, so Powertools warns when it flushes only ColdStart.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


class MapFailed(Exception):
    """The FanOut Map exceeded its ToleratedFailurePercentage (``States.ExceedToleratedFailureThreshold``)."""


def run_research(handler, load_event, context, *, before_synthesize: Callable[[], None] | None = None) -> list[tuple[str, dict]]:
    """Run one research task through the workflow's states; returns each state's name and output, in order.

    ``before_synthesize`` runs between the last Review (or the Plan) and Synthesize: what happens meanwhile elsewhere."""
    plan_event = load_event("multiagent/plan.json")
    common = {"task_id": plan_event["task_id"], "correlation_id": plan_event["correlation_id"]}
    visited: list[tuple[str, dict]] = []

    def invoke(state: str, payload: dict) -> dict:
        output = handler(payload, context)
        visited.append((state, output))
        return output

    try:
        work = invoke("Plan", plan_event)
        review = {"round": 0, "budget_exceeded": False}
        if not work["finished"] and not work["budget_exceeded"]:  # the Planned? Choice
            while True:
                failures = 0
                for item in work["items"]:
                    try:
                        invoke("Work", {"action": "work", **item})
                    except SubtaskFailed as error:
                        visited.append(("Work", {"index": item["index"], "error": str(error)}))
                        failures += 1
                if work["items"] and 100 * failures / len(work["items"]) > work["tolerance"]:
                    raise MapFailed("the Map exceeded its tolerated failure percentage")
                review = invoke("Review", load_event("multiagent/review.json") | common | {"round": review["round"]})
                if review["rerun"]:
                    work = {"items": review["items"], "tolerance": work["tolerance"], "budget_exceeded": False}
                    continue
                if not review["budget_exceeded"] and review.get("too_many_failed"):
                    error = {"Error": "TooManyFailedSubtasks", "Cause": '{"errorMessage": "more subtasks failed than tolerated"}'}
                    invoke("MarkFailed", load_event("multiagent/fail.json") | common | {"error": error})
                    return visited
                break
        if before_synthesize is not None:
            before_synthesize()
        invoke("Synthesize", load_event("multiagent/synthesize.json") | common | {"budget_exceeded": review["budget_exceeded"]})
    except MapFailed as error:
        failure = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": json.dumps({"errorMessage": str(error)})}
        invoke("MarkFailed", load_event("multiagent/fail.json") | common | {"error": failure})
    return visited


def test_a_research_task_is_planned_reviewed_once_and_synthesized_into_one_answer(
    supervisor, research_task, aws, load_event, lambda_context, stdout_records
):
    handler = supervisor().handler

    visited = run_research(handler, load_event, lambda_context)

    assert [s["text"] for s in aws.store.subtasks(research_task)] == [
        "Research Lambda",
        "research flaky Step Functions",
        "compare DynamoDB and SQS",
    ]
    works = [output for state, output in visited if state == "Work"]
    assert works == [
        {"index": 0, "status": "done"},
        {"index": 1, "error": "subtask 1 gave a failed or weak result on attempt 1"},
        {"index": 2, "status": "done"},
        {"index": 1, "status": "done"},  # the review's re-run, attempt 2
    ]
    reviews = [output for state, output in visited if state == "Review"]
    assert [(r["rerun"], r["round"]) for r in reviews] == [(True, 1), (False, 1)]
    assert [state for state, _ in visited][-1] == "Synthesize"
    task = aws.task(research_task)
    assert task.status == "succeeded"
    assert task.result.data["review_reruns"] == 1
    assert [(s["status"], s["attempts"]) for s in task.result.data["subtasks"]] == [("done", 1), ("done", 2), ("done", 1)]
    answer = task.result.answer
    assert answer.startswith("Combined answer from 3 findings:")
    for note in (
        "AWS Lambda runs code without servers",
        "Step Functions coordinates services",
        "DynamoDB is a key-value",
        "SQS is a managed message queue",
    ):
        assert note in answer
    assert {agent: s.calls for agent, s in task.spend.items()} == {"supervisor": 2, "worker": 4}
    assert task.usage.total_tokens == sum(s.usage.total_tokens for s in task.spend.values())
    lines = [r for r in stdout_records() if "message" in r and r.get("task_id") == research_task]
    assert lines and {r["correlation_id"] for r in lines} == {load_event("multiagent/plan.json")["correlation_id"]}


def test_the_map_items_and_the_review_reruns_carry_ids_and_indexes_only_never_the_subtask_text(
    supervisor, research_task, aws, load_event, lambda_context
):
    # Given a research task run through every state, whose subtasks are stored in the task table
    visited = run_research(supervisor().handler, load_event, lambda_context)

    # When the states' outputs (what Step Functions keeps in the execution history) are read
    items = [item for state, output in visited if state in ("Plan", "Review") for item in output.get("items", [])]

    # Then the Map's items name a task, an index and an attempt, and no subtask text appears in any output
    assert items and all(set(item) == {"task_id", "correlation_id", "index", "attempt"} for item in items)
    history = json.dumps([output for _, output in visited])
    assert all(s["text"] not in history for s in aws.store.subtasks(research_task))


def test_the_shared_work_event_fails_the_flaky_subtask_on_its_first_attempt_only(
    supervisor, research_task, load_event, lambda_context, aws
):
    handler = supervisor().handler
    handler(load_event("multiagent/plan.json"), lambda_context)
    work = load_event("multiagent/work.json")

    with pytest.raises(SubtaskFailed, match="subtask 1 gave a failed or weak result on attempt 1"):
        handler(work, lambda_context)
    retried = handler(work | {"attempt": 2}, lambda_context)

    assert retried == {"index": 1, "status": "done"}
    [subtask] = [s for s in aws.store.subtasks(research_task) if s["index"] == 1]
    assert (subtask["status"], subtask["attempts"]) == ("done", 2)


def test_without_review_rounds_and_with_no_tolerance_too_many_subtasks_failed(
    supervisor, research_task, load_event, lambda_context, aws
):
    handler = supervisor(max_review_rounds=0, tolerated_failure_percentage=0)
    plan = handler.handler(load_event("multiagent/plan.json"), lambda_context)
    for item in plan["items"]:
        with contextlib.suppress(SubtaskFailed):
            handler.handler({"action": "work", **item}, lambda_context)

    review = handler.handler(load_event("multiagent/review.json"), lambda_context)
    # Reviewed? → TooManyFailed → MarkFailed, with the error the state machine builds.
    failed = handler.handler(
        load_event("multiagent/fail.json")
        | {"error": {"Error": "TooManyFailedSubtasks", "Cause": '{"errorMessage": "more subtasks failed than tolerated"}'}},
        lambda_context,
    )

    assert plan["tolerance"] == 0.0
    assert (review["rerun"], review["too_many_failed"], review["items"]) == (False, True, [])
    assert failed["status"] == "failed"
    task = aws.task(research_task)
    assert task.error.model_dump() == {"code": "TooManyFailedSubtasks", "message": "more subtasks failed than tolerated"}


def test_with_no_tolerance_the_map_itself_fails_the_task(supervisor, research_task, load_event, lambda_context, aws):
    handler = supervisor(max_review_rounds=1, tolerated_failure_percentage=0).handler

    visited = run_research(handler, load_event, lambda_context)

    assert [state for state, _ in visited][-1] == "MarkFailed"
    assert "Review" not in [state for state, _ in visited]
    assert aws.task(research_task).error.code == "States.ExceedToleratedFailureThreshold"


def test_a_spend_limit_ends_the_task_budget_exceeded_with_the_answers_gathered_so_far(
    supervisor, research_task, load_event, lambda_context, aws
):
    # The plan and the first subtask fit in 1,200 tokens; the second cannot afford its next call, the third never starts.
    handler = supervisor(max_task_tokens=1200).handler

    visited = run_research(handler, load_event, lambda_context)

    works = [output for state, output in visited if state == "Work"]
    assert works == [
        {"index": 0, "status": "done"},
        {"index": 1, "error": "subtask 1 gave a failed or weak result on attempt 1"},
        {"index": 2, "status": "skipped_budget"},
    ]
    [review] = [output for state, output in visited if state == "Review"]
    assert review["budget_exceeded"] is True
    task = aws.task(research_task)
    assert task.status == "budget_exceeded"
    assert task.error.model_dump() == {"code": "budget_exceeded", "message": "the spend limit was reached"}
    assert task.result.answer.startswith("1. research_topic returned")
    assert "AWS Lambda runs code without servers" in task.result.answer
    assert [s["status"] for s in task.result.data["subtasks"]] == ["done", "failed", "skipped_budget"]
    assert task.spend_limit_reached and task.usage.total_tokens <= 1200  # stopped before a call that would not fit
    [finished] = aws.task_events()
    assert finished["detail"]["status"] == "budget_exceeded"


def test_fail_stores_only_the_error_type_and_message(supervisor, research_task, load_event, lambda_context, aws):
    handler = supervisor().handler
    handler(load_event("multiagent/plan.json"), lambda_context)

    output = handler(load_event("multiagent/fail.json"), lambda_context)

    assert output == {"task_id": research_task, "status": "failed"}
    task = aws.task(research_task)
    assert task.error.model_dump() == {"code": "SubtaskFailed", "message": "subtask 1 gave a failed or weak result on attempt 2"}
    raw = json.dumps(aws.dynamodb.get_item(TableName="agentrail-team-tasks", Key={"task_id": {"S": research_task}})["Item"])
    assert "stackTrace" not in raw and "hierarchy.py" not in raw


def test_an_unknown_action_is_refused(supervisor, research_task, load_event, lambda_context):
    handler = supervisor().handler

    with pytest.raises(ValueError, match="unknown supervisor action"):
        handler(load_event("multiagent/plan.json") | {"action": "delete"}, lambda_context)


def test_a_finished_event_the_bus_refused_is_published_once_by_the_synthesize_steps_retry(
    supervisor, research_task, aws, load_event, lambda_context, refuse_put_events_once
):
    # Given the supervisor's first PutEvents, the synthesis's Task Finished, refused (EventBridge unreachable),
    module = supervisor()
    refused = refuse_put_events_once(module.tasks)
    with pytest.raises(TaskEventNotPublished):
        run_research(module.handler, load_event, lambda_context)
    assert refused == ["PutEvents"]
    assert aws.task(research_task).status == "succeeded"
    assert aws.task_events() == []

    # when Step Functions retries the Synthesize step with the same input,
    synthesize = load_event("multiagent/synthesize.json") | {"task_id": research_task, "budget_exceeded": False}
    assert module.handler(synthesize, lambda_context) == {"task_id": research_task, "status": "succeeded"}
    module.handler(synthesize, lambda_context)  # and once more: the outbox is empty now

    # then the event the outbox kept is published, once.
    [event] = aws.task_events()
    assert (event["detail-type"], event["detail"]["task_id"], event["detail"]["status"]) == (
        "Task Finished",
        research_task,
        "succeeded",
    )
    assert aws.task(research_task).event_pending is None


# -- daily budgets: every model call of the supervisor and the workers runs under them -----------------------------


def counter_tokens(aws, per: str, name: str, at: float) -> int:
    """Today's tokens on the counter of ``name`` (a tenant or an agent)."""
    item = aws.dynamodb.get_item(TableName=BUDGET_TABLE, Key={"pk": {"S": counter_key(per, name, utc_day(at))}}).get("Item", {})
    return int(item.get("tokens", {}).get("N", "0"))


def test_a_task_whose_supervisor_cannot_afford_its_next_call_ends_budget_exceeded_at_once_with_its_tokens(
    supervisor, research_task, aws, owner, load_event, lambda_context, clock
):
    # Given a tenant's daily budget that fits the supervisor's first planning call (its estimated input plus the
    # 1,024-token output cap) and not its second,
    prompt = Message.user(f"Plan subtasks for: {RESEARCH}")
    first = estimate_input_tokens(SUPERVISOR_DEFINITION.system_prompt, [prompt], [t.spec for t in SUPERVISOR_DEFINITION.tools])
    limit = first + 1024 + 10
    handler = supervisor(budgets=[BudgetLimit("tenant", "tokens", limit)]).handler

    # when the research task runs through the workflow,
    visited = run_research(handler, load_event, lambda_context)

    # then the plan stops before that call, no worker runs, and the task ends budget_exceeded naming the budget,
    assert [state for state, _ in visited] == ["Plan", "Synthesize"]
    assert visited[0][1]["budget_exceeded"] is True
    task = aws.task(research_task)
    assert task.status == "budget_exceeded"
    assert task.error.code == "budget_exceeded"
    assert f"daily budget of {limit:,} tokens per tenant" in task.error.message
    # with the tokens of the one call it made, which are exactly what the tenant's counter holds,
    assert task.steps == 1 and task.usage.total_tokens > 0
    assert set(task.spend) == {"supervisor"}
    assert counter_tokens(aws, "tenant", owner, clock.now) == task.usage.total_tokens
    # and Task Finished is announced once.
    [finished] = aws.task_events()
    assert finished["detail"]["status"] == "budget_exceeded"


def test_a_synthesis_that_would_cross_the_tenants_budget_ends_the_task_budget_exceeded_with_the_answers_so_far(
    supervisor, research_task, aws, owner, load_event, lambda_context, clock
):
    # Given a task planned and worked under a tenant's budget and the agents' own,
    limit = 1_000_000
    handler = supervisor(
        budgets=[BudgetLimit("tenant", "tokens", limit), BudgetLimit("agent", "tokens", limit)],
    ).handler
    other_tasks = 0

    def other_tasks_spend_all_but_50_tokens() -> None:
        # when the tenant's other tasks spend all but 50 tokens of its day before the synthesis,
        nonlocal other_tasks
        other_tasks = limit - 50 - counter_tokens(aws, "tenant", owner, clock.now)
        aws.dynamodb.update_item(
            TableName=BUDGET_TABLE,
            Key={"pk": {"S": counter_key("tenant", owner, utc_day(clock.now))}},
            UpdateExpression="ADD tokens :tokens",
            ExpressionAttributeValues={":tokens": {"N": str(other_tasks)}},
        )

    visited = run_research(handler, load_event, lambda_context, before_synthesize=other_tasks_spend_all_but_50_tokens)

    # then the supervisor makes no synthesis call, and the task ends budget_exceeded with the workers' answers,
    assert visited[-1] == ("Synthesize", {"task_id": research_task, "status": "budget_exceeded"})
    task = aws.task(research_task)
    assert task.status == "budget_exceeded"
    assert task.error.code == "budget_exceeded" and "per tenant" in task.error.message
    assert [s["status"] for s in task.result.data["subtasks"]] == ["done", "done", "done"]
    assert "AWS Lambda runs code without servers" in task.result.answer
    assert {agent: s.calls for agent, s in task.spend.items()} == {
        "supervisor": 2,
        "worker": 4,
    }  # the refused synthesis: a run of 0 tokens
    # and the counters hold exactly what was spent: the task's tokens per agent, and for the tenant, plus its other tasks.
    assert counter_tokens(aws, "agent", "supervisor", clock.now) == task.spend["supervisor"].usage.total_tokens > 0
    assert counter_tokens(aws, "agent", "worker", clock.now) == task.spend["worker"].usage.total_tokens > 0
    assert counter_tokens(aws, "tenant", owner, clock.now) == task.usage.total_tokens + other_tasks
    [finished] = aws.task_events()
    assert finished["detail"]["status"] == "budget_exceeded"


def test_a_worker_agent_over_its_daily_budget_stops_the_task_and_the_other_subtasks_never_call_the_model(
    supervisor, research_task, aws, owner, load_event, lambda_context, clock
):
    # Given the worker agent's daily budget already spent by earlier tasks,
    limit = 50_000
    aws.dynamodb.put_item(
        TableName=BUDGET_TABLE,
        Item={"pk": {"S": counter_key("agent", "worker", utc_day(clock.now))}, "tokens": {"N": str(limit)}},
    )
    handler = supervisor(budgets=[BudgetLimit("agent", "tokens", limit)]).handler

    # when a research task runs,
    visited = run_research(handler, load_event, lambda_context)

    # then the first subtask stops before its first call and ends the task; the others are skipped, nothing re-runs,
    works = [output for state, output in visited if state == "Work"]
    assert works == [
        {"index": 0, "status": "skipped_budget"},
        {"index": 1, "status": "skipped"},
        {"index": 2, "status": "skipped"},
    ]
    [review] = [output for state, output in visited if state == "Review"]
    assert (review["rerun"], review["budget_exceeded"]) == (False, True)
    task = aws.task(research_task)
    assert task.status == "budget_exceeded"
    assert "per agent" in task.error.message
    assert task.result.answer is None
    # the task reports the supervisor's planning tokens, and the worker's counter is unchanged.
    assert task.usage.total_tokens == task.spend["supervisor"].usage.total_tokens > 0
    assert task.spend["worker"].usage.total_tokens == 0
    assert counter_tokens(aws, "agent", "worker", clock.now) == limit
    [finished] = aws.task_events()
    assert finished["detail"]["status"] == "budget_exceeded"
