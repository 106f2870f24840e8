"""CloudWatch metrics (EMF, through Powertools): one finished agent task, and user feedback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from enum import Enum
from typing import Protocol

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from agentrail_runtime.metering.feedback import Feedback
from agentrail_runtime.models.base import Usage


class MeteredCall(Protocol):
    """One tool call, as metered: which tool, and how it ended."""

    @property
    def tool(self) -> str: ...

    @property
    def outcome(self) -> str: ...


class MeteredRun(Protocol):
    """What metering reads of a finished run (the agent loop's ``AgentResult`` is one)."""

    @property
    def usage(self) -> Usage: ...

    @property
    def steps(self) -> int: ...

    @property
    def status(self) -> Enum: ...

    @property
    def cost_usd(self) -> float | None: ...

    @property
    def tool_calls(self) -> Sequence[MeteredCall]: ...


def emit_task_metrics(metrics: Metrics, result: MeteredRun, *, agent_name: str | None = None) -> None:
    """Add token, cost, step and tool-call metrics for ``result`` (an ``AgentResult``).

    Task totals go into the function's ``metrics`` (flushed by ``log_metrics``).
    Tool calls are emitted at once, one EMF line per tool and outcome, because
    they carry their own dimensions.
    """
    metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=result.usage.input_tokens)
    metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=result.usage.output_tokens)
    metrics.add_metric(name="Steps", unit=MetricUnit.Count, value=result.steps)
    metrics.add_metric(name=f"Tasks_{result.status.value}", unit=MetricUnit.Count, value=1)
    if result.cost_usd is not None:
        metrics.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=result.cost_usd)
    counts = Counter((call.tool, call.outcome) for call in result.tool_calls)
    for (tool_name, outcome), count in sorted(counts.items()):
        with single_metric(
            name="ToolCalls",
            unit=MetricUnit.Count,
            value=count,
            namespace=metrics.namespace,
            default_dimensions={**metrics.default_dimensions},
        ) as metric:
            metric.add_dimension(name="service", value=metrics.service or "agentrail")
            if agent_name:
                metric.add_dimension(name="agent", value=agent_name)
            metric.add_dimension(name="tool", value=tool_name)
            metric.add_dimension(name="outcome", value=outcome)


def emit_feedback_metrics(metrics: Metrics, feedback: Feedback, *, agent_name: str | None = None) -> None:
    """Emit one feedback at once (one EMF line): ``FeedbackScore`` (the 1-5 score) or ``Feedback_up``/``Feedback_down``.

    Dimensions are the ones every agent metric has (``service``, and ``agent`` when known), so the series stay bounded;
    the comment is never emitted.
    """
    if feedback.score is not None:
        name, unit, value = "FeedbackScore", MetricUnit.NoUnit, float(feedback.score)
    else:
        name, unit, value = f"Feedback_{feedback.thumbs}", MetricUnit.Count, 1.0
    with single_metric(
        name=name, unit=unit, value=value, namespace=metrics.namespace, default_dimensions={**metrics.default_dimensions}
    ) as metric:
        metric.add_dimension(name="service", value=metrics.service or "agentrail")
        if agent_name:
            metric.add_dimension(name="agent", value=agent_name)
