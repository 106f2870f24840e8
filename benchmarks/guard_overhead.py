"""Guard overhead: what the built-in guards cost per message.

One process (``runners/guard_messages.py``) runs distinct, seeded 2 KB messages through one pipeline of the
built-in guards (prompt-injection heuristics, PII redaction, a deny-list of three topics) and through each guard
alone, alternating with the baseline: serializing the same message as a model request (``Message.user(text)
.model_dump_json()``), which the agent loop does with every message anyway.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Target, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "Message.user(text).model_dump_json() of the same 2 KB message, same process"
#: Issue 15: the built-in guards under 1 ms at the median on a 2 KB message.
TARGET = Target(on="value", op="<", limit=1.0)
BLOCK = 50


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Measure the guards and the baseline; see the module docstring."""
    count = repetitions or 2000
    warmup = max(20, min(200, count // 10))
    context.progress(f"guard_overhead: {count} messages per side after {warmup} warm-up messages")
    child = run_in_workdir(context.workdir, "guard_messages.py", [str(count), str(warmup), str(BLOCK)], timeout=900)
    samples = {name: [ns / 1e6 for ns in values] for name, values in child.report["samples_ns"].items()}
    base = median(samples["baseline"])
    spread = {f"{name}_p05_p50_p95_p99_ms": percentiles(values, (5, 50, 95, 99), digits=4) for name, values in samples.items()}
    results = [
        Result(
            "built-in guards (injection, PII, deny-list) per 2 KB message, median",
            median(samples["guards"]),
            "ms",
            BASELINE,
            base,
            TARGET,
            details={**spread, "message_bytes_min_max": child.report["bytes"], "actions": child.report["actions"]},
        )
    ]
    results += [
        Result(f"{name} alone per 2 KB message, median", median(samples[name]), "ms", BASELINE, base)
        for name in ("prompt_injection", "pii", "deny_list")
    ]
    return Figure(
        key="guard_overhead",
        title="Guard overhead: the built-in guards per 2 KB message",
        results=results,
        notes=[
            f"{count} distinct seeded messages per side after {warmup} warm-up messages, in blocks of {BLOCK} "
            "alternating A B B A.",
            "The target applies to the value (milliseconds per message); the ratio is against the baseline.",
        ],
    )


BENCHMARK = Benchmark(
    key="guard_overhead",
    title="Guard overhead",
    run=run,
    repetitions=2000,
    quick_repetitions=300,
)
