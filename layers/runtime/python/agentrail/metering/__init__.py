"""Token and cost metering: a price table and the metrics a task emits."""

from agentrail.metering.metrics import emit_task_metrics
from agentrail.metering.pricing import DEFAULT_PRICES, ModelPrice, PriceTable

__all__ = ["DEFAULT_PRICES", "ModelPrice", "PriceTable", "emit_task_metrics"]
