"""``POST /erase``: delete everything of one principal (the caller's own data, or anyone's for an operator) and
report the counts, for data-subject requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from agentrail_runtime.api.errors import AgentResolver, cognito_groups, error_responses
from agentrail_runtime.erasure import ErasureCounts, ErasureForbidden, PrincipalEraser

#: The longest principal a request may name (an IAM ARN with a long path stays well under it).
MAX_PRINCIPAL_CHARS = 512


class ErasureRequest(BaseModel):
    """Whose data to erase: the caller's own by default; another principal's only for an operator."""

    model_config = ConfigDict(extra="forbid")
    principal: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PRINCIPAL_CHARS,
        description="The principal as the API names callers (iam:<arn>, cognito:<sub>, apikey:<id>); default: the caller",
    )


class ErasureReport(BaseModel):
    """What the erasure deleted, per kind, and the principal's pseudonym in the audit trail (when there is one)."""

    counts: ErasureCounts
    audit_pseudonym: str | None = Field(
        default=None, description="What the audit trail names the principal from now on (erased:<hash>); null without one"
    )


def add_erasure_route(app: AgentResolver, eraser: PrincipalEraser, owner: Callable[[], str]) -> None:
    """Register ``POST /erase`` and its 403 (``erase_forbidden``) on ``app``."""
    app.answer(ErasureForbidden, 403, "erase_forbidden", "Only the principal itself or an operator may erase a principal's data.")

    @app.post(
        "/erase",
        summary="Erase everything of one principal (yours, or anyone's for an operator) and report the counts",
        responses={200: {"description": "Erased (all zeros when nothing was left)"}, **error_responses("erase_forbidden")},
    )
    def erase(request: Annotated[ErasureRequest, Body()]) -> ErasureReport:
        caller = owner()
        principal = request.principal or caller
        groups = cognito_groups(app.current_event.raw_event.get("requestContext") or {})
        counts, alias = eraser.erase_as(caller, principal, groups)
        return ErasureReport(counts=counts, audit_pseudonym=alias)


__all__ = ["ErasureReport", "ErasureRequest", "add_erasure_route"]
