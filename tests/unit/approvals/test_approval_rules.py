"""The pure rules of approvals: what is hashed, how ids are made, who is a member, what a decision may say."""

from __future__ import annotations

import os
import re

import pytest
from pydantic import ValidationError

from agentrail_runtime.agent.loop import Agent, AgentStatus, PendingToolCall
from agentrail_runtime.api.approvals import APPROVAL_ID_PATTERN, cognito_groups
from agentrail_runtime.approvals import (
    ApprovalRecord,
    ApprovalService,
    ApprovalView,
    DecisionRequest,
    WebhookDecision,
    approval_id_for,
    arguments_hash,
)
from agentrail_runtime.approvals.models import MAX_COMMENT_CHARS
from agentrail_runtime.approvals.service import summarize
from agentrail_runtime.approvals.settings import ApprovalSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.models.local import LocalModel

REFUND = {"order_id": "A-1002", "amount_usd": 150.0}


@pytest.fixture
def approval_env(env):
    for name in [n for n in os.environ if n.startswith("AGENT_")]:
        env.delenv(name)
    env.setenv("AGENT_APPROVAL_TABLE", "agentrail-approvals")
    env.setenv("AGENT_APPROVAL_AUDIT_TABLE", "agentrail-approval-audit")
    return env


def record(**changes) -> ApprovalRecord:
    values = {
        "approval_id": "c" * 32,
        "task_id": "t" * 32,
        "tool": "issue_refund",
        "arguments": REFUND,
        "arguments_hash": arguments_hash("issue_refund", REFUND),
        "summary": "Run issue_refund(...)",
        "requester": "iam:requester",
        "approver_group": "approvers",
        "requested_at": 1,
        "expires_at": 2,
    }
    return ApprovalRecord(**(values | changes))


# -- what the approver approves ---------------------------------------------------------------


def test_the_arguments_hash_ignores_key_order_but_not_a_changed_value_or_tool():
    reordered = {"amount_usd": 150.0, "order_id": "A-1002"}

    assert arguments_hash("issue_refund", REFUND) == arguments_hash("issue_refund", reordered)
    assert arguments_hash("issue_refund", REFUND) != arguments_hash("issue_refund", REFUND | {"amount_usd": 9000.0})
    assert arguments_hash("issue_refund", REFUND) != arguments_hash("issue_refund", REFUND | {"order_id": "A-1003"})
    assert arguments_hash("issue_refund", REFUND) != arguments_hash("void_order", REFUND)


def test_the_demo_agent_pauses_on_a_refund_above_100_usd_with_the_validated_arguments():
    agent = Agent(model=LocalModel(), tools=demo_definition.tools, system_prompt=demo_definition.system_prompt)

    paused = agent.run("Please refund 150 USD for order A-1002")
    small = agent.run("Please refund 20 USD for order A-1001")

    assert paused.status == AgentStatus.AWAITING_APPROVAL
    assert (paused.pending.tool, paused.pending.arguments) == ("issue_refund", REFUND)
    assert paused.checkpoint.pending == paused.pending
    assert small.status == AgentStatus.COMPLETED  # at or below 100 USD no one is asked


def test_the_summary_names_the_tool_and_its_arguments_and_is_bounded():
    pending = PendingToolCall(step=1, tool_use_id="tooluse_1", tool="issue_refund", arguments=REFUND)
    long = PendingToolCall(step=1, tool_use_id="tooluse_1", tool="send_note", arguments={"text": "x" * 2000})

    assert summarize(pending) == 'Run issue_refund(amount_usd=150.0, order_id="A-1002")'
    assert len(summarize(long)) == 500


def test_approval_ids_are_deterministic_per_task_call_and_level_and_fit_the_api_pattern():
    first = approval_id_for("t" * 32, "tooluse_1", 0)

    assert first == approval_id_for("t" * 32, "tooluse_1", 0)  # a retried request refreshes the same record
    assert len({first, approval_id_for("t" * 32, "tooluse_1", 1), approval_id_for("t" * 32, "tooluse_2", 0)}) == 3
    assert re.fullmatch(APPROVAL_ID_PATTERN, first)


def test_the_task_token_is_never_dumped_or_shown():
    secret = record()
    secret.task_token = "AQCEAAAAKgAAAAMAAAAA-token"

    assert "task_token" not in secret.model_dump()
    assert "AQCEAAAA" not in repr(secret) and "AQCEAAAA" not in secret.model_dump_json()
    assert "task_token" not in ApprovalView.model_fields
    assert "AQCEAAAA" not in secret.view().model_dump_json()


# -- decisions -------------------------------------------------------------------------------


def test_a_decision_is_approve_or_reject_with_an_optional_bounded_comment():
    assert DecisionRequest.model_validate({"decision": "approve"}).comment is None
    assert DecisionRequest.model_validate({"decision": "reject", "comment": "  not shipped  "}).comment == "not shipped"
    assert DecisionRequest.model_validate({"decision": "reject", "comment": "x" * MAX_COMMENT_CHARS}).comment
    for bad in (
        {"decision": "yes"},
        {"decision": "approve", "comment": "x" * (MAX_COMMENT_CHARS + 1)},
        {"decision": "approve", "approver": "me"},
        {},
    ):
        with pytest.raises(ValidationError):
            DecisionRequest.model_validate(bad)


def test_a_webhook_decision_must_name_its_approver():
    approval_id = "c936f5d95235cfa5ffa25657ee0bd7e8"
    assert (
        WebhookDecision.model_validate(
            {"decision": "approve", "approver": "alice@example.com", "approval_id": approval_id}
        ).approver
        == "alice@example.com"
    )
    for bad in (
        {"decision": "approve", "approval_id": approval_id},
        {"decision": "approve", "approver": "", "approval_id": approval_id},
        {"decision": "approve", "approver": "a" * 201, "approval_id": approval_id},
        {"decision": "approve", "approver": "alice@example.com"},
    ):
        with pytest.raises(ValidationError):
            WebhookDecision.model_validate(bad)


# -- who is an approver ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "groups"),
    [
        ("approvers", ["approvers"]),
        ("approvers,finance-leads", ["approvers", "finance-leads"]),
        ("[approvers finance-leads]", ["approvers", "finance-leads"]),
        ("[approvers, finance-leads]", ["approvers", "finance-leads"]),
        (["approvers", "finance-leads"], ["approvers", "finance-leads"]),
        ("", []),
        (None, []),
    ],
)
def test_cognito_groups_are_read_in_every_shape_api_gateway_sends_the_claim(claim, groups):
    assert cognito_groups({"authorizer": {"claims": {"sub": "u-1", "cognito:groups": claim}}}) == groups


def test_cognito_groups_are_empty_without_an_authorizer():
    assert cognito_groups({"identity": {"userArn": "arn:aws:iam::123456789012:user/alice"}}) == []


def test_membership_is_a_cognito_group_or_an_iam_principal_pattern_matched_case_sensitively():
    settings = ApprovalSettings(
        table="agentrail-approvals",
        audit_table="agentrail-approval-audit",
        groups={"approvers": ["iam:arn:aws:iam::123456789012:user/alice", "iam:arn:aws:iam::123456789012:user/ops-*"]},
    )
    # Membership reads only the settings.
    service = ApprovalService(approvals=None, audit=None, settings=settings)  # type: ignore[arg-type]

    assert service.is_member("iam:arn:aws:iam::123456789012:user/alice", [], "approvers")
    assert service.is_member("iam:arn:aws:iam::123456789012:user/ops-dana", [], "approvers")
    assert service.is_member("cognito:u-1", ["support", "approvers"], "approvers")
    assert not service.is_member("iam:arn:aws:iam::123456789012:user/ALICE", [], "approvers")
    assert not service.is_member("iam:arn:aws:iam::123456789012:user/alice-bot", [], "approvers")
    assert not service.is_member("iam:arn:aws:iam::123456789012:user/alice", [], "finance-leads")
    assert not service.is_member("cognito:u-1", ["support"], "approvers")


def test_a_role_pattern_admits_the_role_and_every_session_of_it_but_a_session_pattern_not_the_role():
    settings = ApprovalSettings(
        table="agentrail-approvals",
        audit_table="agentrail-approval-audit",
        groups={
            "approvers": ["iam:arn:aws:iam::123456789012:role/Approver*"],
            "on-call": ["iam:arn:aws:sts::123456789012:assumed-role/OnCall/dana"],
        },
    )
    service = ApprovalService(approvals=None, audit=None, settings=settings)  # type: ignore[arg-type]

    # The documented pattern names a role: the role identity (the default) and each of its sessions match it.
    assert service.is_member("iam:arn:aws:iam::123456789012:role/ApproverFinance", [], "approvers")
    assert service.is_member("iam:arn:aws:sts::123456789012:assumed-role/ApproverFinance/frank", [], "approvers")
    assert not service.is_member("iam:arn:aws:sts::123456789012:assumed-role/Support/ApproverFinance", [], "approvers")
    assert not service.is_member("iam:arn:aws:sts::999999999999:assumed-role/ApproverFinance/frank", [], "approvers")
    # A pattern naming one session admits that session (session identity) and never the whole role.
    assert service.is_member("iam:arn:aws:sts::123456789012:assumed-role/OnCall/dana", [], "on-call")
    assert not service.is_member("iam:arn:aws:iam::123456789012:role/OnCall", [], "on-call")


def test_the_requester_sees_an_approval_they_cannot_decide():
    settings = ApprovalSettings(table="agentrail-approvals", audit_table="agentrail-approval-audit", groups={})
    service = ApprovalService(approvals=None, audit=None, settings=settings)  # type: ignore[arg-type]

    assert service.visible(record(), "iam:requester", [])
    assert not service.is_member("iam:requester", [], "approvers")
    assert not service.visible(record(), "iam:someone-else", [])


# -- settings ---------------------------------------------------------------------------------


def test_settings_come_from_the_environment_the_construct_sets(approval_env):
    approval_env.setenv("AGENT_APPROVAL_GROUPS", '{"approvers": ["iam:arn:aws:iam::123456789012:user/alice"]}')
    approval_env.setenv("AGENT_APPROVAL_WEBHOOK_GROUPS", '["approvers"]')
    approval_env.setenv("AGENT_APPROVAL_TIMEOUT_SECONDS", "3600")

    settings = ApprovalSettings()

    assert settings.groups == {"approvers": ["iam:arn:aws:iam::123456789012:user/alice"]}
    assert settings.webhook_groups == ("approvers",)
    assert (settings.timeout_seconds, settings.timeout_policy, settings.approver_group) == (3600, "reject", "approvers")
    assert settings.webhook_tolerance_seconds == 300


def test_the_escalate_policy_needs_an_escalation_group(approval_env):
    approval_env.setenv("AGENT_APPROVAL_TIMEOUT_POLICY", "escalate")

    with pytest.raises(ValidationError, match="AGENT_APPROVAL_TIMEOUT_POLICY=escalate needs AGENT_APPROVAL_ESCALATION_GROUP"):
        ApprovalSettings()


def test_reminders_need_the_scheduler_group_role_and_bus(approval_env):
    approval_env.setenv("AGENT_APPROVAL_REMINDER_AFTER_SECONDS", "3600")

    with pytest.raises(ValidationError, match="reminders need AGENT_APPROVAL_SCHEDULER_GROUP"):
        ApprovalSettings()


def test_the_tables_are_required(approval_env):
    approval_env.delenv("AGENT_APPROVAL_AUDIT_TABLE")

    with pytest.raises(ValidationError, match="audit_table"):
        ApprovalSettings()
