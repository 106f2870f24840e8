"""Token and cost metering: a price table and the metrics a task emits."""

from agentrail_runtime.metering.metrics import emit_task_metrics
from agentrail_runtime.metering.pricing import DEFAULT_PRICES, ModelPrice, PriceTable

__all__ = ["DEFAULT_PRICES", "ModelPrice", "PriceTable", "emit_task_metrics"]
