"""Multi-agent routing: what one routed request costs through the framework against calling the same two agents directly.

One process (``runners/routed_requests.py``) with moto in process. Ours: the
router, specialist and orchestrator Lambda handlers, each fed the SQS batch of
one message received from its queue (task queue, the specialist's queue,
outcome queue) and the message deleted, as Lambda's poller would; on the way
the task is marked running, each agent's spend is added to it, the hand-off and
the outcome are sent, the task is finished and a ``Task Finished`` event put.
The baseline: ``Agent.run`` of the router definition (its hand-off tools) and of
the chosen specialist's definition, with no queue, table or handler. Both use
the local model on the same requests (one per demo specialist, in rotation). No
target: the ratio says what routing through queues, with limits, idempotency,
spend and status, costs on top of the agents' own work. Against moto in
process every AWS request costs botocore and moto CPU time, not network time.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Table, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "Agent.run of the router definition, then of the chosen specialist's, same process (no queues, table or handlers)"
BLOCK = 10


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Time routed requests through the three handlers and the same two agents called directly; see the module docstring."""
    count = repetitions or 300
    warmup = max(3, min(30, count // 10))
    context.progress(f"routed_overhead: {count} routed requests per side after {warmup} warm-up, blocks of {BLOCK}")
    child = run_in_workdir(context.workdir, "routed_requests.py", [str(count), str(warmup), str(BLOCK)], timeout=1800)
    timed = child.report["timed"]
    ours = [ns / 1e6 for ns in timed["framework"]["handler_ns"]]
    path = [ns / 1e6 for ns in timed["framework"]["path_ns"]]
    base = [ns / 1e6 for ns in timed["baseline"]["handler_ns"]]
    own = [
        (total - inside) / 1e6
        for total, inside in zip(timed["framework"]["handler_ns"], timed["framework"]["aws_ns"], strict=True)
    ]
    ours_median, base_median = median(ours), median(base)
    calls = child.report["aws_calls"]
    rows = [(operation, f"{n / count:g}") for operation, n in sorted(calls.items())]
    return Figure(
        key="routed_overhead",
        title="Multi-agent: routed request through router, specialist and orchestrator handlers",
        results=[
            Result(
                "routed request, three handlers, median",
                ours_median,
                "ms",
                BASELINE,
                base_median,
                details={
                    "framework_p05_p50_p95_ms": percentiles(ours, (5, 50, 95)),
                    "baseline_p05_p50_p95_ms": percentiles(base, (5, 50, 95)),
                },
            ),
            Result("routed request with the queue receives and deletes, median", median(path), "ms", BASELINE, base_median),
            Result("framework overhead (ours - baseline), median", ours_median - base_median, "ms", BASELINE, base_median),
            Result(
                "  of which inside AWS calls (botocore + moto), median",
                median([n / 1e6 for n in timed["framework"]["aws_ns"]]),
                "ms",
                BASELINE,
                0.0,
            ),
            Result("routed request without the time inside AWS calls, median", median(own), "ms", BASELINE, base_median),
            Result("AWS calls per routed request", sum(calls.values()) / count, "calls", BASELINE, 0.0),
        ],
        tables=[
            Table("AWS calls per routed request, inside the three handlers (moto in process)", ("Call", "Per request"), rows)
        ],
        notes=[
            f"{count} requests per side after {warmup} warm-up, in blocks of {BLOCK} alternating A B B A; "
            f"final task statuses {child.report['task_statuses']}.",
            "The submit (task record and task message) is the API's work and is not timed. The ratio column is ours "
            "over the baseline; the baseline makes no AWS call, so its AWS figures are 0 and have no ratio.",
        ],
    )


BENCHMARK = Benchmark(
    key="routed_overhead",
    title="Routed request overhead",
    run=run,
    repetitions=300,
    quick_repetitions=30,
)
