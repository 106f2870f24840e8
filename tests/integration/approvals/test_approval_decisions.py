"""Decisions reach the waiting execution once; the tool then runs with exactly the approved arguments, or not at all."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from agentrail_runtime.agent.loop import AgentCheckpoint
from agentrail_runtime.approvals import ApprovalStatus, AuditEntry, DecisionOutput
from agentrail_runtime.approvals.store import AuditLog

ALICE = "iam:arn:aws:iam::123456789012:user/alice"  # the approver of the shared decision events
APPROVED_ARGUMENTS = {"amount_usd": 150.0, "order_id": "A-1002"}


def decision_received(aws, paused) -> dict:
    """What the waiting execution received (its ``$.decision``), once it moved on."""
    execution = aws.execution_after_wait(paused.execution_arn)
    assert execution["status"] == "SUCCEEDED", execution
    return json.loads(execution["output"])["decision"]


def events_of(approvals, approval_id: str) -> list[str]:
    return [entry.event for entry in approvals.api_service.audit.entries(approval_id)]


def test_an_approved_refund_reaches_the_waiting_execution_and_runs_with_exactly_the_approved_arguments(
    deployment, api_event, aws
):
    approvals = deployment()
    paused = approvals.pause()
    assert approvals.status(paused.task_id) == "waiting_approval"
    assert aws.sfn.describe_execution(executionArn=paused.execution_arn)["status"] == "RUNNING"

    reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id))
    decision = decision_received(aws, paused)
    outcome = approvals.workflow.handle({"action": "resume", "task_id": paused.task_id, "decision": decision})

    assert reply.status == 200
    assert (reply.body["status"], reply.body["decided_by"], reply.body["arguments"]) == ("approved", ALICE, APPROVED_ARGUMENTS)
    assert decision["approved"] is True and decision["timed_out"] is False
    assert decision["arguments_hash"] == reply.body["arguments_hash"]
    assert decision["decided_by"] == ALICE
    assert "reason" not in decision and "Within the refund policy." not in json.dumps(decision)  # the comment stays in the table
    assert outcome["status"] == "succeeded"
    task = approvals.task(paused.task_id)
    assert approvals.refunds == {"A-1002": 150.0}
    assert '"refunded_usd": 150.0' in task.result.answer and '"order_id": "A-1002"' in task.result.answer
    assert [(c.tool, c.outcome) for c in task.result.tool_calls][:2] == [
        ("issue_refund", "pending_approval"),
        ("issue_refund", "success"),
    ]
    assert events_of(approvals, paused.approval_id) == ["requested", "approved"]


def test_task_status_is_waiting_approval_while_paused_running_after_resume_and_final_after(deployment, api_event, aws):
    # One model call per workflow step, so the resumed run needs a second step to finish.
    approvals = deployment(slice_steps=1)
    paused = approvals.pause()
    seen = [approvals.status(paused.task_id)]

    approvals.call(api_event("decide-approve", approval_id=paused.approval_id))
    seen.append(approvals.status(paused.task_id))
    resumed = approvals.workflow.handle(
        {"action": "resume", "task_id": paused.task_id, "decision": decision_received(aws, paused)}
    )
    seen.append(approvals.status(paused.task_id))
    finished = approvals.workflow.handle({"action": "step", "task_id": paused.task_id})
    seen.append(approvals.status(paused.task_id))

    assert seen == ["waiting_approval", "waiting_approval", "running", "succeeded"]
    assert (resumed["done"], resumed["awaiting_approval"]) == (False, False)
    assert finished["done"] is True


def test_second_decision_on_same_approval_is_rejected(deployment, api_event, aws, callers):
    approvals = deployment()
    paused = approvals.pause()
    approvals.call(api_event("decide-approve", approval_id=paused.approval_id))
    delivered = decision_received(aws, paused)

    by_the_same_approver = approvals.call(api_event("decide-reject", approval_id=paused.approval_id))
    by_another_approver = approvals.call(api_event("decide-reject", approval_id=paused.approval_id, caller=callers.bob_claims))

    for reply in (by_the_same_approver, by_another_approver):
        assert reply.status == 409
        assert reply.body["error"] == "already_decided"
        assert reply.body["message"] == "This approval is already approved."
    record = approvals.api_service.approvals.get(paused.approval_id)
    assert (record.status, record.decided_by, record.comment) == ("approved", ALICE, "Within the refund policy.")
    assert decision_received(aws, paused) == delivered  # the execution kept the first decision
    assert approvals.status(paused.task_id) == "waiting_approval"  # the task is unaffected until it resumes
    # Late decisions are audited too, with who sent them.
    assert events_of(approvals, paused.approval_id) == ["requested", "approved", "late", "late"]
    late = [e for e in approvals.api_service.audit.entries(paused.approval_id) if e.event == "late"]
    assert [(e.actor, e.comment) for e in late] == [
        (ALICE, "reject after the approval was approved"),
        ("cognito:5e1c7a9b-3d2f-4e8a-b6c0-9f1d2e3a4b5c", "reject after the approval was approved"),
    ]


def test_a_rejected_refund_never_runs_and_the_answer_gives_the_reason(deployment, api_event, aws):
    approvals = deployment()
    paused = approvals.pause()

    reply = approvals.call(api_event("decide-reject", approval_id=paused.approval_id))
    decision = decision_received(aws, paused)
    approvals.workflow.handle({"action": "resume", "task_id": paused.task_id, "decision": decision})

    assert reply.body["status"] == "rejected"
    assert decision["approved"] is False
    task = approvals.task(paused.task_id)
    assert task.status == "succeeded"
    assert approvals.refunds == {}
    assert "rejected by a human approver" in task.result.answer
    assert "The order has not shipped; cancel it instead of refunding." in task.result.answer
    assert ("issue_refund", "rejected") in [(c.tool, c.outcome) for c in task.result.tool_calls]
    assert events_of(approvals, paused.approval_id) == ["requested", "rejected"]


def test_arguments_changed_after_the_request_fail_the_integrity_check_and_the_tool_never_runs(deployment, api_event, aws):
    approvals = deployment()
    paused = approvals.pause()
    approvals.call(api_event("decide-approve", approval_id=paused.approval_id))
    decision = decision_received(aws, paused)
    # Someone with write access to the task table raises the amount in the stored checkpoint.
    store = approvals.tasks.store
    checkpoint = AgentCheckpoint.model_validate_json(store.get_checkpointed(paused.task_id)[1])
    checkpoint.pending.arguments["amount_usd"] = 9000.0
    store.save_checkpoint(paused.task_id, checkpoint.model_dump_json(), steps=checkpoint.steps, usage=checkpoint.usage)

    with pytest.raises(RuntimeError, match="approval integrity check failed") as raised:
        approvals.workflow.handle({"action": "resume", "task_id": paused.task_id, "decision": decision})
    # The workflow's Catch then hands the error to the fail action.
    approvals.workflow.handle(
        {
            "action": "fail",
            "task_id": paused.task_id,
            "error": {
                "Error": "RuntimeError",
                "Cause": json.dumps(
                    {
                        "errorMessage": str(raised.value),
                        "errorType": "RuntimeError",
                        "stackTrace": ['  File "/opt/python/agentrail_runtime/workflows/long_task.py"'],
                    }
                ),
            },
        }
    )

    assert approvals.refunds == {}
    task = approvals.task(paused.task_id)
    assert task.status == "failed"
    assert task.error.model_dump() == {
        "code": "RuntimeError",
        "message": "approval integrity check failed: the arguments changed after approval was requested",
    }
    assert task.result is None


def test_a_decision_output_claiming_approval_does_not_override_a_rejected_record(deployment, api_event, aws):
    approvals = deployment()
    paused = approvals.pause()
    approvals.call(api_event("decide-reject", approval_id=paused.approval_id))
    forged = DecisionOutput.model_validate(decision_received(aws, paused) | {"approved": True, "reason": None})

    approvals.workflow.handle({"action": "resume", "task_id": paused.task_id, "decision": forged.model_dump()})

    assert approvals.refunds == {}
    assert "rejected by a human approver" in approvals.task(paused.task_id).result.answer


def test_a_decision_that_arrives_after_the_execution_timed_out_is_expired_audited_and_changes_nothing_else(
    deployment, api_event, aws
):
    approvals = deployment()
    paused = approvals.pause(times_out=True)
    timed_out = aws.execution_after_wait(paused.execution_arn)
    assert (timed_out["status"], timed_out["error"]) == ("FAILED", "States.Timeout")

    reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id))

    assert reply.status == 409
    assert reply.body["error"] == "approval_expired"
    assert approvals.api_service.approvals.get(paused.approval_id).status == "expired"
    [expired] = [e for e in approvals.api_service.audit.entries(paused.approval_id) if e.event == "expired"]
    assert expired.actor == ALICE
    assert expired.comment == "decision arrived after the workflow stopped waiting (InvalidToken)"
    assert approvals.status(paused.task_id) == "waiting_approval"
    assert approvals.refunds == {}


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist"])
def test_other_gone_token_answers_are_expired_too(deployment, api_event, code):
    # moto answers InvalidToken for every token it no longer waits on; these two codes come from a Stubber.
    client = boto3.client("stepfunctions")
    approvals = deployment(api_sfn_client=client)
    paused = approvals.pause()

    with Stubber(client) as stubber:
        stubber.add_client_error("send_task_success", service_error_code=code, http_status_code=400)
        reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id))
        stubber.assert_no_pending_responses()

    assert (reply.status, reply.body["error"]) == (409, "approval_expired")
    assert approvals.api_service.approvals.get(paused.approval_id).status == "expired"
    # The decision was audited before it was sent, then its expiry.
    assert events_of(approvals, paused.approval_id) == ["requested", "approved", "expired"]


def test_on_timeout_with_reject_policy_records_expired_and_the_agent_is_told_it_timed_out(deployment, api_event):
    approvals = deployment(timeout_policy="reject")
    paused = approvals.pause()

    output = approvals.workflow.handle({"action": "approval_timeout", "level": 0, "task_id": paused.task_id})
    late = approvals.call(api_event("decide-approve", approval_id=paused.approval_id))
    approvals.workflow.handle({"action": "resume", "task_id": paused.task_id, "decision": output})

    assert (output["approved"], output["timed_out"], output["approval_id"]) == (False, True, paused.approval_id)
    assert "reason" not in output
    record = approvals.api_service.approvals.get(paused.approval_id)
    assert (record.status, record.decided_by) == ("expired", "system:timeout")
    assert (late.status, late.body["error"]) == (409, "already_decided")
    assert events_of(approvals, paused.approval_id) == ["requested", "expired", "late"]
    assert approvals.refunds == {}
    assert "timed out and was rejected automatically" in approvals.task(paused.task_id).result.answer


def test_on_timeout_with_escalate_policy_escalates_then_only_the_escalation_group_decides(deployment, api_event, aws, callers):
    approvals = deployment(timeout_policy="escalate", escalation_group="finance-leads")
    paused = approvals.pause()

    first = approvals.workflow.handle({"action": "approval_timeout", "level": 0, "task_id": paused.task_id})
    execution_arn, token = aws.start_waiting(paused.task_id, paused.correlation_id)
    escalated = approvals.workflow.handle(
        {"action": "request_approval", "level": 1, "task_id": paused.task_id, "task_token": token}
    )
    by_first_level = approvals.call(api_event("decide-approve", approval_id=escalated["approval_id"]))
    by_escalation_group = approvals.call(api_event("decide-approve", approval_id=escalated["approval_id"], caller=callers.carol))

    assert (first["approved"], first["timed_out"]) == (False, True)
    assert "reason" not in first
    assert approvals.api_service.approvals.get(paused.approval_id).status == "escalated"
    level_1 = approvals.api_service.approvals.get(escalated["approval_id"])
    assert escalated["approval_id"] != paused.approval_id
    assert (level_1.level, level_1.approver_group, level_1.arguments) == (1, "finance-leads", APPROVED_ARGUMENTS)
    assert (by_first_level.status, by_first_level.body["error"]) == (403, "not_an_approver")
    assert (by_escalation_group.status, by_escalation_group.body["status"]) == (200, "approved")
    assert events_of(approvals, escalated["approval_id"]) == ["escalated", "refused", "approved"]
    execution = aws.execution_after_wait(execution_arn)
    approvals.workflow.handle(
        {"action": "resume", "task_id": paused.task_id, "decision": json.loads(execution["output"])["decision"]}
    )
    assert approvals.refunds == {"A-1002": 150.0}


def test_an_escalated_approval_that_times_out_again_is_rejected(deployment, aws):
    approvals = deployment(timeout_policy="escalate", escalation_group="finance-leads")
    paused = approvals.pause()
    approvals.workflow.handle({"action": "approval_timeout", "level": 0, "task_id": paused.task_id})
    _, token = aws.start_waiting(paused.task_id, paused.correlation_id)
    escalated = approvals.workflow.handle(
        {"action": "request_approval", "level": 1, "task_id": paused.task_id, "task_token": token}
    )

    output = approvals.workflow.handle({"action": "approval_timeout", "level": 1, "task_id": paused.task_id})

    assert (output["approved"], output["timed_out"], output["approval_id"]) == (False, True, escalated["approval_id"])
    assert approvals.api_service.approvals.get(escalated["approval_id"]).status == "expired"


def test_audit_entries_are_put_only_if_absent_so_the_log_never_overwrites(deployment, clock):
    approvals = deployment()
    audit: AuditLog = approvals.api_service.audit
    sent: list[dict] = []
    audit.client.meta.events.register(
        "provide-client-params.dynamodb.PutItem", lambda params, **_: sent.append(copy.deepcopy(params))
    )
    audit.append(AuditEntry(approval_id="a" * 32, at=int(clock.now), event="approved", actor=ALICE, comment="first"))
    [request] = sent
    overwrite = copy.deepcopy(request)
    overwrite["Item"] |= {"event": {"S": "rejected"}, "actor": {"S": "iam:someone-else"}, "comment": {"S": "second"}}

    for attempt in (request, overwrite):
        with pytest.raises(ClientError) as refused:
            audit.client.put_item(**attempt)
        assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"

    [kept] = audit.entries("a" * 32)
    assert (kept.event, kept.actor, kept.comment) == ("approved", ALICE, "first")


def test_the_audit_trail_keeps_the_order_of_entries_within_one_second(deployment, clock):
    approvals = deployment()
    audit: AuditLog = approvals.api_service.audit
    order = ["requested", "refused", "approved", "expired", "escalated", "reminded", "rejected"]

    for event in order:
        audit.append(AuditEntry(approval_id="b" * 32, at=int(clock.now), event=event, actor=ALICE))

    assert [entry.event for entry in audit.entries("b" * 32)] == order


def test_a_decision_that_cannot_reach_the_workflow_is_withdrawn_audited_and_answered_503_with_retry_after(
    deployment, api_event, aws
):
    # Given Step Functions throttling SendTaskSuccess after botocore's retries (a Stubber answers for the last attempt)
    client = boto3.client("stepfunctions")
    approvals = deployment(api_sfn_client=client)
    paused = approvals.pause()

    # When alice approves
    with Stubber(client) as stubber:
        stubber.add_client_error("send_task_success", service_error_code="ThrottlingException", http_status_code=400)
        reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id))
        stubber.assert_no_pending_responses()

    # Then the caller is told to retry, the record is pending again, and the audit shows the decision and its withdrawal
    assert (reply.status, reply.body["error"], reply.headers["Retry-After"]) == (503, "decision_not_delivered", "5")
    record = approvals.api_service.approvals.get(paused.approval_id)
    assert (record.status, record.decided_by, record.comment) == ("pending", None, None)
    entries = approvals.api_service.audit.entries(paused.approval_id)
    assert [(e.event, e.actor) for e in entries] == [
        ("requested", entries[0].actor),
        ("approved", ALICE),
        ("reverted", ALICE),
    ]
    assert entries[2].comment == (
        "the workflow could not be reached (ThrottlingException); the decision was withdrawn and may be made again"
    )

    # And the same decision sent again reaches the waiting execution
    again = approvals.call(api_event("decide-approve", approval_id=paused.approval_id))
    assert (again.status, again.body["status"]) == (200, "approved")
    assert decision_received(aws, paused)["approved"] is True


def test_a_withdrawal_never_undoes_a_decision_that_came_after_it(deployment, api_event, callers):
    # Given a decision claimed by alice, then replaced by another (an expiry racing the failed delivery)
    approvals = deployment()
    paused = approvals.pause()
    store = approvals.api_service.approvals
    claimed = store.decide(paused.approval_id, status=ApprovalStatus.APPROVED, actor=ALICE, comment=None)
    store.expire_decided(paused.approval_id, decided=claimed.status)

    # When alice's decision is withdrawn
    reverted = store.revert_to_pending(claimed)

    # Then nothing changes: the withdrawal is conditional on the record still holding alice's decision
    assert reverted is False
    assert store.get(paused.approval_id).status == "expired"


def test_send_task_success_is_retried_by_botocore_so_two_throttles_still_deliver_the_decision(deployment, api_event):
    # Given the API side's own Step Functions client (DECISION_RETRIES), and a service that throttles twice, then
    # accepts (the canned answers stand in for the service: moto refuses a retried request's token)
    approvals = deployment()
    client = approvals.api_service.sfn
    attempts: list[bytes] = []

    def throttle_twice(request, **_):
        attempts.append(request.headers["amz-sdk-request"])
        if len(attempts) <= 2:
            return _response(request.url, 400, b'{"__type": "ThrottlingException", "message": "Rate exceeded"}')
        return _response(request.url, 200, b"{}")

    client.meta.events.register("before-send.sfn.SendTaskSuccess", throttle_twice)
    paused = approvals.pause()

    # When alice approves
    reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id))

    # Then botocore's standard retry mode made the attempts, and the decision stands
    assert (client.meta.config.retries["mode"], client.meta.config.retries["total_max_attempts"]) == ("standard", 5)
    assert attempts == [b"attempt=1; max=5", b"attempt=2; max=5", b"attempt=3; max=5"]
    assert (reply.status, reply.body["status"]) == (200, "approved")
    assert events_of(approvals, paused.approval_id) == ["requested", "approved"]


def _response(url: str, status: int, body: bytes) -> AWSResponse:
    return AWSResponse(url, status, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body))


class _Raw:
    """The raw body of a canned HTTP response, as botocore reads it."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_):
        yield self.body
