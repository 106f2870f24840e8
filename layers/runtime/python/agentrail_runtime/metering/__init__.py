"""Token and cost metering: a price table, the metrics agents, tasks and approvals emit, and user feedback."""

from agentrail_runtime.metering.feedback import Feedback, FeedbackGiven
from agentrail_runtime.metering.metrics import (
    AGENT_VERSION_PROPERTY,
    DIMENSION_SETS,
    emit_batch_lane,
    emit_feedback_metrics,
    emit_outcome,
    emit_pending_approvals,
    emit_task_metrics,
)
from agentrail_runtime.metering.pricing import DEFAULT_PRICES, ModelPrice, PriceTable

__all__ = [
    "AGENT_VERSION_PROPERTY",
    "DEFAULT_PRICES",
    "DIMENSION_SETS",
    "Feedback",
    "FeedbackGiven",
    "ModelPrice",
    "PriceTable",
    "emit_batch_lane",
    "emit_feedback_metrics",
    "emit_outcome",
    "emit_pending_approvals",
    "emit_task_metrics",
]
