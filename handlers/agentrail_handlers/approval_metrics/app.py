"""Pending approvals as metrics: an EventBridge schedule invokes this every few minutes (``pending_metrics_every``)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.approvals.pending import emit_pending_approval_metrics
from agentrail_runtime.approvals.settings import PendingMetricsSettings
from agentrail_runtime.approvals.store import ApprovalStore
from agentrail_runtime.observability import metrics, observed

store = ApprovalStore(PendingMetricsSettings().table)  # type: ignore[call-arg]


@observed()
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    pending = emit_pending_approval_metrics(store, metrics)
    return {"pending": pending.count, "oldest_age_seconds": pending.oldest_age_seconds}
