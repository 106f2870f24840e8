"""The two Lambda functions of the approval workflow, configured by environment, fed the shared events in events/approvals/."""

from __future__ import annotations

import copy
import json

import pytest

from agentrail_runtime import clock as runtime_clock
from agentrail_runtime import demo

# Requests that never reach the agent flush only ColdStart, and Powertools warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

TASK_ID = "4c2e9a7f1b3d4e5f8a6b0c1d2e3f4a5b"  # the task of every events/approvals/*.json event


@pytest.fixture
def paused_by_the_workflow_function(aws, functions, load_event, lambda_context, owner):
    """The shared events' task, run by the workflow function until it waits, with a real token stored by ``request_approval``."""

    def pause(**approval_environment: str):
        api, workflow = functions(**approval_environment)
        now = int(runtime_clock.now())
        aws.dynamodb.put_item(
            TableName="agentrail-reviewed-tasks",
            Item={
                "task_id": {"S": TASK_ID},
                "owner": {"S": owner},
                "task_type": {"S": "reviewed"},
                "status": {"S": "queued"},
                "message": {"S": "Please refund 150 USD for order A-1002"},
                "created_at": {"N": str(now)},
                "updated_at": {"N": str(now)},
            },
        )
        request = load_event("approvals/request-approval.json")
        correlation = {"task_id": TASK_ID, "correlation_id": request["correlation_id"]}
        workflow.handler({"action": "start", **correlation}, lambda_context)
        stepped = workflow.handler({"action": "step", **correlation}, lambda_context)
        execution_arn, token = aws.start_waiting(TASK_ID, request["correlation_id"])
        requested = workflow.handler(request | {"task_token": token}, lambda_context)
        return api, workflow, stepped, requested, execution_arn, token

    return pause


def test_the_shared_events_take_a_refund_through_request_decision_and_resume(
    paused_by_the_workflow_function, load_event, lambda_context, aws, stdout_records
):
    api, workflow, stepped, requested, execution_arn, token = paused_by_the_workflow_function()
    approval_id = load_event("approvals/get-approval.json")["pathParameters"]["approval_id"]

    decided = api.handler(load_event("approvals/decide-approve.json"), lambda_context)
    execution = aws.execution_after_wait(execution_arn)
    resumed = workflow.handler(load_event("approvals/resume.json"), lambda_context)
    detail = api.handler(load_event("approvals/get-approval.json"), lambda_context)

    assert (stepped["awaiting_approval"], stepped["status"]) == (True, "waiting_approval")
    assert requested == {"task_id": TASK_ID, "approval_id": approval_id}  # the events agree with what the agent asked for
    assert decided["statusCode"] == 200
    # resume.json carries what SendTaskSuccess delivered for decide-approve.json.
    assert json.loads(execution["output"])["decision"] == load_event("approvals/resume.json")["decision"]
    assert (resumed["done"], resumed["status"]) == (True, "succeeded")
    assert demo._REFUNDS == {"A-1002": 150.0}
    audit = json.loads(detail["body"])["audit"]
    assert [e["event"] for e in audit] == ["requested", "approved"]
    records = stdout_records()
    assert token not in json.dumps(records) and token not in decided["body"] + detail["body"]
    workflow_lines = [r for r in records if r.get("event") in ("approval_requested", "task_checkpoint")]
    assert workflow_lines and {r["correlation_id"] for r in workflow_lines} == {
        load_event("approvals/resume.json")["correlation_id"]
    }


def test_the_shared_timeout_event_applies_the_reject_policy(paused_by_the_workflow_function, load_event, lambda_context):
    api, workflow, *_ = paused_by_the_workflow_function(AGENT_APPROVAL_TIMEOUT_POLICY="reject")

    output = workflow.handler(load_event("approvals/approval-timeout.json"), lambda_context)
    listed = api.handler(load_event("approvals/list-pending.json"), lambda_context)

    assert (output["approved"], output["timed_out"], output["decided_by"]) == (False, True, "system:timeout")
    assert json.loads(listed["body"]) == {"approvals": []}


def test_the_shared_cognito_and_webhook_events_reach_the_api_function(
    paused_by_the_workflow_function, load_event, lambda_context
):
    api, *_ = paused_by_the_workflow_function()
    stale = load_event("approvals/webhook.json")  # signed long ago with an example secret

    refused = api.handler(copy.deepcopy(stale), lambda_context)
    decided = api.handler(load_event("approvals/decide-cognito.json"), lambda_context)

    assert (refused["statusCode"], json.loads(refused["body"])["error"]) == (401, "invalid_signature")
    assert decided["statusCode"] == 200
    assert json.loads(decided["body"])["decided_by"] == "cognito:5e1c7a9b-3d2f-4e8a-b6c0-9f1d2e3a4b5c"
