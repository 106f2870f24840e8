"""Token and cost metering: a price table, the metrics a task emits, and user feedback."""

from agentrail_runtime.metering.feedback import Feedback, FeedbackGiven
from agentrail_runtime.metering.metrics import emit_feedback_metrics, emit_task_metrics
from agentrail_runtime.metering.pricing import DEFAULT_PRICES, ModelPrice, PriceTable

__all__ = [
    "DEFAULT_PRICES",
    "Feedback",
    "FeedbackGiven",
    "ModelPrice",
    "PriceTable",
    "emit_feedback_metrics",
    "emit_task_metrics",
]
