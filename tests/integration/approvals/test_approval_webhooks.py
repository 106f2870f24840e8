"""Decisions relayed by a chat tool: ``POST /approvals/{id}/webhook``, HMAC-signed with a secret in Secrets Manager."""

from __future__ import annotations

import copy
import json

import pytest

from agentrail_runtime.signatures import SIGNATURE_HEADER


def decision_events(approvals, approval_id: str) -> list[str]:
    return [e.event for e in approvals.api_service.audit.entries(approval_id) if e.event in ("approved", "rejected")]


def attempts_audited(approvals, approval_id: str) -> list[tuple[str, str, str | None]]:
    """The audit entries of refused webhook attempts: event, actor and why."""
    return [
        (e.event, e.actor, e.comment)
        for e in approvals.api_service.audit.entries(approval_id)
        if e.event in ("invalid_signature", "replayed")
    ]


def test_a_validly_signed_decision_approves_and_reaches_the_waiting_execution(deployment, signed_webhook, aws):
    approvals = deployment()
    paused = approvals.pause()

    reply = approvals.call(signed_webhook(paused.approval_id))

    assert reply.status == 200
    assert (reply.body["status"], reply.body["decided_by"], reply.body["comment"]) == (
        "approved",
        "webhook:alice@example.com",
        "Approved in #refunds",
    )
    execution = aws.execution_after_wait(paused.execution_arn)
    assert json.loads(execution["output"])["decision"]["approved"] is True
    assert paused.token not in reply.raw
    assert decision_events(approvals, paused.approval_id) == ["approved"]


def test_forged_and_stale_signatures_are_401_and_change_nothing(deployment, signed_webhook, api_event, aws, clock):
    approvals = deployment()
    paused = approvals.pause()
    unsigned = api_event("webhook", approval_id=paused.approval_id)
    del unsigned["headers"]["X-Agentrail-Signature"], unsigned["multiValueHeaders"]["X-Agentrail-Signature"]
    tampered = signed_webhook(paused.approval_id)
    tampered["body"] = tampered["body"].replace('"approve"', '"reject"')
    attempts = {
        "forged (another secret)": signed_webhook(paused.approval_id, secret="whsec-guessed"),
        "stale (6 minutes old)": signed_webhook(paused.approval_id, at=int(clock.now) - 360),
        "from the future": signed_webhook(paused.approval_id, at=int(clock.now) + 360),
        "body changed after signing": tampered,
        "unsigned": unsigned,
        "the shared event's old signature": api_event("webhook", approval_id=paused.approval_id),
    }

    replies = {name: approvals.call(event) for name, event in attempts.items()}

    for name, reply in replies.items():
        assert (reply.status, reply.body["error"]) == (401, "invalid_signature"), name
        assert reply.body["message"] == "The request signature is missing, invalid, stale or replayed."
    assert approvals.api_service.approvals.get(paused.approval_id).status == "pending"
    assert decision_events(approvals, paused.approval_id) == []
    assert aws.sfn.describe_execution(executionArn=paused.execution_arn)["status"] == "RUNNING"
    # Every attempt is in the audit trail, under the channel's name: the body's approver is not trusted unsigned.
    assert sorted(attempts_audited(approvals, paused.approval_id)) == sorted(
        [
            ("invalid_signature", "webhook", "signature mismatch"),
            ("invalid_signature", "webhook", "stale timestamp"),
            ("invalid_signature", "webhook", "stale timestamp"),
            ("invalid_signature", "webhook", "signature mismatch"),
            ("invalid_signature", "webhook", "missing signature"),
            ("invalid_signature", "webhook", "stale timestamp"),
        ]
    )


def test_a_replayed_signature_is_401_even_against_another_approval(deployment, signed_webhook):
    approvals = deployment()
    first = approvals.pause()
    second = approvals.pause("6e4a2c0b8d9f4e1a3b5c7d9e1f3a5b7c", correlation_id="second")
    captured = signed_webhook(first.approval_id)
    approvals.call(captured)

    replayed = approvals.call(captured)
    redirected = copy.deepcopy(captured)
    redirected["path"] = redirected["path"].replace(first.approval_id, second.approval_id)
    redirected["pathParameters"] = {"approval_id": second.approval_id}
    aimed_elsewhere = approvals.call(redirected)

    for reply in (replayed, aimed_elsewhere):
        assert (reply.status, reply.body["error"]) == (401, "invalid_signature")
    assert decision_events(approvals, first.approval_id) == ["approved"]
    assert approvals.api_service.approvals.get(second.approval_id).status == "pending"
    assert decision_events(approvals, second.approval_id) == []
    assert attempts_audited(approvals, first.approval_id) == [("replayed", "webhook", "a signature already used")]
    assert attempts_audited(approvals, second.approval_id) == [("replayed", "webhook", "a signature already used")]


def test_an_approver_group_not_allowed_to_use_webhooks_gets_403_and_is_audited(deployment, signed_webhook):
    approvals = deployment(webhook_groups=("chatops",))
    paused = approvals.pause()

    reply = approvals.call(signed_webhook(paused.approval_id))

    assert (reply.status, reply.body["error"]) == (403, "not_an_approver")
    assert approvals.api_service.approvals.get(paused.approval_id).status == "pending"
    [refused] = [e for e in approvals.api_service.audit.entries(paused.approval_id) if e.event == "refused"]
    assert refused.actor == "webhook:alice@example.com"


def test_a_validly_signed_body_that_is_not_a_decision_is_a_short_400(deployment, signed_webhook):
    approvals = deployment()
    paused = approvals.pause()

    reply = approvals.call(signed_webhook(paused.approval_id, body={"decision": "approve", "approver": "", "extra": "<script>"}))

    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert "<script>" not in reply.raw and "Traceback" not in reply.raw
    assert approvals.api_service.approvals.get(paused.approval_id).status == "pending"


def test_webhook_decisions_are_refused_when_no_secret_is_configured(deployment, signed_webhook):
    approvals = deployment(webhook_secret=None, webhook_groups=())
    paused = approvals.pause()

    reply = approvals.call(signed_webhook(paused.approval_id))

    # No webhook groups: the route is not served (as API Gateway has no such resource then), so nothing decides.
    assert (reply.status, reply.body["error"]) == (404, "not_found")
    assert approvals.api_service.approvals.get(paused.approval_id).status == "pending"


def test_an_unused_signed_decision_cannot_be_aimed_at_another_approval(deployment, signed_webhook):
    approvals = deployment()
    first = approvals.pause()
    second = approvals.pause("6e4a2c0b8d9f4e1a3b5c7d9e1f3a5b7c", correlation_id="second")
    captured = signed_webhook(first.approval_id)  # signed, never sent to its own approval

    redirected = copy.deepcopy(captured)
    redirected["path"] = redirected["path"].replace(first.approval_id, second.approval_id)
    redirected["pathParameters"] = {"approval_id": second.approval_id}
    reply = approvals.call(redirected)

    assert (reply.status, reply.body["error"]) == (401, "invalid_signature")
    assert approvals.api_service.approvals.get(second.approval_id).status == "pending"
    assert approvals.api_service.approvals.get(first.approval_id).status == "pending"


@pytest.mark.parametrize(
    "respell",
    [
        lambda t, v1: f"v1={v1},t={t}",
        lambda t, v1: f"t={t},v1={v1},v0=ignored",
        lambda t, v1: f"t=0{t},v1={v1}",
    ],
    ids=["reordered", "extra-field", "zero-padded-timestamp"],
)
def test_a_used_signature_spelled_another_way_is_not_a_new_key_of_the_replay_cache(deployment, signed_webhook, respell):
    # Given a decision whose signature header was used once, on an approval that is pending again
    approvals = deployment()
    paused = approvals.pause()
    captured = signed_webhook(paused.approval_id)
    header = captured["headers"][SIGNATURE_HEADER]
    timestamp, digest = header.removeprefix("t=").split(",v1=")
    respelled = copy.deepcopy(captured)
    respelled["headers"][SIGNATURE_HEADER] = respelled["multiValueHeaders"][SIGNATURE_HEADER] = respell(timestamp, digest)
    respelled["multiValueHeaders"][SIGNATURE_HEADER] = [respelled["headers"][SIGNATURE_HEADER]]

    # When the same timestamp and digest arrive under another spelling of the header
    reply = approvals.call(respelled)

    # Then it is refused and audited, and nothing is decided
    assert (reply.status, reply.body["error"]) == (401, "invalid_signature")
    assert approvals.api_service.approvals.get(paused.approval_id).status == "pending"
    assert attempts_audited(approvals, paused.approval_id) == [("invalid_signature", "webhook", "malformed signature")]


def test_the_chat_approver_must_be_a_configured_identity_of_the_approver_group(deployment, signed_webhook):
    # Given a validly signed decision that names an approver nobody configured
    approvals = deployment()
    paused = approvals.pause()
    body = json.loads(signed_webhook(paused.approval_id)["body"]) | {"approver": "mallory@example.com"}

    # When it arrives
    reply = approvals.call(signed_webhook(paused.approval_id, body=body))

    # Then it is 403 and audited under the name it gave, and the approval stays pending
    assert (reply.status, reply.body["error"]) == (403, "not_an_approver")
    assert approvals.api_service.approvals.get(paused.approval_id).status == "pending"
    [refused] = [e for e in approvals.api_service.audit.entries(paused.approval_id) if e.event == "refused"]
    assert (refused.actor, refused.comment) == ("webhook:mallory@example.com", "not in the approver group")
