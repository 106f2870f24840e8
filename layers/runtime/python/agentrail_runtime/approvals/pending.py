"""Approvals waiting for a decision, as metrics: how many, and how old the oldest is.

A schedule (``ApprovalOptions.pending_metrics_every``, default every 5 minutes) invokes the approval-metrics function,
which calls :func:`emit_pending_approval_metrics`; the monitoring alarm "an approval pending longer than N hours"
reads ``OldestPendingApprovalAgeSeconds``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools import Metrics

from agentrail_runtime.approvals.store import ApprovalStore
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.metering.metrics import emit_pending_approvals


@dataclass(frozen=True)
class PendingApprovals:
    """What one emission saw: the number of pending approvals and the age of the oldest (0 when none waits)."""

    count: int
    oldest_age_seconds: int


def emit_pending_approval_metrics(store: ApprovalStore, metrics: Metrics, *, clock: Clock = now) -> PendingApprovals:
    """Read the pending approvals (two queries of the ``by_status`` index) and emit ``ApprovalsPending`` and
    ``OldestPendingApprovalAgeSeconds`` (one EMF record).

    Parameters
    ----------
    store:
        The approvals table.
    metrics:
        The function's metrics (namespace and ``service``).
    clock:
        Default: the runtime's clock.

    Returns
    -------
    PendingApprovals
        What was emitted.
    """
    count, oldest = store.pending_summary()
    age = max(0, int(clock()) - oldest) if oldest is not None else 0
    emit_pending_approvals(metrics, count=count, oldest_age_seconds=age)
    return PendingApprovals(count=count, oldest_age_seconds=age)


__all__ = ["PendingApprovals", "emit_pending_approval_metrics"]
