"""Requesting, deciding and timing out approvals; who may decide; the tamper check before a tool runs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from agentrail_runtime.agent.loop import AgentCheckpoint, PendingToolCall
from agentrail_runtime.approvals.models import (
    ApprovalRecord,
    ApprovalStatus,
    AuditEntry,
    AuditEvent,
    DecisionOutput,
    DecisionRequest,
    WebhookDecision,
    arguments_hash,
)
from agentrail_runtime.approvals.settings import ApprovalSettings, load_approval_settings
from agentrail_runtime.approvals.store import AlreadyDecided, ApprovalNotFound, ApprovalStore, AuditLog
from agentrail_runtime.aws import LazyClient, principal_matches, read_secret
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.observability import logger
from agentrail_runtime.signatures import InvalidSignature, parse_header, verify

#: SendTaskSuccess answers these when the wait is over: "already decided or expired", never a crash.
GONE_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
#: A decision is worth more attempts than the runtime's default: botocore's standard mode retries throttling
#: and transient errors with jittered backoff, 4 retries (5 attempts in all), before the decision is withdrawn.
DECISION_RETRIES = Config(retries={"mode": "standard", "max_attempts": 4})
#: What a decision that could not be delivered answers in ``Retry-After``.
DECISION_RETRY_AFTER_SECONDS = 5
TIMED_OUT_REASON = "the approval request timed out and was rejected automatically"


class NotAnApprover(Exception):
    """The caller is not in the approval's approver group."""


class SelfApproval(Exception):
    """The caller requested this approval: separation of duties forbids deciding it (unless ``allow_self_approval``)."""


class ApprovalExpired(Exception):
    """The workflow stopped waiting (timeout or cancellation) before the decision reached it."""


class DecisionNotDelivered(Exception):
    """Step Functions kept failing after botocore's retries; the decision was withdrawn and may be made again."""

    def __init__(self, code: str | None) -> None:
        super().__init__(f"the decision could not be sent to the workflow ({code})")
        self.code = code
        self.retry_after_seconds = DECISION_RETRY_AFTER_SECONDS


def approval_id_for(task_id: str, tool_use_id: str, level: int) -> str:
    """Deterministic, so a retried request refreshes the same record instead of creating another."""
    return hashlib.sha256(f"{task_id}:{tool_use_id}:{level}".encode()).hexdigest()[:32]


#: The levels one tool call's approval can reach: the approver group (0), then, escalated, the escalation group (1).
APPROVAL_LEVELS = (0, 1)


def approval_ids_of(task_id: str, tool_use_ids: Iterable[str]) -> dict[str, str]:
    """Every approval id the task's tool calls can have (at each level), and the tool call each belongs to."""
    return {approval_id_for(task_id, use, level): use for use in tool_use_ids for level in APPROVAL_LEVELS}


def summarize(pending: PendingToolCall) -> str:
    arguments = ", ".join(f"{key}={json.dumps(value)}" for key, value in sorted(pending.arguments.items()))
    return f"Run {pending.tool}({arguments})"[:500]


class ApprovalService:
    """Parameters
    ----------
    approvals, audit:
        The pending-approvals table and the audit trail.
    settings:
        Groups, timeout policy, webhook secret.
    """

    sfn = LazyClient("stepfunctions", config=DECISION_RETRIES)
    scheduler = LazyClient("scheduler")

    def __init__(
        self,
        *,
        approvals: ApprovalStore,
        audit: AuditLog,
        settings: ApprovalSettings,
        sfn_client: Any = None,
        scheduler_client: Any = None,
        clock: Clock = now,
    ) -> None:
        self.approvals = approvals
        self.audit = audit
        self.settings = settings
        self.sfn = sfn_client
        self.scheduler = scheduler_client
        self._clock = clock

    @classmethod
    def from_environment(cls) -> ApprovalService | None:
        """The approval service a function serves when its environment configures approvals (``AGENT_APPROVAL_TABLE``)."""
        if not os.environ.get("AGENT_APPROVAL_TABLE"):
            return None
        return cls.from_settings(load_approval_settings())

    @classmethod
    def from_settings(cls, settings: ApprovalSettings) -> ApprovalService:
        return cls(
            approvals=ApprovalStore(settings.table),
            audit=AuditLog(settings.audit_table, retention_seconds=settings.audit_retention_days * 86_400),
            settings=settings,
        )

    def now(self) -> int:
        return int(self._clock())

    # -- workflow side (the steps that also touch the task are workflows.ApprovalSteps) -----------

    def new_request(self, task_id: str, pending: PendingToolCall, *, requester: str, level: int = 0) -> ApprovalRecord:
        """The pending approval of ``pending``, for the approver group of ``level`` (0, or 1 once escalated)."""
        group = self.settings.approver_group if level == 0 else (self.settings.escalation_group or self.settings.approver_group)
        now = self.now()
        return ApprovalRecord(
            approval_id=approval_id_for(task_id, pending.tool_use_id, level),
            task_id=task_id,
            tool=pending.tool,
            arguments=pending.arguments,
            arguments_hash=arguments_hash(pending.tool, pending.arguments),
            summary=summarize(pending),
            requester=requester,
            approver_group=group,
            requested_at=now,
            expires_at=now + self.settings.timeout_seconds,
            level=level,
        )

    def time_out(self, task_id: str, checkpoint_json: str | None, *, level: int = 0) -> DecisionOutput:
        """Apply the timeout policy to the approval the checkpoint waits on: ``reject`` (default), or ``escalate``
        the first level to the escalation group."""
        _, pending = pending_call(checkpoint_json)
        approval_id = approval_id_for(task_id, pending.tool_use_id, level)
        escalate = self.settings.timeout_policy == "escalate" and level == 0
        status = ApprovalStatus.ESCALATED if escalate else ApprovalStatus.EXPIRED
        # A decision that raced the timeout does not count: the workflow stopped waiting for it.
        with contextlib.suppress(AlreadyDecided, ApprovalNotFound):
            self.approvals.decide(approval_id, status=status, actor="system:timeout", comment=None)
        self.audit.append(
            AuditEntry(
                approval_id=approval_id,
                at=self.now(),
                event="escalated" if escalate else "expired",
                actor="system:timeout",
                task_id=task_id,
            )
        )
        return DecisionOutput(
            approval_id=approval_id,
            approved=False,
            decided_by="system:timeout",
            arguments_hash=arguments_hash(pending.tool, pending.arguments),
            timed_out=True,
        )

    def verified_decision(
        self, task_id: str, output: DecisionOutput, checkpoint_json: str | None
    ) -> tuple[AgentCheckpoint, bool, str | None]:
        """The tamper check before the tool runs: the checkpoint's pending call must hash to what was approved.

        Returns the checkpoint, whether the tool may run, and the reason given (the approver's comment, read
        from the record: the workflow's payload carries none).

        Raises
        ------
        RuntimeError
            When the arguments changed after the request was made.
        """
        checkpoint, pending = pending_call(checkpoint_json)
        expected = arguments_hash(pending.tool, pending.arguments)
        record = self.approvals.get(output.approval_id)
        if record is None or record.arguments_hash != expected or output.arguments_hash != expected or record.task_id != task_id:
            raise RuntimeError("approval integrity check failed: the arguments changed after approval was requested")
        approved = record.status == ApprovalStatus.APPROVED and output.approved and not output.timed_out
        return checkpoint, approved, TIMED_OUT_REASON if output.timed_out else record.comment

    # -- API side ------------------------------------------------------------------------

    def is_member(self, principal: str, cognito_groups: Sequence[str], group: str) -> bool:
        """A Cognito group, or a pattern of ``group``. A pattern naming a role (``iam:arn:aws:iam::…:role/Approver*``)
        admits that role's sessions too, when the API identifies callers by session."""
        return group in cognito_groups or principal_matches(principal, self.settings.groups.get(group, ()))

    def visible(self, record: ApprovalRecord, principal: str, cognito_groups: Sequence[str]) -> bool:
        return record.requester == principal or self.is_member(principal, cognito_groups, record.approver_group)

    def can_decide(self, record: ApprovalRecord, principal: str, cognito_groups: Sequence[str]) -> bool:
        """Whether a decision of ``principal`` on ``record`` would be taken: it is pending, the caller is an approver of
        it, and not its requester (unless ``allow_self_approval``). What the console shows decide buttons for."""
        return (
            record.status == ApprovalStatus.PENDING
            and self.is_member(principal, cognito_groups, record.approver_group)
            and (record.requester != principal or self.settings.allow_self_approval)
        )

    def get_visible(self, approval_id: str, principal: str, cognito_groups: Sequence[str]) -> ApprovalRecord:
        record = self.approvals.get(approval_id)
        if record is None or not self.visible(record, principal, cognito_groups):
            raise ApprovalNotFound
        return record

    def list_visible(
        self, status: ApprovalStatus, principal: str, cognito_groups: Sequence[str], *, limit: int = 50
    ) -> list[ApprovalRecord]:
        return self.approvals.list_by_status(status, limit=limit, accept=lambda r: self.visible(r, principal, cognito_groups))

    def decide(
        self,
        approval_id: str,
        request: DecisionRequest,
        *,
        principal: str,
        cognito_groups: Sequence[str] = (),
        may_decide: Callable[[ApprovalRecord], bool] | None = None,
    ) -> ApprovalRecord:
        """Record a decision once and resume the workflow. Every attempt is audited, before its effect.

        The decision is claimed on the record (single use), audited, then sent with botocore's retries
        (:data:`DECISION_RETRIES`); if Step Functions still fails, the claim is withdrawn (the record is pending
        again, conditionally) and the caller may retry.

        Raises
        ------
        ApprovalNotFound; NotAnApprover, SelfApproval, AlreadyDecided (each audited); ApprovalExpired (audited);
        DecisionNotDelivered (audited as reverted)
        """
        record = self.approvals.get(approval_id)
        if record is None:
            raise ApprovalNotFound
        member = may_decide(record) if may_decide else self.is_member(principal, cognito_groups, record.approver_group)
        if not member:
            self._audit(record, "refused", principal, "not in the approver group")
            raise NotAnApprover
        if record.requester == principal and not self.settings.allow_self_approval:
            self._audit(record, "refused", principal, "the requester may not decide their own request (separation of duties)")
            raise SelfApproval
        approve = request.decision == "approve"
        try:
            decided = self.approvals.decide(
                approval_id,
                status=ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED,
                actor=principal,
                comment=request.comment,
            )
        except AlreadyDecided as already:
            self._audit(record, "late", principal, f"{request.decision} after the approval was {already.status.value}")
            raise
        output = DecisionOutput(
            approval_id=approval_id,
            approved=approve,
            decided_by=principal,
            arguments_hash=decided.arguments_hash,
        )
        try:
            self._audit(record, "approved" if approve else "rejected", principal, request.comment, decided.arguments_hash)
            self.sfn.send_task_success(taskToken=decided.task_token, output=output.model_dump_json())
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in GONE_TOKEN_ERRORS:
                # The record must not keep saying "approved" (or "rejected") for a decision nobody received.
                self.approvals.expire_decided(approval_id, decided=decided.status)
                self._audit(record, "expired", principal, f"decision arrived after the workflow stopped waiting ({code})")
                raise ApprovalExpired from None
            reverted = self.approvals.revert_to_pending(decided)
            logger.warning(
                "decision not delivered",
                extra={
                    "event": "approval_decision_not_delivered",
                    "approval_id": approval_id,
                    "code": code,
                    "reverted": reverted,
                },
            )
            self._audit(
                record,
                "reverted",
                principal,
                f"the workflow could not be reached ({code}); the decision was withdrawn and may be made again",
            )
            raise DecisionNotDelivered(code) from None
        self._cancel_reminder(approval_id)
        logger.info("approval decided", extra={"event": "approval_decided", "approval_id": approval_id, "approved": approve})
        return decided

    def decide_by_webhook(self, approval_id: str, body: bytes, signature: str | None) -> ApprovalRecord:
        """A decision from a chat tool: signed, fresh and never replayed; the approver named in the body must be a
        configured identity (``webhook:<approver>`` matches a pattern of the approval's group). Every attempt is audited.

        Raises
        ------
        InvalidSignature
            Forged, stale or replayed (nothing changes but the audit trail).
        """
        if not self.settings.webhook_secret:
            raise InvalidSignature("webhook decisions are not configured")
        secret = read_secret(self.settings.webhook_secret).encode()
        try:
            verify(secret, signature, body, now=self.now(), tolerance=self.settings.webhook_tolerance_seconds)
            signed = parse_header(signature)
        except InvalidSignature as invalid:
            self._audit_attempt(approval_id, "invalid_signature", str(invalid))
            raise
        # One key per signature, however the header was spelled: parse_header accepts one spelling only.
        digest = hashlib.sha256(f"{signed.timestamp}.{signed.digest}".encode()).hexdigest()
        if not self.audit.remember_signature(digest, ttl_seconds=2 * self.settings.webhook_tolerance_seconds):
            self._audit_attempt(approval_id, "replayed", "a signature already used")
            raise InvalidSignature("replayed signature")
        decision = WebhookDecision.model_validate_json(body)
        if decision.approval_id != approval_id:
            self._audit_attempt(approval_id, "invalid_signature", "the signed decision is for another approval")
            raise InvalidSignature("the signed decision is for another approval")
        principal = f"webhook:{decision.approver}"
        return self.decide(
            approval_id,
            DecisionRequest(decision=decision.decision, comment=decision.comment),
            principal=principal,
            may_decide=lambda record: (
                record.approver_group in self.settings.webhook_groups and self.is_member(principal, (), record.approver_group)
            ),
        )

    def _audit(
        self, record: ApprovalRecord, event: AuditEvent, actor: str, comment: str | None, arguments_hash: str | None = None
    ) -> None:
        self.audit.append(
            AuditEntry(
                approval_id=record.approval_id,
                at=self.now(),
                event=event,
                actor=actor,
                comment=comment,
                task_id=record.task_id,
                arguments_hash=arguments_hash,
            )
        )

    def _audit_attempt(self, approval_id: str, event: AuditEvent, comment: str) -> None:
        """An attempt whose sender is unverified: the actor is the channel, never a name the request chose."""
        self.audit.append(AuditEntry(approval_id=approval_id, at=self.now(), event=event, actor="webhook", comment=comment))

    # -- reminders -------------------------------------------------------------------------

    def _schedule_name(self, approval_id: str) -> str:
        return f"approval-{approval_id}"

    def schedule_reminder(self, record: ApprovalRecord) -> None:
        s = self.settings
        if not (s.reminder_after_seconds and s.scheduler_group and s.scheduler_role_arn and s.event_bus_arn):
            return
        when = datetime.fromtimestamp(record.requested_at + s.reminder_after_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        self.scheduler.create_schedule(
            Name=self._schedule_name(record.approval_id),
            GroupName=s.scheduler_group,
            ScheduleExpression=f"at({when})",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": s.event_bus_arn,
                "RoleArn": s.scheduler_role_arn,
                "EventBridgeParameters": {"Source": "agentrail_runtime.approvals", "DetailType": "Approval Reminder"},
                "Input": json.dumps(
                    {
                        "approval_id": record.approval_id,
                        "task_id": record.task_id,
                        "approver_group": record.approver_group,
                        "summary": record.summary,
                    }
                ),
            },
        )

    def _cancel_reminder(self, approval_id: str) -> None:
        s = self.settings
        if not s.reminder_after_seconds or not s.scheduler_group:
            return
        try:
            self.scheduler.delete_schedule(Name=self._schedule_name(approval_id), GroupName=s.scheduler_group)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                logger.warning("reminder not cancelled", extra={"event": "reminder_cancel_failed"})


def pending_call(checkpoint_json: str | None) -> tuple[AgentCheckpoint, PendingToolCall]:
    """The checkpoint of a task paused for approval, and the tool call it waits on."""
    checkpoint = AgentCheckpoint.model_validate_json(checkpoint_json) if checkpoint_json else None
    if checkpoint is None or checkpoint.pending is None:
        raise RuntimeError("the task is not waiting for an approval")
    return checkpoint, checkpoint.pending
