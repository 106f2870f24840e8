"""The approval steps of a long task's workflow: they touch the approval and the task it pauses."""

from __future__ import annotations

from agentrail_runtime.approvals.models import ApprovalRecord, AuditEntry, DecisionOutput
from agentrail_runtime.approvals.service import ApprovalService, pending_call
from agentrail_runtime.approvals.store import AlreadyDecided
from agentrail_runtime.observability import logger
from agentrail_runtime.tasks.events import TASK_WAITING
from agentrail_runtime.tasks.models import TaskStatus
from agentrail_runtime.tasks.service import TaskService


class ApprovalSteps:
    """Parameters
    ----------
    approvals:
        Approval records, audit trail, groups and reminders.
    tasks:
        Task records, checkpoints and events.
    """

    def __init__(self, approvals: ApprovalService, tasks: TaskService) -> None:
        self.approvals = approvals
        self.tasks = tasks

    def request(self, task_id: str, *, task_token: str, level: int = 0) -> ApprovalRecord:
        """Store the approval with its task token (server-side only) and mark the task ``waiting_approval``."""
        task, raw = self.tasks.store.get_checkpointed(task_id)
        if task is None:
            raise RuntimeError("no such task")
        _, pending = pending_call(raw)
        record = self.approvals.new_request(task_id, pending, requester=task.owner, level=level)
        try:
            self.approvals.approvals.put_pending(record, task_token)
        except AlreadyDecided:
            logger.warning("approval already decided; request ignored", extra={"event": "approval_request_ignored"})
            return record
        waiting = self.tasks.store.set_status(
            task_id, TaskStatus.WAITING_APPROVAL, expected=(TaskStatus.RUNNING, TaskStatus.WAITING_APPROVAL)
        )
        self.approvals.audit.append(
            AuditEntry(
                approval_id=record.approval_id,
                at=record.requested_at,
                event="requested" if level == 0 else "escalated",
                actor=task.owner,
                task_id=task_id,
                arguments_hash=record.arguments_hash,
            )
        )
        if waiting:
            self.tasks.events.publish(
                TASK_WAITING,
                task.model_copy(update={"status": TaskStatus.WAITING_APPROVAL}),
                {"approval_id": record.approval_id, "summary": record.summary, "approver_group": record.approver_group},
            )
        self.approvals.schedule_reminder(record)
        logger.info(
            "approval requested", extra={"event": "approval_requested", "approval_id": record.approval_id, "level": level}
        )
        return record

    def on_timeout(self, task_id: str, *, level: int = 0) -> DecisionOutput:
        """Apply the timeout policy: ``reject`` (default), or ``escalate`` the first level to the escalation group."""
        return self.approvals.time_out(task_id, self.tasks.store.get_checkpointed(task_id)[1], level=level)


__all__ = ["ApprovalSteps"]
