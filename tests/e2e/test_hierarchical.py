"""Hierarchical agents end to end: a supervisor plans, a Step Functions distributed Map fans out to workers, the review re-runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow
RESEARCH = {"message": "Research Lambda; research flaky Step Functions; compare DynamoDB and SQS", "task_type": "research"}


def test_a_task_fans_out_survives_a_tolerated_worker_failure_and_completes_after_a_review_rerun(
    local: Any,
    wait_for_task: Callable[..., dict[str, Any]],
    wait_for_execution: Callable[..., dict[str, Any]],
    log_records: Callable[[Path], list[dict[str, Any]]],
) -> None:
    with local.client("hierarchical") as api:
        submitted = api.request("POST", "/tasks", json=RESEARCH)
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["task_id"]

        task = wait_for_task(api, task_id, seconds=60)

    assert task["status"] == "succeeded"
    data = task["result"]["data"]
    assert data["review_reruns"] >= 1
    assert [(s["text"], s["status"], s["attempts"]) for s in data["subtasks"]] == [
        ("Research Lambda", "done", 1),
        ("research flaky Step Functions", "done", 2),
        ("compare DynamoDB and SQS", "done", 1),
    ]
    assert task["result"]["answer"].startswith("Combined answer from 3 findings")
    assert set(task["spend"]) == {"supervisor", "worker"}
    assert task["spend"]["worker"]["calls"] == 4

    sfn = local.aws("stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if "Supervisor" in m["name"])
    (execution,) = [e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"] == task_id]
    assert wait_for_execution(sfn, execution["executionArn"])["status"] == "SUCCEEDED"
    runs = [
        sfn.describe_map_run(mapRunArn=r["mapRunArn"])
        for r in sfn.list_map_runs(executionArn=execution["executionArn"])["mapRuns"]
    ]
    counts = sorted((r["itemCounts"]["total"], r["itemCounts"]["succeeded"], r["itemCounts"]["failed"]) for r in runs)
    assert counts == [(1, 1, 0), (3, 2, 1)], "the fan-out, then the review's re-run of the failed subtask"
    assert {r["toleratedFailurePercentage"] for r in runs} == {50.0}

    failures = [
        r
        for r in log_records(local.function_log("SupervisorStepsFunction"))
        if isinstance(r.get("message"), dict) and r["message"].get("errorType") == "SubtaskFailed"
    ]
    assert any("subtask 1" in f["message"]["errorMessage"] for f in failures)
