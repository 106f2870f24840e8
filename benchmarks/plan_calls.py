"""The planner's call counts: measured in local mode, written to the file ``agentrail plan`` reads, and checked.

One process (``runners/plan_calls.py``) synthesizes the app with every pattern, starts it in local mode with the
call meter, and runs each kind of request of each variant in its own batch (``repetitions`` tasks per kind): the
per-task counts of each batch are points, and each count's straight line in the model calls per task is fitted
through them. The lines, the templates' fixed-cost resources and a hash of the code that makes the calls are
written to ``cli/agentrail_cli/plan/data/call_counts.json`` (with ``--quick``, nothing is written).

Then each variant runs its *check mix* (other kinds in other proportions) and the estimate from the fresh lines
(at the mix's own model calls per task) is priced beside the count, both on the same prices and model
(``bedrock:amazon.nova-lite``, us-east-1): the figures are the difference of the AWS cost per task (target 10%) and
how many billed counts (calls, invocations, capacity units, messages, events, transitions) are off by more than
10% or one billing granule (target none); see ``agentrail_cli.plan.accuracy``.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import REPO_ROOT, Figure, Result, Table, Target

__all__ = ["BENCHMARK", "CALL_COUNTS_FILE"]

CALL_COUNTS_FILE = REPO_ROOT / "cli" / "agentrail_cli" / "plan" / "data" / "call_counts.json"
BASELINE = "what local mode counted on the check mix, same run"
WITHIN = Target(on="value", op="<=", limit=10.0)
NONE_OFF = Target(on="value", op="<=", limit=0.0)


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Calibrate, write the file (not with --quick), check; see the module docstring."""
    from agentrail_cli.plan.accuracy import check_variant
    from agentrail_cli.plan.calls import CallCounts
    from agentrail_cli.plan.measure import Batch
    from agentrail_cli.plan.prices import load_prices
    from agentrail_cli.plan.recommend import recommend
    from agentrail_cli.plan.requirements import requirements_from

    per_kind = repetitions or 6
    write = "-" if context.quick else str(CALL_COUNTS_FILE)
    context.progress(f"plan_calls: {per_kind} tasks per kind of every variant, in local mode with the call meter")
    child = run_in_workdir(
        context.workdir, "plan_calls.py", [str(per_kind), str(context.workdir / "plan-state"), write], timeout=3600
    )
    counts = CallCounts.model_validate(child.report["counts"])
    requirements = requirements_from({"model": "bedrock:amazon.nova-lite"})
    rec, prices = recommend(requirements), load_prices()
    results, rows = [], []
    for variant, check in child.report["checks"].items():
        batch = Batch(
            variant=variant,
            label="check mix",
            tasks=check["tasks"],
            totals={k: v * check["tasks"] for k, v in check["measured"].items()},
        )
        checked = check_variant(counts, batch, requirements, rec, prices)
        results.append(
            Result(
                f"{variant}: AWS cost per task, estimate against count",
                round(abs(checked.aws_difference) * 100, 2),
                "%",
                BASELINE,
                0.0,
                WITHIN,
                details={
                    "estimated_usd_per_1000": checked.estimated_cost.aws_usd_per_task * 1000,
                    "measured_usd_per_1000": checked.measured_cost.aws_usd_per_task * 1000,
                },
            )
        )
        results.append(
            Result(
                f"{variant}: billed counts off by more than 10% (or a granule)",
                float(len(checked.off)),
                "counts",
                BASELINE,
                0.0,
                NONE_OFF,
                details={"off": checked.off},
            )
        )
        measured = checked.measured
        rows.append(
            (
                variant,
                f"{measured.get('aws_calls', 0):.2f}",
                f"{measured.get('lambda_requests', 0):.2f}",
                f"{measured.get('dynamodb_write_units', 0):.2f}",
                f"{measured.get('sfn_transitions', 0):.1f}",
                f"{measured.get('model_calls', 0):.2f}",
                f"{checked.measured_cost.aws_usd_per_task * 1000:.4f}",
                f"{checked.aws_difference:+.1%}",
            )
        )
    return Figure(
        key="plan_calls",
        title="Planner: AWS use per task counted in local mode, and the estimate checked on another mix",
        results=results,
        tables=[
            Table(
                "Check mix, per task (measured)",
                (
                    "Variant",
                    "AWS calls",
                    "Lambda invocations",
                    "DynamoDB WRU",
                    "SFN transitions",
                    "Model calls",
                    "AWS USD per 1,000",
                    "Estimate vs count",
                ),
                rows,
            )
        ],
        notes=[
            f"Calibration: {per_kind} tasks per kind; {'the file was not written (--quick)' if context.quick else f'written to {CALL_COUNTS_FILE.relative_to(REPO_ROOT)}'} "
            f"with code hash {counts.code_hash[:19]}...",
            "The check mix has other kinds in other proportions than the calibration's batches; sessions run 6 turns instead of 4.",
        ],
    )


BENCHMARK = Benchmark(key="plan_calls", title="Planner call counts", run=run, repetitions=6, quick_repetitions=2)
