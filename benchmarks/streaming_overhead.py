"""Streaming overhead: what an event sink adds to a run, against the same run without one.

One process (``runners/streamed_runs.py``) runs the demo agent's request of the ``warm`` figure (three model calls,
two tool calls, the local model) with ``Agent.run`` and no sink (the model's ``converse``; no event is built),
alternating with the same run streamed to a sink that keeps the events (``on_event=list.append``), and to one that
dumps each event to JSON.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Target, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "the same Agent.run without an event sink (the model's converse), same process"
#: A regression guard: the events of a run (a dozen) cost a fraction of a millisecond.
TARGET = Target(on="value", op="<", limit=0.5)
BLOCK = 50


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Measure the streamed and the plain runs; see the module docstring."""
    count = repetitions or 2000
    warmup = max(20, min(200, count // 10))
    context.progress(f"streaming_overhead: {count} runs per side after {warmup} warm-up runs")
    child = run_in_workdir(context.workdir, "streamed_runs.py", [str(count), str(warmup), str(BLOCK)], timeout=900)
    samples = {name: [ns / 1e6 for ns in values] for name, values in child.report["samples_ns"].items()}
    base = median(samples["converse"])
    spread = {f"{name}_p05_p50_p95_p99_ms": percentiles(values, (5, 50, 95, 99), digits=4) for name, values in samples.items()}
    streamed, as_json = median(samples["streamed"]), median(samples["streamed_json"])
    return Figure(
        key="streaming_overhead",
        title="Streaming overhead: a run streamed to an event sink",
        results=[
            Result(
                "run streamed to a sink (events kept), median",
                streamed,
                "ms",
                BASELINE,
                base,
                details={**spread, "events": child.report["events"]},
            ),
            Result("run streamed to a sink that dumps each event to JSON, median", as_json, "ms", BASELINE, base),
            Result("added by streaming (streamed - converse), median", streamed - base, "ms", BASELINE, base, TARGET),
        ],
        notes=[
            f"{count} runs per side after {warmup} warm-up runs, in blocks of {BLOCK} alternating A B B A.",
            "The target applies to the added time (milliseconds per run).",
            "The local model streams word by word; a real provider's stream adds its own network reads, not measured here.",
        ],
    )


BENCHMARK = Benchmark(
    key="streaming_overhead",
    title="Streaming overhead",
    run=run,
    repetitions=2000,
    quick_repetitions=300,
)
