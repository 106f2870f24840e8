"""Approvals API, mounted on the async agent's REST API.

``GET /approvals?status=pending``, ``GET /approvals/{id}``,
``POST /approvals/{id}/decision`` (approver group members only) and
``POST /approvals/{id}/webhook`` (a chat tool's decision, HMAC-signed; only with webhook groups configured).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, Field, ValidationError

from agentrail_runtime.api.errors import AgentResolver, ApiError, cognito_groups, error_responses
from agentrail_runtime.approvals.models import ApprovalRecord, ApprovalStatus, ApprovalView, AuditEntry, DecisionRequest
from agentrail_runtime.approvals.service import (
    DECISION_RETRY_AFTER_SECONDS,
    ApprovalExpired,
    ApprovalService,
    DecisionNotDelivered,
    NotAnApprover,
    SelfApproval,
)
from agentrail_runtime.approvals.store import AlreadyDecided, ApprovalNotFound
from agentrail_runtime.signatures import SIGNATURE_HEADER, InvalidSignature

APPROVAL_ID_PATTERN = r"^[0-9a-f]{32}$"
ApprovalId = Annotated[str, Path(pattern=APPROVAL_ID_PATTERN, description="32 lowercase hex characters")]


class ApprovalItem(ApprovalView):
    """An approval as the caller sees it, with whether the caller may decide it."""

    can_decide: bool = Field(description="Pending, the caller is an approver of it, and not its requester")


class ApprovalDetail(ApprovalItem):
    audit: list[AuditEntry]


class ApprovalList(BaseModel):
    approvals: list[ApprovalItem]


def add_approval_routes(app: AgentResolver, approvals: ApprovalService, owner: Callable[[], str]) -> None:
    """Register the approval routes and their error mapping on ``app``."""

    def groups() -> list[str]:
        return cognito_groups(app.current_event.raw_event.get("requestContext") or {})

    def item(record: ApprovalRecord, caller: str, caller_groups: list[str]) -> ApprovalItem:
        return ApprovalItem(**record.view().model_dump(), can_decide=approvals.can_decide(record, caller, caller_groups))

    app.answer(ApprovalNotFound, 404, "approval_not_found", "No such approval.")
    app.answer(NotAnApprover, 403, "not_an_approver", "Only members of the approver group may decide.")
    app.answer(SelfApproval, 403, "self_approval", "The requester of an approval may not decide it (separation of duties).")
    app.answer(
        DecisionNotDelivered,
        503,
        "decision_not_delivered",
        "The decision could not reach the workflow and was withdrawn; send it again after Retry-After seconds.",
        headers={"Retry-After": str(DECISION_RETRY_AFTER_SECONDS)},
    )
    app.answer(AlreadyDecided, 409, "already_decided", lambda error: f"This approval is already {error.status.value}.")
    app.answer(ApprovalExpired, 409, "approval_expired", "The task stopped waiting for this approval (timed out or cancelled).")
    app.answer(InvalidSignature, 401, "invalid_signature", "The request signature is missing, invalid, stale or replayed.")

    @app.get("/approvals", summary="Approvals visible to the caller, by status")
    def list_approvals(status: Annotated[ApprovalStatus, Query()] = ApprovalStatus.PENDING) -> ApprovalList:
        caller, caller_groups = owner(), groups()
        records = approvals.list_visible(status, caller, caller_groups)
        return ApprovalList(approvals=[item(r, caller, caller_groups) for r in records])

    @app.get(
        "/approvals/<approval_id>",
        summary="One approval with its audit trail",
        responses={200: {"description": "Success"}, **error_responses("approval_not_found")},
    )
    def get_approval(approval_id: ApprovalId) -> ApprovalDetail:
        caller, caller_groups = owner(), groups()
        record = approvals.get_visible(approval_id, caller, caller_groups)
        return ApprovalDetail(**item(record, caller, caller_groups).model_dump(), audit=approvals.audit.entries(approval_id))

    @app.post(
        "/approvals/<approval_id>/decision",
        summary="Approve or reject (approver group only, once)",
        responses={
            200: {"description": "Decided"},
            **error_responses(
                "approval_not_found",
                "not_an_approver",
                "self_approval",
                "already_decided",
                "approval_expired",
                "decision_not_delivered",
            ),
        },
    )
    def decide(approval_id: ApprovalId, request: Annotated[DecisionRequest, Body()]) -> ApprovalView:
        return approvals.decide(approval_id, request, principal=owner(), cognito_groups=groups()).view()

    if approvals.settings.webhook_secret:  # else neither served nor documented: API Gateway has no such resource
        _add_webhook_route(app, approvals)


def _add_webhook_route(app: AgentResolver, approvals: ApprovalService) -> None:
    @app.post(
        "/approvals/<approval_id>/webhook",
        summary="A chat tool's decision, signed with HMAC-SHA256 (X-Agentrail-Signature: t=<unix>,v1=<hex>)",
        responses={
            200: {"description": "Decided"},
            **error_responses(
                "invalid_request",
                "invalid_signature",
                "approval_not_found",
                "not_an_approver",
                "self_approval",
                "already_decided",
                "approval_expired",
                "decision_not_delivered",
            ),
        },
    )
    def webhook(approval_id: ApprovalId) -> ApprovalView:
        event = app.current_event
        body = event.decoded_body.encode() if isinstance(event.decoded_body, str) else (event.decoded_body or b"")
        signature = event.headers.get(SIGNATURE_HEADER)  # case-insensitive in Powertools v3
        try:
            return approvals.decide_by_webhook(approval_id, body, signature).view()
        except ValidationError:
            # Parsed only after the signature checks out, so it is not a RequestValidationError; never echo it.
            raise ApiError(400, "invalid_request", "The signed body is not a valid decision.") from None
