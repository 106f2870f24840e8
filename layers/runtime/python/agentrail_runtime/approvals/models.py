"""Approval records, decisions and audit entries."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    ESCALATED = "escalated"


def arguments_hash(tool: str, arguments: dict[str, Any]) -> str:
    """SHA-256 of the tool name and its canonical JSON arguments: what the approver approved, exactly."""
    canonical = json.dumps({"tool": tool, "arguments": arguments}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class ApprovalView(BaseModel):
    """An approval as approvers and the requester see it: everything but the server-side fields."""

    model_config = ConfigDict(extra="ignore")

    approval_id: str
    task_id: str
    tool: str
    arguments: dict[str, Any]
    arguments_hash: str
    summary: str
    requester: str
    approver_group: str
    requested_at: int
    expires_at: int
    status: ApprovalStatus = ApprovalStatus.PENDING
    decided_by: str | None = None
    decided_at: int | None = None
    comment: str | None = None


class ApprovalRecord(ApprovalView):
    """A pending (or decided) approval as stored. ``task_token`` never leaves the server."""

    level: int = 0
    task_token: str | None = Field(default=None, exclude=True, repr=False)

    def view(self) -> ApprovalView:
        return ApprovalView.model_validate(self.model_dump(exclude={"task_token", "level"}))


#: The longest comment a decision may carry.
MAX_COMMENT_CHARS = 10_240


class DecisionRequest(BaseModel):
    """The body of ``POST /approvals/{id}/decision``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    decision: Literal["approve", "reject"]
    #: 10 KB: room for a reasoned decision; it is stored and shown as text, never as markup.
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class WebhookDecision(DecisionRequest):
    """A decision relayed by a chat tool, signed with the shared secret; ``approver`` names the person.

    ``approval_id`` is inside the signed body, so a captured signature cannot be pointed at another approval.
    """

    approval_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    approver: str = Field(min_length=1, max_length=200)


class DecisionOutput(BaseModel):
    """What the workflow receives when the wait ends (SendTaskSuccess output, or the timeout policy's).

    Ids and flags only: it lands in the execution's history, so the approver's comment stays in the table,
    where the Resume step reads it.
    """

    approval_id: str
    approved: bool
    decided_by: str | None = None
    arguments_hash: str
    timed_out: bool = False


#: What an audit entry records: every attempt, including refused, late, reverted, forged and replayed ones.
AuditEvent = Literal[
    "requested",
    "approved",
    "rejected",
    "refused",
    "expired",
    "escalated",
    "reminded",
    "late",
    "reverted",
    "invalid_signature",
    "replayed",
]


class AuditEntry(BaseModel):
    approval_id: str
    at: int
    event: AuditEvent
    actor: str
    comment: str | None = None
    task_id: str | None = None
    arguments_hash: str | None = None
