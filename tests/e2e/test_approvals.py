"""Human approval pauses end to end: a refund over 100 USD waits for the approver, who approves, rejects or lets it time out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agentrail_cli.client import AgentApiClient

pytestmark = pytest.mark.slow
REFUND = {"message": "Please refund 150 USD for order A-1002", "task_type": "reviewed"}
APPROVER = "agentrail-approver"
Waiter = Callable[..., dict[str, Any]]


@pytest.fixture
def tasks(local: Any) -> Iterator[AgentApiClient]:
    with local.client("async") as api:
        yield api


@pytest.fixture
def approver(local: Any) -> Iterator[AgentApiClient]:
    with local.client("async", principal=APPROVER) as api:
        yield api


def _waiting_refund(tasks: AgentApiClient, approver: AgentApiClient, wait_for_task: Waiter) -> tuple[str, str]:
    """Submit the refund, wait until it pauses; returns the task id and its approval id."""
    submitted = tasks.request("POST", "/tasks", json=REFUND)
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["task_id"]
    assert wait_for_task(tasks, task_id, until={"waiting_approval"})["result"] is None
    pending = approver.request("GET", "/approvals?status=pending")
    assert pending.status_code == 200, pending.text
    (approval,) = [a for a in pending.json()["approvals"] if a["task_id"] == task_id]
    assert (approval["tool"], approval["arguments"], approval["status"]) == (
        "issue_refund",
        {"amount_usd": 150.0, "order_id": "A-1002"},
        "pending",
    )
    return task_id, approval["approval_id"]


def _decide(client: AgentApiClient, approval_id: str, decision: str, comment: str | None = None) -> Any:
    body = {"decision": decision, **({"comment": comment} if comment else {})}
    return client.request("POST", f"/approvals/{approval_id}/decision", json=body)


def _workflow_states(local: Any, task_id: str) -> tuple[str, list[str]]:
    """The status of the task's approval workflow execution and the states it entered, in order."""
    sfn = local.aws("stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if "Approvals" in m["name"])
    (execution,) = [e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"] == task_id]
    events = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return sfn.describe_execution(executionArn=execution["executionArn"])["status"], entered


def _task_token(local: Any, approval_id: str) -> str:
    dynamodb = local.aws("dynamodb")
    table = next(name for name in dynamodb.list_tables()["TableNames"] if "ApprovalsApprovalsTable" in name)
    return dynamodb.get_item(TableName=table, Key={"approval_id": {"S": approval_id}})["Item"]["task_token"]["S"]


def test_an_approved_refund_completes_with_the_tools_result(
    local: Any, tasks: AgentApiClient, approver: AgentApiClient, wait_for_task: Waiter
) -> None:
    task_id, approval_id = _waiting_refund(tasks, approver, wait_for_task)

    decided = _decide(approver, approval_id, "approve", "Checked with the customer")

    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["decided_by"]) == ("approved", local.principal(APPROVER))
    task = wait_for_task(tasks, task_id)
    assert task["status"] == "succeeded"
    assert "refund issued" in task["result"]["answer"] and "150" in task["result"]["answer"]
    outcomes = [(c["tool"], c["outcome"]) for c in task["result"]["tool_calls"]]
    assert ("issue_refund", "pending_approval") in outcomes and ("issue_refund", "success") in outcomes
    audit = approver.request("GET", f"/approvals/{approval_id}").json()["audit"]
    assert [(e["event"], e["actor"]) for e in audit] == [
        ("requested", local.principal()),
        ("approved", local.principal(APPROVER)),
    ]
    status, entered = _workflow_states(local, task_id)
    assert status == "SUCCEEDED"
    assert entered[entered.index("RequestApproval") :] == ["RequestApproval", "Resume", "Done?", "Finished"]


def test_a_rejected_refund_ends_with_an_answer_that_explains_the_rejection(
    tasks: AgentApiClient, approver: AgentApiClient, wait_for_task: Waiter
) -> None:
    task_id, approval_id = _waiting_refund(tasks, approver, wait_for_task)

    decided = _decide(approver, approval_id, "reject", "Already refunded by phone")

    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["comment"]) == ("rejected", "Already refunded by phone")
    task = wait_for_task(tasks, task_id)
    assert task["status"] == "succeeded"
    answer = task["result"]["answer"]
    assert "rejected" in answer and "Already refunded by phone" in answer
    assert "refund issued" not in answer
    assert ("issue_refund", "rejected") in [(c["tool"], c["outcome"]) for c in task["result"]["tool_calls"]]


def test_a_second_decision_on_the_same_approval_is_rejected_with_409(
    tasks: AgentApiClient, approver: AgentApiClient, wait_for_task: Waiter
) -> None:
    task_id, approval_id = _waiting_refund(tasks, approver, wait_for_task)
    assert _decide(approver, approval_id, "approve").status_code == 200

    second = _decide(approver, approval_id, "reject", "changed my mind")

    assert second.status_code == 409
    assert second.json()["error"] == "already_decided"
    assert wait_for_task(tasks, task_id)["status"] == "succeeded"
    assert approver.request("GET", f"/approvals/{approval_id}").json()["status"] == "approved"


def test_a_decision_from_a_caller_outside_the_approver_group_is_403_and_audited_as_refused(
    local: Any, tasks: AgentApiClient, approver: AgentApiClient, wait_for_task: Waiter
) -> None:
    task_id, approval_id = _waiting_refund(tasks, approver, wait_for_task)

    refused = _decide(tasks, approval_id, "approve", "I approve my own refund")

    assert refused.status_code == 403
    assert refused.json()["error"] == "not_an_approver"
    detail = approver.request("GET", f"/approvals/{approval_id}").json()
    assert detail["status"] == "pending"
    assert [e["event"] for e in detail["audit"]] == ["requested", "refused"]
    assert detail["audit"][-1]["actor"] == local.principal()
    assert tasks.request("GET", f"/tasks/{task_id}").json()["status"] == "waiting_approval"
    assert tasks.request("DELETE", f"/tasks/{task_id}").status_code == 200


def test_the_task_token_never_appears_in_any_response(
    local: Any, tasks: AgentApiClient, approver: AgentApiClient, wait_for_task: Waiter
) -> None:
    task_id, approval_id = _waiting_refund(tasks, approver, wait_for_task)
    token = _task_token(local, approval_id)
    seen = [
        approver.request("GET", "/approvals?status=pending"),
        tasks.request("GET", "/approvals?status=pending"),
        approver.request("GET", f"/approvals/{approval_id}"),
        tasks.request("GET", f"/approvals/{approval_id}"),
        tasks.request("GET", f"/tasks/{task_id}"),
        _decide(tasks, approval_id, "approve"),
        _decide(approver, approval_id, "approve"),
        _decide(approver, approval_id, "approve"),
    ]
    wait_for_task(tasks, task_id)
    seen.append(tasks.request("GET", f"/tasks/{task_id}"))

    assert len(token) > 20
    assert [r.status_code for r in seen] == [200, 200, 200, 200, 200, 403, 200, 409, 200]
    for response in seen:
        assert token not in response.text
        assert "task_token" not in response.text and "taskToken" not in response.text


# -- the timeout path needs its own app: a 3-second approval timeout --------------------------------------


@pytest.fixture(scope="module")
def short_timeout(start_local_mode: Callable[..., Any]) -> Any:
    return start_local_mode("async", context={"approval_timeout": "3", "approval_webhook_groups": "approvers"})


def test_an_approval_that_times_out_is_rejected_automatically_and_expires(short_timeout: Any, wait_for_task: Waiter) -> None:
    with short_timeout.client("async") as tasks, short_timeout.client("async", principal=APPROVER) as approver:
        task_id, approval_id = _waiting_refund(tasks, approver, wait_for_task)

        task = wait_for_task(tasks, task_id, seconds=30)
        detail = approver.request("GET", f"/approvals/{approval_id}").json()
        late = _decide(approver, approval_id, "approve")

    assert task["status"] == "succeeded"
    assert "timed out" in task["result"]["answer"]
    assert "refund issued" not in task["result"]["answer"]
    assert ("issue_refund", "rejected") in [(c["tool"], c["outcome"]) for c in task["result"]["tool_calls"]]
    assert (detail["status"], detail["decided_by"]) == ("expired", "system:timeout")
    assert [e["event"] for e in detail["audit"]] == ["requested", "expired"]
    assert late.status_code == 409
    status, entered = _workflow_states(short_timeout, task_id)
    assert status == "SUCCEEDED"
    assert entered[entered.index("RequestApproval") :] == ["RequestApproval", "ApplyTimeoutPolicy", "Resume", "Done?", "Finished"]


def test_the_webhook_route_is_served_in_local_mode_when_the_app_has_webhook_groups(short_timeout: Any, local: Any) -> None:
    approval_id = "c936f5d95235cfa5ffa25657ee0bd7e8"
    with short_timeout.client("async") as configured, local.client("async") as default:
        unsigned = {"decision": "approve", "approver": "alice@example.com"}
        served = configured.request("POST", f"/approvals/{approval_id}/webhook", json=unsigned, authenticated=False)
        absent = default.request("POST", f"/approvals/{approval_id}/webhook", json=unsigned, authenticated=False)

    assert (served.status_code, served.json()["error"]) == (401, "invalid_signature")
    assert (absent.status_code, absent.json()["error"]) == (403, "not_found_or_unauthenticated")
