"""Approvals as metrics: the scheduled function emits how many wait and the oldest's age; a rejection is an outcome."""

from __future__ import annotations

import json

import pytest

from agentrail_runtime.approvals import ApprovalStatus

from .conftest import APPROVALS_TABLE

# The approval-metrics function flushes no metric of the function itself (its record is written at once).
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def emf(records: list[dict]) -> list[dict]:
    return [r for r in records if "_aws" in r]


def dimension_sets(record: dict) -> list[list[str]]:
    return [dims for directive in record["_aws"]["CloudWatchMetrics"] for dims in directive["Dimensions"]]


def test_the_scheduled_function_emits_the_pending_count_and_the_age_of_the_oldest(
    deployment, handler_module, lambda_context, clock, stdout_records
):
    # given two approvals requested an hour apart, and a third decided
    approvals = deployment()
    approvals.pause("task-oldest")
    clock.advance(3600)
    approvals.pause("task-newer")
    decided = approvals.pause("task-decided")
    approvals.api_service.approvals.decide(decided.approval_id, status=ApprovalStatus.APPROVED, actor="someone", comment=None)
    clock.advance(600)
    stdout_records()

    # when the schedule invokes the approval-metrics function
    emitter = handler_module("approval_metrics", {"AGENT_APPROVAL_TABLE": APPROVALS_TABLE})
    answer = emitter.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, lambda_context)

    # then one record carries both, under the service alone
    [record] = [r for r in emf(stdout_records()) if "ApprovalsPending" in r]
    assert (record["ApprovalsPending"], record["OldestPendingApprovalAgeSeconds"]) == ([2.0], [4200.0])
    assert dimension_sets(record) == [["service"]]
    assert answer == {"pending": 2, "oldest_age_seconds": 4200}


def test_with_no_approval_pending_the_count_and_the_age_are_zero(deployment, handler_module, lambda_context, stdout_records):
    deployment()

    emitter = handler_module("approval_metrics", {"AGENT_APPROVAL_TABLE": APPROVALS_TABLE})
    emitter.handler({}, lambda_context)

    [record] = [r for r in emf(stdout_records()) if "ApprovalsPending" in r]
    assert (record["ApprovalsPending"], record["OldestPendingApprovalAgeSeconds"]) == ([0.0], [0.0])


def test_a_rejected_approval_counts_as_a_rejected_outcome_with_the_agent_version(deployment, api_event, aws, stdout_records):
    approvals = deployment()
    paused = approvals.pause()
    approvals.call(api_event("decide-reject", approval_id=paused.approval_id))
    decision = aws.execution_after_wait(paused.execution_arn)
    stdout_records()

    approvals.workflow.handle({"action": "resume", "task_id": paused.task_id, "decision": _decision(decision)})

    records = emf(stdout_records())
    [rejected] = [r for r in records if "Tasks_rejected" in r]
    assert rejected["Tasks_rejected"] == [1.0]
    assert dimension_sets(rejected) == [["service"], ["service", "agent", "model"]]
    assert rejected["agent_version"] == approvals.tasks.agents.version
    # the task then finishes: its run record is written once, at its end, with the task's wall time
    [finished] = [r for r in records if "Tasks_completed" in r]
    assert "TaskLatency" in finished


def _decision(execution: dict) -> dict:
    return json.loads(execution["output"])["decision"]
