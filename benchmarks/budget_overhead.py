"""Daily budget checks: what they add to a request, and the DynamoDB calls they make around each model call.

One process (``runners/budget_checks.py``) with moto in process: the stateless demo agent's ``POST /invoke``
(three model calls) with a tenant and an agent budget, against the same request without budgets, alternating in
blocks. Calls are counted with botocore event hooks, not timed: a budget check makes exactly one DynamoDB call
before each model call (the reserve) and one after (the settle), its budget in ``call_budgets.py``. Against moto in process a call costs botocore's
and moto's CPU time, not DynamoDB's network latency (a few ms per call in a Region), so the time is also given
without the time inside the calls.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.call_budgets import BUDGET_CHECK_AFTER, BUDGET_CHECK_BEFORE
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Table, Target, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "the same request without budgets, same process"
BEFORE = Target(on="value", op="==", limit=BUDGET_CHECK_BEFORE.count)
AFTER = Target(on="value", op="==", limit=BUDGET_CHECK_AFTER.count)
BLOCK = 25


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Count the checks' DynamoDB calls and time requests with and without budgets; see the module docstring."""
    count = repetitions or 1000
    warmup = max(10, min(50, count // 10))
    context.progress(f"budget_overhead: {count} requests per side after {warmup} warm-up, blocks of {BLOCK}")
    child = run_in_workdir(context.workdir, "budget_checks.py", [str(count), str(warmup), str(BLOCK)], timeout=1800)
    report = child.report
    both, tenant = report["calls"]["tenant_and_agent"], report["calls"]["tenant_only"]
    ours = [ns / 1e6 for ns in report["samples_ns"]["budgets"]]
    base = [ns / 1e6 for ns in report["samples_ns"]["plain"]]
    inside = [ns / 1e6 for ns in report["dynamo_ns"]["budgets"]]
    own = [total - spent for total, spent in zip(ours, inside, strict=True)]
    ours_median, base_median = median(ours), median(base)
    results = [
        Result("DynamoDB calls before a model call (reserve), most", both["max_before"], "calls", BASELINE, 0.0, BEFORE),
        Result("DynamoDB calls after a model call (settle), most", both["max_after"], "calls", BASELINE, 0.0, AFTER),
        Result(
            f"DynamoDB calls per request ({both['model_calls']} model calls)",
            both["dynamodb_calls"],
            "calls",
            BASELINE,
            float(report["calls"]["none"]["dynamodb_calls"]),
            # Exact: the checks' increment is one reserve and one settle per model call, nothing else.
            Target(on="value", op="==", limit=(BUDGET_CHECK_BEFORE.count + BUDGET_CHECK_AFTER.count) * both["model_calls"]),
        ),
        Result(
            "request with budget checks, median",
            ours_median,
            "ms",
            BASELINE,
            base_median,
            details={"p05_p50_p95_p99_ms": percentiles(ours, (5, 50, 95, 99)), "baseline": percentiles(base, (5, 50, 95, 99))},
        ),
        Result(
            "per-request overhead as measured (incl. moto DynamoDB), median",
            ours_median - base_median,
            "ms",
            BASELINE,
            base_median,
        ),
        Result("per-request overhead without the DynamoDB calls, median", median(own) - base_median, "ms", BASELINE, base_median),
    ]
    rows = [
        (
            "tenant and agent",
            ", ".join(both["operations"]),
            str(both["max_before"]),
            str(both["max_after"]),
            str(both["dynamodb_calls"]),
        ),
        (
            "tenant only",
            ", ".join(tenant["operations"]),
            str(tenant["max_before"]),
            str(tenant["max_after"]),
            str(tenant["dynamodb_calls"]),
        ),
    ]
    return Figure(
        key="budget_overhead",
        title="Daily budget checks: DynamoDB calls per model call and per-request overhead",
        results=results,
        tables=[
            Table(
                "DynamoDB calls of one request, by budgets that apply",
                ("Budgets", "Operations", "Before", "After", "Total"),
                rows,
            )
        ],
        notes=[
            f"Message '{report['message']}' (3 model steps, 2 tools), local model; limits no request reaches, so every "
            "check reserves and settles. The ratio is the request with budgets over the same request without.",
            f"Timing: {count} requests per side after {warmup} warm-up, blocks of {BLOCK} alternating A B B A.",
        ],
    )


BENCHMARK = Benchmark(
    key="budget_overhead",
    title="Budget checks: calls and overhead",
    run=run,
    repetitions=1000,
    quick_repetitions=100,
)
