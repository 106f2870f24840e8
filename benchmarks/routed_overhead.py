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
target on time: the ratio says what routing through queues, with limits,
idempotency, spend and status, costs on top of the agents' own work. Against
moto in process every AWS request costs botocore and moto CPU time, not network
time.

AWS calls (issue 20), each feature on its own budget: a routed request makes at
most 8 calls besides its Powertools idempotency records, which cost 2 writes
(in progress, then completed) per idempotent handler, the router and the
specialist. The parts below say which handler makes which call and why; the
calls are asserted exactly, as ``call_budgets.py`` asks of every figure that
counts calls.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.call_budgets import IDEMPOTENCY, ROUTED_PARTS, budget_results, budget_rows, total
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Table, Target, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "Agent.run of the router definition, then of the chosen specialist's, same process (no queues, table or handlers)"
BLOCK = 10
HANDLERS = ("router", "specialist", "orchestrator")

IDEMPOTENT_HANDLERS = 2
#: Issue 20: at most 8 calls besides the idempotency records.
ROUTED_LIMIT = Target(on="value", op="<=", limit=8)


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
    calls, idempotency = child.report["aws_calls"], child.report["idempotency_calls"]
    per_request = {operation: n / count for operation, n in calls.items()}
    records = sum(idempotency.values()) / count
    rows = [(operation, f"{n / count:g}", f"{idempotency.get(operation, 0) / count:g}") for operation, n in sorted(calls.items())]
    by_handler = child.report["calls_by_handler"]
    handler_rows = [
        (handler, operation, f"{n / count:g}")
        for handler in HANDLERS
        for key, n in sorted(by_handler.items())
        if (operation := key.removeprefix(f"{handler} ")) != key
    ]
    times = {IDEMPOTENCY.part: IDEMPOTENT_HANDLERS}
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
            Result(
                "AWS calls per routed request, besides the idempotency records",
                sum(per_request.values()) - records,
                "calls",
                BASELINE,
                0.0,
                ROUTED_LIMIT,
            ),
            Result(
                "  idempotency record writes (router and specialist, 2 each)",
                records,
                "calls",
                BASELINE,
                0.0,
                Target(on="value", op="==", limit=IDEMPOTENCY.count * IDEMPOTENT_HANDLERS),
            ),
            *budget_results("routed request", per_request, total(IDEMPOTENCY, *ROUTED_PARTS, times=times), baseline=BASELINE),
        ],
        tables=[
            Table(
                "AWS calls per routed request, inside the three handlers (moto in process)",
                ("Call", "Per request", "of which idempotency records"),
                rows,
            ),
            Table("The same calls by handler", ("Handler", "Call", "Per request"), handler_rows),
            Table(
                "Call budget of a routed request (exact)",
                ("Part", "Calls", "Per request", "Why"),
                budget_rows((IDEMPOTENCY, *ROUTED_PARTS), times={IDEMPOTENCY.part: str(IDEMPOTENT_HANDLERS)}),
            ),
        ],
        notes=[
            f"{count} requests per side after {warmup} warm-up, in blocks of {BLOCK} alternating A B B A; "
            f"final task statuses {child.report['task_statuses']}.",
            "The submit (task record and task message) is the API's work and is not timed. The ratio column is ours "
            "over the baseline; the baseline makes no AWS call, so its AWS figures are 0 and have no ratio.",
            "No run of the demo team calls a tool with side effects, so no run checkpoint is written; none is read "
            "either: a run's first checkpoint write finds an earlier attempt's (TaskService.run_agent).",
        ],
    )


BENCHMARK = Benchmark(
    key="routed_overhead",
    title="Routed request overhead",
    run=run,
    repetitions=300,
    quick_repetitions=30,
)
