"""Async tasks: throughput of the local worker path and the framework's work per task against a bare batch handler.

One process (``runners/task_batches.py``) with moto in process: tasks are
submitted (record + SQS message), then received in batches of 10, handed to the
task worker's Lambda handler as Lambda's SQS event, and deleted, as Lambda's
poller would. The worker runs each task with the local model (3 model steps, 2
tool calls), under Powertools idempotency, with status transitions, spend, the
result and a ``Task Finished`` event. The baseline is a bare Powertools batch
handler (``baselines/powertools_batch_handler.py``) over the same records that
reads the task id and writes one DynamoDB item. No target: the ratio says what
one task costs on top of the least a queue consumer does. Per-task time is
also reported without the time inside AWS calls, which against moto in process
is botocore and moto CPU time, not network latency.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Table, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "bare Powertools BatchProcessor handler, same records, one PutItem per record (benchmarks/baselines/powertools_batch_handler.py)"
BATCH = 10


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Run both consumers over the same number of tasks, alternating batches; see the module docstring."""
    count = repetitions or 1000
    warmup = max(BATCH, min(100, count // 10))
    context.progress(f"task_throughput: {count} tasks per side in batches of {BATCH} after {warmup} warm-up")
    child = run_in_workdir(context.workdir, "task_batches.py", [str(count), str(BATCH), str(warmup)], timeout=1800)
    timed, calls = child.report["timed"], child.report["calls"]

    def per_task_ms(side: str, key: str) -> list[float]:
        return [ns / records / 1e6 for ns, records in zip(timed[side][key], timed[side]["records"], strict=True)]

    def tasks_per_second(side: str, key: str) -> float:
        return round(sum(timed[side]["records"]) / (sum(timed[side][key]) / 1e9), 1)

    ours, base = per_task_ms("framework", "handler_ns"), per_task_ms("baseline", "handler_ns")
    ours_aws, base_aws = per_task_ms("framework", "aws_ns"), per_task_ms("baseline", "aws_ns")
    ours_own = [total - inside for total, inside in zip(ours, ours_aws, strict=True)]
    base_own = [total - inside for total, inside in zip(base, base_aws, strict=True)]
    tasks = {side: sum(timed[side]["records"]) for side in timed}
    calls_per_task = {side: sum(counts.values()) / tasks[side] for side, counts in calls.items()}
    operations = sorted(set(calls["framework"]) | set(calls["baseline"]))
    rows = [
        (op, f"{calls['framework'].get(op, 0) / tasks['framework']:g}", f"{calls['baseline'].get(op, 0) / tasks['baseline']:g}")
        for op in operations
    ]
    return Figure(
        key="task_throughput",
        title="Async tasks: local worker throughput and work per task",
        results=[
            Result(
                "tasks per second, queue -> worker handler -> table",
                tasks_per_second("framework", "path_ns"),
                "tasks/s",
                BASELINE,
                tasks_per_second("baseline", "path_ns"),
            ),
            Result(
                "tasks per second, worker handler alone",
                tasks_per_second("framework", "handler_ns"),
                "tasks/s",
                BASELINE,
                tasks_per_second("baseline", "handler_ns"),
            ),
            Result(
                "handler time per task, median over batches",
                median(ours),
                "ms",
                BASELINE,
                median(base),
                details={
                    "framework_p05_p50_p95_ms": percentiles(ours, (5, 50, 95)),
                    "baseline_p05_p50_p95_ms": percentiles(base, (5, 50, 95)),
                },
            ),
            Result(
                "framework work per task (ours - baseline), median", median(ours) - median(base), "ms", BASELINE, median(base)
            ),
            Result("  of which inside AWS calls (botocore + moto), median", median(ours_aws), "ms", BASELINE, median(base_aws)),
            Result("handler time per task without AWS calls, median", median(ours_own), "ms", BASELINE, median(base_own)),
            Result("AWS calls per task", calls_per_task["framework"], "calls", BASELINE, calls_per_task["baseline"]),
        ],
        tables=[Table("AWS calls per task (moto in process)", ("Call", "Task worker", "Baseline"), rows)],
        notes=[
            f"{count} tasks per side after {warmup} warm-up tasks, batches of {BATCH} alternating A B B A; "
            f"final task statuses {child.report['task_statuses']}.",
            "The ratio column is ours over the baseline. Moto runs in process, so each AWS call costs botocore and moto "
            "CPU time in the same process; the worker's calls (idempotency record, status, spend, result, event) weigh "
            "more here than its agent run does.",
        ],
    )


BENCHMARK = Benchmark(
    key="task_throughput",
    title="Async task throughput",
    run=run,
    repetitions=1000,
    quick_repetitions=100,
)
