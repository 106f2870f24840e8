"""Warm per-request time: the stateless handler and the baseline handler, invoked N times each in one process.

The framework overhead is ours minus the baseline at the median; target: < 2 ms.
With the local model, "ours" includes the agent loop (two model steps and two
tool calls for the invoke event), which is what a request to agentrail costs
on top of a hand-written Powertools endpoint.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import BASELINE_HANDLER, FRAMEWORK_HANDLER, INVOKE_EVENT, run_in_workdir
from benchmarks.report import Figure, Result, Target, median, percentile, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "hand-written Powertools handler, same process (benchmarks/baselines/powertools_handler.py)"
OVERHEAD_TARGET = Target(on="value", op="<", limit=2.0)
BLOCK = 50


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Measure warm requests of both handlers in one process; see the module docstring."""
    count = repetitions or 2000
    warmup = max(20, min(200, count // 10))
    context.progress(f"warm: {count} invocations per handler after {warmup} warm-up invocations")
    child = run_in_workdir(
        context.workdir,
        "warm_requests.py",
        [
            f"framework={FRAMEWORK_HANDLER}",
            f"baseline={BASELINE_HANDLER}",
            str(INVOKE_EVENT),
            str(count),
            str(warmup),
            str(BLOCK),
        ],
        timeout=900,
    )
    ours = [ns / 1e6 for ns in child.report["samples_ns"]["framework"]]
    base = [ns / 1e6 for ns in child.report["samples_ns"]["baseline"]]
    ours_median, base_median = median(ours), median(base)
    ours_p95, base_p95 = percentile(ours, 95), percentile(base, 95)
    spread = {
        "framework_p05_p50_p95_p99_ms": percentiles(ours, (5, 50, 95, 99), digits=4),
        "baseline_p05_p50_p95_p99_ms": percentiles(base, (5, 50, 95, 99), digits=4),
    }
    return Figure(
        key="warm",
        title="Warm request: POST /invoke in an initialized process",
        results=[
            Result("warm request, median", ours_median, "ms", BASELINE, base_median, details=spread),
            Result("warm request, p95", ours_p95, "ms", BASELINE, base_p95),
            Result(
                "framework overhead (ours - baseline), median",
                ours_median - base_median,
                "ms",
                BASELINE,
                base_median,
                OVERHEAD_TARGET,
            ),
            Result("framework overhead (ours - baseline), p95", ours_p95 - base_p95, "ms", BASELINE, base_p95),
        ],
        notes=[
            f"{count} timed invocations per handler after {warmup} warm-up each, in blocks of {BLOCK} "
            "alternating A B B A; every invocation gets a fresh copy of the event; logs go to /dev/null.",
            "Overhead rows: the value is ours minus the baseline, their ratio is that difference relative to "
            "the baseline's own time; the target applies to the difference.",
        ],
    )


BENCHMARK = Benchmark(
    key="warm",
    title="Warm request",
    run=run,
    repetitions=2000,
    quick_repetitions=300,
)
