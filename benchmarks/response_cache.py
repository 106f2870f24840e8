"""The response cache: a stateless agent's repeated question answered from DynamoDB, against a model call.

One process (``runners/cached_requests.py``) with moto in process: the demo's cacheable agent's ``POST /invoke``
(three model calls and two tools on the local model) without a cache (the baseline: the model call), answered from
the cache (a hit: the input guards, one GetItem, the response), and run with the cache (a miss: the lookup, the run
and one PutItem), alternating in blocks. The local model answers in well under a millisecond per step, so the hit's
ratio here is an upper bound: a real model's call takes hundreds of milliseconds to seconds, and the hit's cost is
the same one DynamoDB read (a few ms in a Region). The target is on the hit's own work (without the GetItem, which moto
in process makes a few ms of CPU): below a run of the agent even on the local model.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.call_budgets import RESPONSE_CACHE_LOOKUP, RESPONSE_CACHE_STORE, budget_results, per_request, total
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Target, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "the same kind of request without a cache (three local model calls), same process"
#: A hit's own work (guards, key, response) must cost less than running the agent, even on the local model, whose calls
#: are nearly free; the GetItem is timed apart (moto in process here, one round trip in a Region).
HIT_BELOW_A_RUN = Target(on="ratio", op="<", limit=1.0)
BLOCK = 25


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Time cache hits, misses and uncached requests; see the module docstring."""
    count = repetitions or 1000
    warmup = max(10, min(50, count // 10))
    context.progress(f"response_cache: {count} requests per side after {warmup} warm-up, blocks of {BLOCK}")
    child = run_in_workdir(context.workdir, "cached_requests.py", [str(count), str(warmup), str(BLOCK)], timeout=1800)
    report = child.report
    ms = {name: [ns / 1e6 for ns in values] for name, values in report["samples_ns"].items()}
    dynamodb_ms = {name: [ns / 1e6 for ns in values] for name, values in report["dynamodb_ns"].items()}
    base = median(ms["plain"])
    hit_own = [total - inside for total, inside in zip(ms["hit"], dynamodb_ms["hit"], strict=True)]
    calls = per_request(report["calls"], report["samples_ns"])
    results = [
        *budget_results("a hit", calls["hit"], total(RESPONSE_CACHE_LOOKUP), baseline=BASELINE),
        *budget_results("a miss", calls["miss"], total(RESPONSE_CACHE_LOOKUP, RESPONSE_CACHE_STORE), baseline=BASELINE),
        Result(
            "cache hit, median",
            median(ms["hit"]),
            "ms",
            BASELINE,
            base,
            details={
                "p05_p50_p95_p99_ms": percentiles(ms["hit"], (5, 50, 95, 99)),
                "baseline": percentiles(ms["plain"], (5, 50, 95, 99)),
            },
        ),
        Result("cache hit without the GetItem call, median", median(hit_own), "ms", BASELINE, base, HIT_BELOW_A_RUN),
        Result("the GetItem call of a hit (moto in process), median", median(dynamodb_ms["hit"]), "ms", BASELINE, base),
        Result(
            "cache miss (lookup, run, write), median",
            median(ms["miss"]),
            "ms",
            BASELINE,
            base,
            details={"p05_p50_p95_p99_ms": percentiles(ms["miss"], (5, 50, 95, 99))},
        ),
    ]
    return Figure(
        key="response_cache",
        title="Response cache: a hit against a model call",
        results=results,
        notes=[
            f"Message '{report['message']}' ({report['steps']} model steps, {report['tokens']} tokens when run), local "
            "model; a hit reports zero tokens. Ratios are over the same kind of request run without a cache.",
            f"Timing: {count} requests per side after {warmup} warm-up, blocks of {BLOCK} alternating A B C, C B A.",
            "DynamoDB is moto in process: a GetItem here is botocore's and moto's CPU; in a Region it is one round trip "
            "(a few ms), against a real model's hundreds of milliseconds or more per step.",
        ],
    )


BENCHMARK = Benchmark(
    key="response_cache",
    title="Response cache: hit path against a model call",
    run=run,
    repetitions=1000,
    quick_repetitions=100,
)
