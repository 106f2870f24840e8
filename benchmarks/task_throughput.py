"""Async tasks: throughput of the local worker path and the framework's work per task against a bare batch handler.

One process (``runners/task_batches.py``) with moto in process: tasks are
submitted (record + SQS message), then received in batches of 10, handed to the
task worker's Lambda handler as Lambda's SQS event, and deleted, as Lambda's
poller would. The worker runs each task with the local model (3 model steps, 2
tool calls), under Powertools idempotency, with status transitions, spend, the
result and a ``Task Finished`` event. The baseline is a bare Powertools batch
handler (``baselines/powertools_batch_handler.py``) over the same records that
reads the task id and writes one DynamoDB item. The ratio says what one task
costs on top of the least a queue consumer does (target: at least 0.75); the
task's AWS calls are asserted exactly, as a base path and the checkpoint's
increment per side-effecting tool call (``call_budgets.py``). Per-task time is
also reported without the time inside AWS calls, which against moto in process
is botocore and moto CPU time, not network latency.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.call_budgets import (
    IDEMPOTENCY,
    SIDE_EFFECT_CHECKPOINT,
    TASK_EVENT,
    TASK_WRITES,
    budget_results,
    budget_rows,
    total,
)
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Table, Target, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "bare Powertools BatchProcessor handler, same records, one PutItem per record (benchmarks/baselines/powertools_batch_handler.py)"
BATCH = 10
#: The issue's target. Against moto in process, where each call costs a few ms of this process's CPU, the five calls
#: a task needs (its budget) against the baseline's one bound the ratio far below it: the gap is kept visible.
THROUGHPUT = Target(on="ratio", op=">=", limit=0.75)


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
    base_path = (IDEMPOTENCY, TASK_WRITES, TASK_EVENT)
    per_task = {op: n / tasks["framework"] for op, n in calls["framework"].items()}
    side_effect = child.report["side_effect"]
    per_side_effect_task = {op: n / side_effect["tasks"] for op, n in side_effect["calls"].items()}
    increment = {
        op: per_side_effect_task.get(op, 0) - per_task.get(op, 0)
        for op in set(per_side_effect_task) | set(per_task)
        if per_side_effect_task.get(op, 0) != per_task.get(op, 0)
    }
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
                THROUGHPUT,
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
            *budget_results(
                "task worker, base path (read-only tools)",
                per_task,
                total(*base_path),
                baseline=BASELINE,
                baseline_calls=calls_per_task["baseline"],
            ),
            *budget_results(
                "checkpoint increment, one side-effecting tool call", increment, total(SIDE_EFFECT_CHECKPOINT), baseline=BASELINE
            ),
        ],
        tables=[
            Table("AWS calls per task (moto in process)", ("Call", "Task worker", "Baseline"), rows),
            Table(
                "Call budget of a task (exact; benchmarks/call_budgets.py)",
                ("Part", "Calls", "Per task", "Why"),
                budget_rows((*base_path, SIDE_EFFECT_CHECKPOINT), times={SIDE_EFFECT_CHECKPOINT.part: "per call"}),
            ),
        ],
        notes=[
            f"{count} tasks per side after {warmup} warm-up tasks, batches of {BATCH} alternating A B B A; "
            f"final task statuses {child.report['task_statuses']}.",
            f"Checkpoint increment: {side_effect['tasks']} more tasks, '{side_effect['message']}' (one issue_refund call, "
            "side effects, under the approval limit), each alone in a batch; the calls per such task minus the calls per "
            "timed task (whose tools are read-only). Each refunded exactly once.",
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
