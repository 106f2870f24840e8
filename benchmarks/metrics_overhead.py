"""Metrics overhead: what emitting a run's agent metrics adds to a warm request.

The stateless handler answers the invoke event (local model: three model steps, two tool calls) in one process,
alternately with its agent metrics emitted (one EMF record with tokens, cost, steps, step and task latency and the
outcome, plus one line per tool and outcome) and with the emitter replaced by a no-op. The overhead is the difference
of the medians; its ratio is relative to the request without metrics.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import INVOKE_EVENT, run_in_workdir
from benchmarks.report import Figure, Result, Target, median, percentile, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "the same handler and request with emit_task_metrics a no-op, same process"
#: One EMF record and a line per tool: well under a millisecond on any machine we run on.
OVERHEAD_TARGET = Target(on="value", op="<", limit=1.0)
BLOCK = 50


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Measure warm requests with and without metrics emission; see the module docstring."""
    count = repetitions or 2000
    warmup = max(20, min(200, count // 10))
    context.progress(f"metrics_overhead: {count} invocations per side after {warmup} warm-up invocations")
    child = run_in_workdir(
        context.workdir,
        "metered_requests.py",
        [str(INVOKE_EVENT), str(count), str(warmup), str(BLOCK)],
        timeout=900,
    )
    ours = [ns / 1e6 for ns in child.report["samples_ns"]["metered"]]
    base = [ns / 1e6 for ns in child.report["samples_ns"]["unmetered"]]
    ours_median, base_median = median(ours), median(base)
    spread = {
        "metered_p05_p50_p95_p99_ms": percentiles(ours, (5, 50, 95, 99), digits=4),
        "unmetered_p05_p50_p95_p99_ms": percentiles(base, (5, 50, 95, 99), digits=4),
    }
    return Figure(
        key="metrics_overhead",
        title="Metrics overhead: warm POST /invoke with and without agent metrics",
        results=[
            Result("warm request with metrics, median", ours_median, "ms", BASELINE, base_median, details=spread),
            Result(
                "metrics overhead per request (with - without), median",
                ours_median - base_median,
                "ms",
                BASELINE,
                base_median,
                OVERHEAD_TARGET,
            ),
            Result(
                "metrics overhead per request (with - without), p95",
                percentile(ours, 95) - percentile(base, 95),
                "ms",
                BASELINE,
                percentile(base, 95),
            ),
        ],
        notes=[
            f"{count} timed invocations per side after {warmup} warm-up each, in blocks of {BLOCK} alternating "
            "A B B A; EMF lines and logs go to /dev/null.",
            "Overhead rows: the value is the difference, their ratio is that difference relative to the request "
            "without metrics; the target applies to the difference.",
        ],
    )


BENCHMARK = Benchmark(
    key="metrics_overhead",
    title="Metrics overhead",
    run=run,
    repetitions=2000,
    quick_repetitions=300,
)
