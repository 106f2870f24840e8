"""Warm per-request time: the stateless handler and the baseline handler, invoked N times each in one process.

The framework overhead is ours minus the baseline. With the local model, "ours" includes the agent loop (three
model steps and two tool calls for the invoke event), which is what a request to agentrail costs on top of a
hand-written Powertools endpoint. The demo agent runs with features of its own on: the built-in guards, its agent
metrics, and prompt caching (which the local model simulates, doing the accounting Bedrock does on its side). The
same process also serves the handler without each of them, and without all three: the base overhead. Targets: the
base overhead < 1 ms at the median, and every overhead < 3 ms at p95; the whole overhead's median and each
feature's increment are reported.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import BASELINE_HANDLER, FRAMEWORK_HANDLER, INVOKE_EVENT, run_in_workdir
from benchmarks.report import Figure, Result, Target, median, percentile, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "hand-written Powertools handler, same process (benchmarks/baselines/powertools_handler.py)"
BASE_TARGET = Target(on="value", op="<", limit=1.0)
P95_TARGET = Target(on="value", op="<", limit=3.0)
BLOCK = 50
#: The demo agent's features, each reported as what it adds to a request (``runners/warm_requests.py`` switches them).
FEATURES = {
    "agent_metrics": "agent metrics (one EMF record per run, a line per tool and outcome)",
    "guards": "built-in guards (input, tool results, output)",
    "prompt_cache": "prompt caching, as the local model simulates it",
}


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Measure warm requests of both handlers in one process; see the module docstring."""
    count = repetitions or 2000
    warmup = max(20, min(200, count // 10))
    context.progress(f"warm: {count} invocations per handler and variant after {warmup} warm-up invocations")
    child = run_in_workdir(
        context.workdir,
        "warm_requests.py",
        [
            f"framework={FRAMEWORK_HANDLER}",
            f"baseline={BASELINE_HANDLER}",
            f"base=~{','.join(FEATURES)}",
            *(f"without_{feature}=~{feature}" for feature in FEATURES),
            str(INVOKE_EVENT),
            str(count),
            str(warmup),
            str(BLOCK),
        ],
        timeout=900,
    )
    samples = {name: [ns / 1e6 for ns in values] for name, values in child.report["samples_ns"].items()}
    ours, base, bare = samples["framework"], samples["baseline"], samples["base"]
    ours_median, base_median, bare_median = median(ours), median(base), median(bare)
    ours_p95, base_p95, bare_p95 = percentile(ours, 95), percentile(base, 95), percentile(bare, 95)
    spread = {
        "framework_p05_p50_p95_p99_ms": percentiles(ours, (5, 50, 95, 99), digits=4),
        "baseline_p05_p50_p95_p99_ms": percentiles(base, (5, 50, 95, 99), digits=4),
        "base_p05_p50_p95_p99_ms": percentiles(bare, (5, 50, 95, 99), digits=4),
    }
    increments = [
        Result(
            f"  increment of {label} (with - without), median",
            ours_median - median(samples[f"without_{feature}"]),
            "ms",
            f"the same handler without {label}, same process",
            median(samples[f"without_{feature}"]),
        )
        for feature, label in FEATURES.items()
    ]
    return Figure(
        key="warm",
        title="Warm request: POST /invoke in an initialized process",
        results=[
            Result("warm request, median", ours_median, "ms", BASELINE, base_median, details=spread),
            Result("warm request, p95", ours_p95, "ms", BASELINE, base_p95),
            Result("framework overhead (ours - baseline), median", ours_median - base_median, "ms", BASELINE, base_median),
            Result("framework overhead (ours - baseline), p95", ours_p95 - base_p95, "ms", BASELINE, base_p95, P95_TARGET),
            Result(
                "base overhead (without the agent's guards, metrics and prompt caching - baseline), median",
                bare_median - base_median,
                "ms",
                BASELINE,
                base_median,
                BASE_TARGET,
            ),
            Result(
                "base overhead (without the agent's guards, metrics and prompt caching - baseline), p95",
                bare_p95 - base_p95,
                "ms",
                BASELINE,
                base_p95,
                P95_TARGET,
            ),
            *increments,
        ],
        notes=[
            f"{count} timed invocations per handler and variant after {warmup} warm-up each, in blocks of {BLOCK} "
            "alternating A B ... B A; every invocation gets a fresh copy of the event; logs go to /dev/null.",
            "Overhead rows: the value is ours minus the baseline, their ratio is that difference relative to "
            "the baseline's own time; the target applies to the difference.",
            "Base: the same handler and request with the demo agent's guards off, its agent metrics a no-op and the "
            "local model's simulated prompt cache off; the agent loop, its logs, validation and the API stay. "
            "Increments: the whole handler minus the handler without that one feature, medians, same process.",
        ],
    )


BENCHMARK = Benchmark(
    key="warm",
    title="Warm request",
    run=run,
    repetitions=2000,
    quick_repetitions=300,
)
