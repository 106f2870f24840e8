"""The approvals API on the async agent's REST API: who may see and decide what, and what is never shown."""

from __future__ import annotations

import json

from agentrail_runtime.approvals.models import MAX_COMMENT_CHARS


def test_a_caller_outside_the_approver_group_gets_403_is_audited_as_refused_and_nothing_else_changes(
    deployment, api_event, aws, callers
):
    approvals = deployment()
    paused = approvals.pause()

    reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id, caller=callers.mallory))

    assert reply.status == 403
    assert reply.body["error"] == "not_an_approver"
    assert reply.body["message"] == "Only members of the approver group may decide."
    entries = approvals.api_service.audit.entries(paused.approval_id)
    assert [(e.event, e.actor) for e in entries] == [
        ("requested", callers.requester.principal),
        ("refused", callers.mallory.principal),
    ]
    assert entries[1].comment == "not in the approver group"
    record = approvals.api_service.approvals.get(paused.approval_id)
    assert (record.status, record.decided_by) == ("pending", None)
    assert aws.sfn.describe_execution(executionArn=paused.execution_arn)["status"] == "RUNNING"
    assert approvals.status(paused.task_id) == "waiting_approval"


def test_approver_group_membership_by_iam_principal_pattern_or_cognito_group(deployment, api_event, callers):
    approvals = deployment()
    members = {
        "alice": callers.alice,  # named in AGENT_APPROVAL_GROUPS
        "ops-dana": callers.ops_dana,  # matches the pattern iam:arn:aws:iam::123456789012:user/ops-*
        "bob": callers.bob_claims,  # a Cognito user whose cognito:groups claim holds "approvers"
    }
    outsiders = {
        "mallory": callers.mallory,
        "erin": callers.erin_claims,  # a Cognito user in another group
        "requester": callers.requester,  # asking is not approving
    }
    paused = {name: approvals.pause(f"{index:032x}", correlation_id=name) for index, name in enumerate(members, start=1)}

    refused = {
        name: approvals.call(api_event("decide-approve", approval_id=paused["alice"].approval_id, caller=caller)).status
        for name, caller in outsiders.items()
    }
    decided = {
        name: approvals.call(api_event("decide-approve", approval_id=paused[name].approval_id, caller=caller)).status
        for name, caller in members.items()
    }

    assert refused == {"mallory": 403, "erin": 403, "requester": 403}
    assert decided == {"alice": 200, "ops-dana": 200, "bob": 200}
    assert {approvals.api_service.approvals.get(p.approval_id).status for p in paused.values()} == {"approved"}


def test_the_shared_cognito_event_decides_as_its_user(deployment, api_event, callers):
    approvals = deployment()
    paused = approvals.pause()

    reply = approvals.call(api_event("decide-cognito", approval_id=paused.approval_id))

    assert reply.status == 200
    assert reply.body["decided_by"] == f"cognito:{dict(callers.bob_claims)['sub']}"


def test_listing_pending_approvals_shows_only_those_the_caller_may_see(deployment, api_event, callers):
    approvals = deployment()
    mine = approvals.pause()
    theirs = approvals.pause("5d3f0b8a2c4e4f6a9b1d3e5f7a9c1e3b", owner=callers.other_requester.principal, correlation_id="other")

    def listed(caller) -> set[str]:
        reply = approvals.call(api_event("list-pending", caller=caller))
        assert reply.status == 200
        return {a["approval_id"] for a in reply.body["approvals"]}

    assert listed(callers.alice) == {mine.approval_id, theirs.approval_id}
    assert listed(callers.bob_claims) == {mine.approval_id, theirs.approval_id}
    assert listed(callers.requester) == {mine.approval_id}
    assert listed(callers.other_requester) == {theirs.approval_id}
    assert listed(callers.mallory) == set()


def test_a_decided_approval_leaves_the_pending_list_and_is_listed_by_its_status(deployment, api_event, callers):
    approvals = deployment()
    paused = approvals.pause()
    approvals.call(api_event("decide-approve", approval_id=paused.approval_id))

    pending = approvals.call(api_event("list-pending"))
    approved = approvals.call(api_event("list-pending", query={"status": "approved"}))
    unknown = approvals.call(api_event("list-pending", query={"status": "maybe"}))

    assert pending.body == {"approvals": []}
    [listed] = approved.body["approvals"]
    assert (listed["approval_id"], listed["status"], listed["decided_by"]) == (
        paused.approval_id,
        "approved",
        callers.alice.principal,
    )
    assert (unknown.status, unknown.body["error"]) == (400, "invalid_request")
    assert "maybe" not in unknown.raw


def test_one_approval_shows_what_was_asked_and_its_audit_trail_to_approvers_and_the_requester_only(
    deployment, api_event, callers
):
    approvals = deployment()
    paused = approvals.pause()
    approvals.call(api_event("decide-reject", approval_id=paused.approval_id))

    as_approver = approvals.call(api_event("get-approval", approval_id=paused.approval_id))
    as_requester = approvals.call(api_event("get-approval", approval_id=paused.approval_id, caller=callers.requester))
    as_outsider = approvals.call(api_event("get-approval", approval_id=paused.approval_id, caller=callers.mallory))

    assert as_approver.status == as_requester.status == 200
    detail = as_approver.body
    assert (detail["task_id"], detail["tool"], detail["arguments"]) == (
        paused.task_id,
        "issue_refund",
        {"amount_usd": 150.0, "order_id": "A-1002"},
    )
    assert detail["summary"] == 'Run issue_refund(amount_usd=150.0, order_id="A-1002")'
    assert (detail["requester"], detail["approver_group"], detail["status"]) == (
        callers.requester.principal,
        "approvers",
        "rejected",
    )
    assert [(e["event"], e["actor"]) for e in detail["audit"]] == [
        ("requested", callers.requester.principal),
        ("rejected", callers.alice.principal),
    ]
    assert detail["audit"][1]["comment"] == "The order has not shipped; cancel it instead of refunding."
    assert {e["arguments_hash"] for e in detail["audit"]} == {detail["arguments_hash"]}
    assert as_requester.body == detail
    assert (as_outsider.status, as_outsider.body["error"]) == (404, "approval_not_found")


def test_a_malformed_approval_id_is_a_short_400_that_does_not_echo_it(deployment, api_event):
    approvals = deployment()

    for name in ("get-approval", "decide-approve"):
        for bad_id in ("C936F5D95235CFA5FFA25657EE0BD7E8", "c936f5d9", "c936f5d95235cfa5ffa25657ee0bd7e8-admin"):
            reply = approvals.call(api_event(name, approval_id=bad_id))

            assert reply.status == 400, (name, bad_id)
            assert reply.body["error"] == "invalid_request"
            assert [d["field"] for d in reply.body["details"]] == ["path.approval_id"]
            assert bad_id not in reply.raw and bad_id.lower() not in reply.raw


def test_an_unknown_approval_is_404(deployment, api_event):
    approvals = deployment()

    for name in ("get-approval", "decide-approve"):
        reply = approvals.call(api_event(name, approval_id="0" * 32))
        assert (reply.status, reply.body["error"]) == (404, "approval_not_found")


def test_a_bad_decision_body_is_400_and_decides_nothing(deployment, api_event):
    approvals = deployment()
    paused = approvals.pause()
    bad = [
        ({"decision": "maybe"}, "decision"),
        ({"comment": "no decision"}, "decision"),
        ({"decision": "approve", "comment": "x" * (MAX_COMMENT_CHARS + 1)}, "comment"),
        ({"decision": "approve", "approver": "someone-else"}, "(unknown field)"),
    ]

    for body, field in bad:
        reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id, body=body))

        assert (reply.status, reply.body["error"]) == (400, "invalid_request"), body
        assert field in [d["field"] for d in reply.body["details"]]
        assert "someone-else" not in reply.raw
    assert approvals.api_service.approvals.get(paused.approval_id).status == "pending"
    assert [e.event for e in approvals.api_service.audit.entries(paused.approval_id)] == ["requested"]


def test_the_task_token_never_appears_in_responses_task_events_or_logs(deployment, api_event, aws, stdout_records):
    approvals = deployment()
    paused = approvals.pause()

    replies = [
        approvals.call(api_event("list-pending")),
        approvals.call(api_event("get-approval", approval_id=paused.approval_id)),
        approvals.call(api_event("decide-approve", approval_id=paused.approval_id)),
        approvals.call(api_event("decide-approve", approval_id=paused.approval_id)),  # 409
        approvals.call(api_event("get-approval", approval_id=paused.approval_id)),
    ]
    approvals.workflow.handle(
        {
            "action": "resume",
            "task_id": paused.task_id,
            "decision": json.loads(aws.execution_after_wait(paused.execution_arn)["output"])["decision"],
        }
    )

    # The token is stored, server side, next to the approval; that is the only place it lives.
    assert aws.approval_item(paused.approval_id)["task_token"]["S"] == paused.token
    assert [r.status for r in replies] == [200, 200, 200, 409, 200]
    for reply in replies:
        assert paused.token not in reply.raw
        assert "task_token" not in reply.raw
    events = aws.task_events()
    assert {e["detail-type"] for e in events} == {"Task Waiting For Approval", "Task Finished"}
    assert paused.token not in json.dumps(events)
    records = stdout_records()
    assert any(r.get("event") == "approval_decided" for r in records)
    assert paused.token not in json.dumps(records)


def test_an_approver_who_requested_the_approval_gets_403_and_the_attempt_is_audited(deployment, api_event, aws, callers):
    # Given a refund requested by alice, who is also in the approver group
    approvals = deployment()
    paused = approvals.pause(owner=callers.alice.principal)

    # When alice approves (or rejects) her own request
    approve = approvals.call(api_event("decide-approve", approval_id=paused.approval_id, caller=callers.alice))
    reject = approvals.call(api_event("decide-reject", approval_id=paused.approval_id, caller=callers.alice))

    # Then both are 403 self_approval, audited as refused, and the approval still waits for another approver
    for reply in (approve, reject):
        assert (reply.status, reply.body["error"]) == (403, "self_approval")
    refused = [(e.event, e.actor, e.comment) for e in approvals.api_service.audit.entries(paused.approval_id)][1:]
    assert (
        refused
        == [("refused", callers.alice.principal, "the requester may not decide their own request (separation of duties)")] * 2
    )
    assert approvals.api_service.approvals.get(paused.approval_id).status == "pending"
    assert aws.sfn.describe_execution(executionArn=paused.execution_arn)["status"] == "RUNNING"
    by_another = approvals.call(api_event("decide-approve", approval_id=paused.approval_id, caller=callers.ops_dana))
    assert (by_another.status, by_another.body["decided_by"]) == (200, callers.ops_dana.principal)


def test_allow_self_approval_lets_a_requester_in_the_approver_group_decide(deployment, api_event, callers):
    # Given a deployment that turned separation of duties off explicitly
    approvals = deployment(allow_self_approval=True)
    paused = approvals.pause(owner=callers.alice.principal)

    # When alice approves her own request
    reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id, caller=callers.alice))

    # Then it is decided
    assert (reply.status, reply.body["decided_by"]) == (200, callers.alice.principal)


def test_a_session_of_the_requesters_role_is_the_requester_and_cannot_approve(deployment, api_event, callers):
    # Given a task requested by a session of role agentrail-caller, and that role is (wrongly) an approver
    approvals = deployment(groups={"approvers": ["iam:arn:aws:iam::123456789012:role/agentrail-*"]})
    paused = approvals.pause()

    # When another session of the same role, with a session name of its choosing, approves
    reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id, caller=callers.requester_other_session))

    # Then it is the requester (the role is the identity), so separation of duties refuses it
    assert (reply.status, reply.body["error"]) == (403, "self_approval")
    [refused] = [e for e in approvals.api_service.audit.entries(paused.approval_id) if e.event == "refused"]
    assert refused.actor == "iam:arn:aws:iam::123456789012:role/agentrail-caller"


def test_the_documented_role_pattern_admits_a_caller_that_assumed_the_role(deployment, api_event, callers):
    # Given the approver pattern iam:arn:aws:iam::123456789012:role/Approver* and a caller that assumed ApproverFinance
    approvals = deployment()
    paused = approvals.pause()

    # When the assumed-role session (arn:aws:sts::…:assumed-role/ApproverFinance/frank) approves
    reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id, caller=callers.finance_approver))

    # Then the role decided
    assert (reply.status, reply.body["decided_by"]) == (200, "iam:arn:aws:iam::123456789012:role/ApproverFinance")


def test_with_session_identity_each_session_is_a_caller_and_a_role_pattern_still_admits_it(deployment, api_event, callers):
    # Given an API that identifies assumed-role callers by session, and a task requested by one session of a role
    approvals = deployment(iam_identity="session", groups={"approvers": ["iam:arn:aws:iam::123456789012:role/agentrail-*"]})
    paused = approvals.pause(owner=f"iam:{callers.requester.arn}")

    # When another session of the same role approves, and the requesting session tries too
    own = approvals.call(api_event("decide-approve", approval_id=paused.approval_id, caller=callers.requester))
    other = approvals.call(api_event("decide-approve", approval_id=paused.approval_id, caller=callers.requester_other_session))

    # Then the requesting session is refused, and the other session (admitted by the role's pattern) decides as itself
    assert (own.status, own.body["error"]) == (403, "self_approval")
    assert (other.status, other.body["decided_by"]) == (200, f"iam:{callers.requester_other_session.arn}")
