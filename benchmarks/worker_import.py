"""Worker init: a fresh process imports the task worker's handler, against a bare Powertools batch handler.

The task worker serves no HTTP, so its cold start must not pay for the HTTP
layer (Powertools' REST resolver and OpenAPI models): this figure shows what
its init costs on top of the least an SQS consumer imports. Baseline: the
same in a fresh process importing ``baselines/powertools_batch_handler.py``
(Logger, Tracer, Metrics, a BatchProcessor and a boto3 DynamoDB client).
Runs alternate B F, F B, ... so a drift over the run weighs on both sides
alike. Target: ratio <= 2.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.cold_start import extra_imports_table, import_time_table
from benchmarks.lambda_process import ChildRun, RunnerError, alternating_sides, handler_environment, run_runner
from benchmarks.report import Figure, Result, Target, median

__all__ = ["BENCHMARK"]

WORKER_HANDLER = "agentrail_handlers.task_worker.app:handler"
BATCH_BASELINE_HANDLER = "benchmarks.baselines.powertools_batch_handler:handler"
BASELINE = "bare Powertools batch handler, fresh process (benchmarks/baselines/powertools_batch_handler.py)"
TARGET = Target(on="ratio", op="<=", limit=2.0)
#: What the AsyncAgent construct sets for the worker, as far as its settings validate at import (no AWS call is made).
WORKER_SETTINGS = {
    "AGENT_TASK_TABLE": "agentrail-bench-tasks",
    "AGENT_TASK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/agentrail-bench-tasks",
    "AGENT_TASK_IDEMPOTENCY_TABLE": "agentrail-bench-idempotency",
    "BASELINE_TABLE": "agentrail-bench-baseline",
}


def _import_ms(run: ChildRun) -> float:
    if run.report["event_handler_modules"]:
        raise RunnerError(f"the handler loaded {run.report['event_handler_modules']} aws_lambda_powertools.event_handler modules")
    return (run.report["imported_ns"] - run.report["started_ns"]) / 1e6


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Time both handlers' imports in fresh processes; see the module docstring."""
    repetitions = repetitions or 15
    report_path = context.workdir / "handler_import.json"
    sides = {"framework": WORKER_HANDLER, "baseline": BATCH_BASELINE_HANDLER}

    def runner(flags: tuple[str, ...] = ()) -> Callable[[str], ChildRun]:
        env = handler_environment(context.workdir / "pycache") | WORKER_SETTINGS

        def imported(side: str) -> ChildRun:
            return run_runner("handler_import.py", [sides[side]], env=env, report_path=report_path, python_flags=flags)

        return imported

    timed = runner()
    # One discarded run per side fills the bytecode cache and the OS page cache.
    for side in sides:
        _import_ms(timed(side))
    samples = alternating_sides(lambda side: _import_ms(timed(side)), repetitions, context.progress, "worker import")
    profiled = runner(("-X", "importtime"))
    ours, theirs = profiled("framework"), profiled("baseline")

    return Figure(
        key="worker_import",
        title="Worker init: fresh process imports the task worker handler",
        results=[
            Result(
                name="task worker handler import (init), no HTTP layer",
                value=median(samples["framework"]),
                unit="ms",
                baseline=BASELINE,
                baseline_value=median(samples["baseline"]),
                target=TARGET,
                details={
                    "samples": [round(v, 3) for v in samples["framework"]],
                    "baseline_samples": [round(v, 3) for v in samples["baseline"]],
                },
            )
        ],
        notes=[
            f"Median of {repetitions} fresh processes per side, alternating baseline/framework; one discarded "
            "warm-up run per side before; bytecode cached (PYTHONPYCACHEPREFIX) for both sides.",
            "Script start to handler imported: settings validated, the task service, its DynamoDB client and the "
            "idempotency persistence layer built, as at a Lambda cold start; no AWS call is made.",
            "Each run also checks that no aws_lambda_powertools.event_handler module was loaded.",
        ],
        tables=[
            import_time_table(ours.stderr, handler="the task worker handler"),
            extra_imports_table(ours.stderr, theirs.stderr, handler="the task worker handler"),
        ],
    )


BENCHMARK = Benchmark(
    key="worker_import",
    title="Worker init",
    run=run,
    repetitions=15,
    quick_repetitions=5,
)
