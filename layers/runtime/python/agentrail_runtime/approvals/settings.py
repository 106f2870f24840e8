"""Settings of the approval handlers (``AGENT_APPROVAL_*``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApprovalSettings(BaseSettings):
    """Set by the ApprovalWorkflow construct; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="AGENT_APPROVAL_", extra="ignore", frozen=True)

    table: str = Field(min_length=3)
    audit_table: str = Field(min_length=3)
    audit_retention_days: int = Field(default=365, ge=1, le=3650)
    timeout_seconds: int = Field(default=3 * 86_400, ge=1, le=365 * 86_400)
    timeout_policy: Literal["reject", "escalate"] = "reject"
    approver_group: str = "approvers"
    escalation_group: str | None = None
    #: Group name to principal patterns (fnmatch) such as ``iam:arn:aws:iam::123456789012:user/alice``,
    #: ``iam:arn:aws:iam::123456789012:role/Approver*`` or a chat approver's ``webhook:alice@example.com``.
    groups: dict[str, list[str]] = Field(default_factory=dict)
    #: Separation of duties is the default: the requester of an approval may not decide it.
    allow_self_approval: bool = False
    webhook_secret: str | None = None
    webhook_groups: tuple[str, ...] = ()
    webhook_tolerance_seconds: int = Field(default=300, ge=30, le=3600)
    reminder_after_seconds: int | None = Field(default=None, ge=60)
    scheduler_group: str | None = None
    scheduler_role_arn: str | None = None
    #: The task event bus, target of reminder schedules.
    event_bus_arn: str | None = None

    @model_validator(mode="after")
    def _escalation_needs_group(self) -> ApprovalSettings:
        if self.timeout_policy == "escalate" and not self.escalation_group:
            raise ValueError("AGENT_APPROVAL_TIMEOUT_POLICY=escalate needs AGENT_APPROVAL_ESCALATION_GROUP")
        if self.reminder_after_seconds and not (self.scheduler_group and self.scheduler_role_arn and self.event_bus_arn):
            raise ValueError(
                "reminders need AGENT_APPROVAL_SCHEDULER_GROUP, AGENT_APPROVAL_SCHEDULER_ROLE_ARN and AGENT_APPROVAL_EVENT_BUS_ARN"
            )
        return self


class PendingMetricsSettings(BaseSettings):
    """Settings of the approval-metrics function: only the approvals table, which it reads (never writes)."""

    model_config = SettingsConfigDict(env_prefix="AGENT_APPROVAL_", extra="ignore", frozen=True)

    table: str = Field(min_length=3)


@lru_cache(maxsize=1)
def load_approval_settings() -> ApprovalSettings:
    return ApprovalSettings()  # type: ignore[call-arg]
