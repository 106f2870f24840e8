"""CloudWatch metrics (EMF, through Powertools): agent runs, task outcomes, approvals waiting, and user feedback.

Every record is written at once (one EMF line) with bounded dimension sets (:data:`DIMENSION_SETS`) and the agent
version as a property (``agent_version``), never a dimension, so series don't grow with every release:

- a run: ``InputTokens``, ``OutputTokens``, ``CostUSD``, ``Steps``, ``StepLatency`` (one value per model call),
  ``TaskLatency`` and ``Tasks_<status>``, under ``[service]`` and ``[service, agent, model]``; with prompt caching,
  ``InputTokens`` is the input neither read from nor written to the cache, and a run that used the cache adds
  ``CacheReadTokens`` and ``CacheWriteTokens``;
- a task that failed or an approval rejected: ``Tasks_failed`` / ``Tasks_rejected``, under the same sets;
- tool calls: ``ToolCalls`` under ``[service, agent, tool, outcome]``. A tool's success rate is
  ``ToolCalls{outcome=success} / sum of ToolCalls{outcome in ENDED_TOOL_OUTCOMES}`` (``pending_approval`` is not an
  end: the call is counted again once decided);
- approvals waiting: ``ApprovalsPending`` and ``OldestPendingApprovalAgeSeconds`` under ``[service]``;
- feedback: ``FeedbackScore`` or ``Feedback_up`` / ``Feedback_down`` under ``[service, agent]``;
- the response cache of a stateless agent: ``ResponseCache_hit`` or ``ResponseCache_miss`` per lookup;
- guardrails: ``GuardBlocks_<stage>`` and ``GuardRedactions_<stage>`` (stage ``input``, ``tool_result`` or
  ``output``) with a run's record, and ``GuardBlocks_input`` alone for a message refused before any run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from enum import Enum
from typing import Literal, Protocol

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from agentrail_runtime.metering.feedback import Feedback
from agentrail_runtime.models.base import Usage

#: The EMF property (metadata, not a dimension) that carries the agent version.
AGENT_VERSION_PROPERTY = "agent_version"
#: Outcomes a task or an approval reaches outside the agent loop's own statuses.
TASK_FAILED = "failed"
APPROVAL_REJECTED = "rejected"
#: Tool-call outcomes that end a call; a tool's success rate is ``success`` over these.
ENDED_TOOL_OUTCOMES = ("success", "error", "invalid_arguments", "unknown_tool", "rejected", "outcome_unknown")
#: Every dimension set an agent metric is emitted under (a unit test keeps this the exact, bounded list).
DIMENSION_SETS = (
    ("service",),
    ("service", "agent"),
    ("service", "agent", "model"),
    ("service", "agent", "tool", "outcome"),
)


class MeteredCall(Protocol):
    """One tool call, as metered: which tool, and how it ended."""

    @property
    def tool(self) -> str: ...

    @property
    def outcome(self) -> str: ...


class MeteredGuardEvent(Protocol):
    """A guard that blocked or redacted something during a run."""

    @property
    def stage(self) -> str: ...

    @property
    def action(self) -> str: ...


class MeteredRun(Protocol):
    """What metering reads of a finished run (the agent loop's ``AgentResult`` is one)."""

    @property
    def model(self) -> str: ...

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

    @property
    def step_latencies_ms(self) -> Sequence[float]: ...

    @property
    def guard_events(self) -> Sequence[MeteredGuardEvent]: ...


def _record(metrics: Metrics, agent_version: str | None, **dimensions: str | None) -> EphemeralMetrics:
    """One EMF record in ``metrics``' namespace: ``[service]`` plus ``[service, *dimensions]`` when all are known."""
    service = metrics.service or "agentrail"
    record = EphemeralMetrics(namespace=metrics.namespace, service=service)
    if dimensions and all(dimensions.values()):
        record.add_dimensions(service=service, **{k: str(v) for k, v in dimensions.items()})
    if agent_version:
        record.add_metadata(key=AGENT_VERSION_PROPERTY, value=agent_version)
    return record


def emit_task_metrics(
    metrics: Metrics,
    result: MeteredRun,
    *,
    agent_name: str | None = None,
    agent_version: str | None = None,
    task_latency_ms: float | None = None,
) -> None:
    """Emit one finished run (an ``AgentResult``) at once: tokens, cost, steps, the latency of each model call, the
    run's (or task's) wall time, its outcome, and one line per tool and outcome.

    Parameters
    ----------
    metrics:
        The function's metrics: their namespace and ``service`` are used.
    agent_name, agent_version:
        The ``agent`` dimension, and the ``agent_version`` property.
    task_latency_ms:
        Wall time of the run, or of the whole task for an asynchronous one. Default: not emitted.
    """
    record = _record(metrics, agent_version, agent=agent_name, model=result.model)
    record.add_metric(name="InputTokens", unit=MetricUnit.Count, value=result.usage.input_tokens)
    record.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=result.usage.output_tokens)
    if result.usage.cache_read_tokens or result.usage.cache_write_tokens:
        record.add_metric(name="CacheReadTokens", unit=MetricUnit.Count, value=result.usage.cache_read_tokens)
        record.add_metric(name="CacheWriteTokens", unit=MetricUnit.Count, value=result.usage.cache_write_tokens)
    record.add_metric(name="Steps", unit=MetricUnit.Count, value=result.steps)
    record.add_metric(name=f"Tasks_{result.status.value}", unit=MetricUnit.Count, value=1)
    if result.cost_usd is not None:
        record.add_metric(name="CostUSD", unit=MetricUnit.NoUnit, value=result.cost_usd)
    for latency in result.step_latencies_ms:
        record.add_metric(name="StepLatency", unit=MetricUnit.Milliseconds, value=latency)
    if task_latency_ms is not None:
        record.add_metric(name="TaskLatency", unit=MetricUnit.Milliseconds, value=task_latency_ms)
    guarded = Counter((event.stage, event.action) for event in result.guard_events)
    for (stage, action), count in sorted(guarded.items()):
        name = f"GuardBlocks_{stage}" if action == "block" else f"GuardRedactions_{stage}"
        record.add_metric(name=name, unit=MetricUnit.Count, value=count)
    record.flush_metrics()
    counts = Counter((call.tool, call.outcome) for call in result.tool_calls)
    for (tool_name, outcome), count in sorted(counts.items()):
        line = EphemeralMetrics(namespace=metrics.namespace)
        line.add_dimension(name="service", value=metrics.service or "agentrail")
        if agent_name:
            line.add_dimension(name="agent", value=agent_name)
        line.add_dimension(name="tool", value=tool_name)
        line.add_dimension(name="outcome", value=outcome)
        if agent_version:
            line.add_metadata(key=AGENT_VERSION_PROPERTY, value=agent_version)
        line.add_metric(name="ToolCalls", unit=MetricUnit.Count, value=count)
        line.flush_metrics()


def emit_step_latencies(
    metrics: Metrics, result: MeteredRun, *, agent_name: str | None = None, agent_version: str | None = None
) -> None:
    """Emit only ``StepLatency`` (one value per model call of this invocation) for a slice of a run that goes on in
    another invocation (a long task's workflow step); its totals are emitted once, when it ends."""
    if not result.step_latencies_ms:
        return
    record = _record(metrics, agent_version, agent=agent_name, model=result.model)
    for latency in result.step_latencies_ms:
        record.add_metric(name="StepLatency", unit=MetricUnit.Milliseconds, value=latency)
    record.flush_metrics()


def emit_outcome(
    metrics: Metrics, outcome: str, *, agent_name: str | None, model: str | None, agent_version: str | None = None
) -> None:
    """Emit ``Tasks_<outcome>`` (``failed``: a task whose run raised until it was marked failed, or whose workflow
    failed; ``rejected``: an approval rejected, by a person or by its timeout) under the run's dimension sets."""
    record = _record(metrics, agent_version, agent=agent_name, model=model)
    record.add_metric(name=f"Tasks_{outcome}", unit=MetricUnit.Count, value=1)
    record.flush_metrics()


def emit_cache_lookup(
    metrics: Metrics, outcome: Literal["hit", "miss"], *, agent_name: str, model: str, agent_version: str | None = None
) -> None:
    """Emit ``ResponseCache_hit`` or ``ResponseCache_miss`` for a request a response cache looked up, under the run's
    dimension sets: a hit rate per agent and model."""
    record = _record(metrics, agent_version, agent=agent_name, model=model)
    record.add_metric(name=f"ResponseCache_{outcome}", unit=MetricUnit.Count, value=1)
    record.flush_metrics()


def emit_guard_block(
    metrics: Metrics, stage: str, *, agent_name: str | None, model: str | None, agent_version: str | None = None
) -> None:
    """Emit ``GuardBlocks_<stage>`` for a text a guard blocked outside a finished run (a user message refused with
    400 before anything ran), under the run's dimension sets."""
    record = _record(metrics, agent_version, agent=agent_name, model=model)
    record.add_metric(name=f"GuardBlocks_{stage}", unit=MetricUnit.Count, value=1)
    record.flush_metrics()


def emit_pending_approvals(metrics: Metrics, *, count: int, oldest_age_seconds: float) -> None:
    """Emit how many approvals wait (``ApprovalsPending``) and the age of the oldest (``OldestPendingApprovalAgeSeconds``,
    0 when none waits), under ``[service]``: the periodic emitter's one record."""
    record = _record(metrics, None)
    record.add_metric(name="ApprovalsPending", unit=MetricUnit.Count, value=count)
    record.add_metric(name="OldestPendingApprovalAgeSeconds", unit=MetricUnit.Seconds, value=oldest_age_seconds)
    record.flush_metrics()


def emit_batch_lane(metrics: Metrics, *, waiting: int, oldest_age_seconds: float, jobs_open: int) -> None:
    """Emit how many batch-lane tasks wait for a job (``BatchTasksWaiting``), the age of the oldest
    (``OldestBatchTaskAgeSeconds``, 0 when none waits) and the jobs not collected yet (``BatchJobsOpen``), under
    ``[service]``: the lane's one record per tick."""
    record = _record(metrics, None)
    record.add_metric(name="BatchTasksWaiting", unit=MetricUnit.Count, value=waiting)
    record.add_metric(name="OldestBatchTaskAgeSeconds", unit=MetricUnit.Seconds, value=oldest_age_seconds)
    record.add_metric(name="BatchJobsOpen", unit=MetricUnit.Count, value=jobs_open)
    record.flush_metrics()


def emit_feedback_metrics(
    metrics: Metrics, feedback: Feedback, *, agent_name: str | None = None, agent_version: str | None = None
) -> None:
    """Emit one feedback at once (one EMF line): ``FeedbackScore`` (the 1-5 score) or ``Feedback_up``/``Feedback_down``.

    Dimensions are ``service``, and ``agent`` when known, so the series stay bounded; the comment is never emitted.
    """
    if feedback.score is not None:
        name, unit, value = "FeedbackScore", MetricUnit.NoUnit, float(feedback.score)
    else:
        name, unit, value = f"Feedback_{feedback.thumbs}", MetricUnit.Count, 1.0
    line = EphemeralMetrics(namespace=metrics.namespace)
    line.add_dimension(name="service", value=metrics.service or "agentrail")
    if agent_name:
        line.add_dimension(name="agent", value=agent_name)
    if agent_version:
        line.add_metadata(key=AGENT_VERSION_PROPERTY, value=agent_version)
    line.add_metric(name=name, unit=unit, value=value)
    line.flush_metrics()
