"""Human approval pauses: approval records with single-use decisions, an append-only audit trail, and the tamper check."""

from agentrail_runtime.approvals.models import (
    ApprovalRecord,
    ApprovalStatus,
    ApprovalView,
    AuditEntry,
    DecisionOutput,
    DecisionRequest,
    WebhookDecision,
    arguments_hash,
)
from agentrail_runtime.approvals.service import (
    ApprovalExpired,
    ApprovalService,
    DecisionNotDelivered,
    NotAnApprover,
    SelfApproval,
    approval_id_for,
)
from agentrail_runtime.approvals.store import AlreadyDecided, ApprovalNotFound, ApprovalStore, AuditLog

__all__ = [
    "AlreadyDecided",
    "ApprovalExpired",
    "ApprovalNotFound",
    "ApprovalRecord",
    "ApprovalService",
    "ApprovalStatus",
    "ApprovalStore",
    "ApprovalView",
    "AuditEntry",
    "AuditLog",
    "DecisionNotDelivered",
    "DecisionOutput",
    "DecisionRequest",
    "NotAnApprover",
    "SelfApproval",
    "WebhookDecision",
    "approval_id_for",
    "arguments_hash",
]
