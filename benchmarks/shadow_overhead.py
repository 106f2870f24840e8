"""Shadow deployment: what the live side (sample, then copy to the shadow queue before returning) adds to a request.

One process (``runners/shadow_copies.py``) with moto in process: the stateless demo agent's ``POST /invoke`` (three
model calls on the local model) without shadow, with 10% of requests sampled, and with every request sampled,
alternating in blocks. The issue's target (under 1 ms median added) is checked at 10% (the median request is not
sampled: the figure is the hash and the check), and on the sampled requests at 100% without the SendMessage call
itself: against moto in process that call is botocore's and moto's CPU; in a Region it is one HTTPS round trip to SQS
(a few ms, one attempt, 1 s timeouts), paid by the sampled requests only.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.call_budgets import SHADOW_COPY, budget_results, per_request, total
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Target, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "the same request without shadow, same process"
UNDER_1_MS = Target(on="value", op="<", limit=1.0)
BLOCK = 25


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Time requests with shadow at 0%, 10% and 100%; see the module docstring."""
    count = repetitions or 1000
    warmup = max(10, min(50, count // 10))
    context.progress(f"shadow_overhead: {count} requests per side after {warmup} warm-up, blocks of {BLOCK}")
    child = run_in_workdir(context.workdir, "shadow_copies.py", [str(count), str(warmup), str(BLOCK)], timeout=1800)
    report = child.report
    ms = {name: [ns / 1e6 for ns in values] for name, values in report["samples_ns"].items()}
    sqs_ms = {name: [ns / 1e6 for ns in values] for name, values in report["sqs_ns"].items()}
    base = median(ms["plain"])
    own_100 = [total - inside for total, inside in zip(ms["shadow_100"], sqs_ms["shadow_100"], strict=True)]
    calls = per_request(report["calls"], report["samples_ns"])
    results = [
        *budget_results("a sampled request (100%)", calls["shadow_100"], total(SHADOW_COPY), baseline=BASELINE),
        *budget_results("a request without shadow", calls["plain"], {}, baseline=BASELINE),
        Result(
            "request with shadow at 10%, median",
            median(ms["shadow_10"]),
            "ms",
            BASELINE,
            base,
            details={
                "p05_p50_p95_p99_ms": percentiles(ms["shadow_10"], (5, 50, 95, 99)),
                "baseline": percentiles(ms["plain"], (5, 50, 95, 99)),
            },
        ),
        Result("added per request at 10%, median", median(ms["shadow_10"]) - base, "ms", BASELINE, base, UNDER_1_MS),
        Result(
            "added per sampled request (100%) without the SendMessage call, median",
            median(own_100) - base,
            "ms",
            BASELINE,
            base,
            UNDER_1_MS,
        ),
        Result(
            "added per sampled request (100%) as measured (incl. moto SQS in process), median",
            median(ms["shadow_100"]) - base,
            "ms",
            BASELINE,
            base,
            details={"p05_p50_p95_p99_ms": percentiles(ms["shadow_100"], (5, 50, 95, 99))},
        ),
    ]
    return Figure(
        key="shadow_overhead",
        title="Shadow deployment: latency the live side adds to a request",
        results=results,
        notes=[
            f"Message '{report['message']}' (3 model steps, 2 tools), local model; {report['sent']} messages reached the "
            "shadow queue. Ratios are the request with shadow over the same request without.",
            f"Timing: {count} requests per side after {warmup} warm-up, blocks of {BLOCK} alternating A B C, C B A.",
            "In a Region a sampled request also waits for one SendMessage round trip (a few ms); set percent to what "
            "that costs you, or capture from a table stream instead (not built).",
        ],
    )


BENCHMARK = Benchmark(
    key="shadow_overhead",
    title="Shadow: latency added to live requests",
    run=run,
    repetitions=1000,
    quick_repetitions=100,
)
