"""The estimate beside what local mode counted, per variant: ``agentrail plan --measure`` and the accuracy test.

The estimate of a measured batch is the call-count file's lines at the batch's own model calls per task (the one
figure that describes the workload, not its AWS use). Both sides are priced alike: the same prices, the same
model latency, and the tokens each side counted or fitted, on the requirements' model.

An estimate holds when the AWS cost per task is within 10% of the measured one, and so is every quantity AWS bills
by count (:data:`CHECKED`), or within one billing granule of it (half a read unit, one write unit, an item's 100
bytes). Two things are shown but not held to it: the functions' time in local mode (moto's and this machine's,
not AWS's; the model's wait, which is most of it in AWS, is the same given figure on both sides) and log bytes
(start-up lines come with every new execution environment). Tokens are the local model's: a demo agent's, not yours.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from agentrail_cli.plan.calls import RAW_COUNTS, CallCounts
from agentrail_cli.plan.cost import CostEstimate, estimate
from agentrail_cli.plan.measure import Batch
from agentrail_cli.plan.prices import PriceFile
from agentrail_cli.plan.quantities import task_usage
from agentrail_cli.plan.recommend import Recommendation
from agentrail_cli.plan.requirements import Requirements
from agentrail_cli.plan.usage import FixedMonthly
from agentrail_cli.plan.workloads import NO_MODEL_CALLS

__all__ = ["TOLERANCE", "VariantCheck", "check_variant", "render_checks", "workload_x"]

#: The largest difference between the estimate and the count that the planner accepts, on the priced cost.
TOLERANCE = 0.10
#: The quantities AWS bills by count, each with its billing granule: held to TOLERANCE or one granule.
CHECKED: dict[str, float] = {
    "model_calls": 0.0,
    "aws_calls": 0.0,
    "lambda_requests": 0.0,
    "api_requests": 0.0,
    "websocket_messages": 0.0,
    "dynamodb_read_units": 0.5,
    "dynamodb_write_units": 1.0,
    "dynamodb_stored_bytes": 100.0,
    "sqs_requests": 0.0,
    "sqs_fifo_requests": 0.0,
    "sqs_messages": 0.0,
    "eventbridge_events": 0.0,
    "sfn_transitions": 0.0,
}


@dataclass(frozen=True)
class VariantCheck:
    """One variant's estimate and measurement, per task."""

    variant: str
    tasks: int
    estimated: dict[str, float]
    measured: dict[str, float]
    estimated_cost: CostEstimate
    measured_cost: CostEstimate

    @property
    def difference(self) -> float:
        """(estimate - measured) / measured of the whole cost per task (AWS and tokens)."""
        measured = self.measured_cost.usd_per_task
        return (self.estimated_cost.usd_per_task - measured) / measured if measured else 0.0

    @property
    def aws_difference(self) -> float:
        """The same, of the AWS part alone."""
        measured = self.measured_cost.aws_usd_per_task
        return (self.estimated_cost.aws_usd_per_task - measured) / measured if measured else 0.0

    @property
    def off(self) -> list[str]:
        """The checked quantities whose estimate is off by more than 10% and more than one granule."""
        wrong = []
        for name, granule in CHECKED.items():
            e, m = self.estimated.get(name, 0.0), self.measured.get(name, 0.0)
            if abs(e - m) > max(TOLERANCE * abs(m), granule) + 1e-9:
                wrong.append(name)
        return wrong

    @property
    def within(self) -> bool:
        """The AWS cost per task within 10%, and every checked quantity within 10% or one granule."""
        return abs(self.aws_difference) <= TOLERANCE and not self.off

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: the raw counts of both sides, the priced costs and the differences."""
        return {
            "variant": self.variant,
            "tasks": self.tasks,
            "estimated": self.estimated,
            "measured": self.measured,
            "estimated_usd_per_task": self.estimated_cost.usd_per_task,
            "measured_usd_per_task": self.measured_cost.usd_per_task,
            "estimated_aws_usd_per_task": self.estimated_cost.aws_usd_per_task,
            "measured_aws_usd_per_task": self.measured_cost.aws_usd_per_task,
            "difference": self.difference,
            "aws_difference": self.aws_difference,
            "off": self.off,
            "within": self.within,
        }


def workload_x(counts: CallCounts, variant: str, measured: dict[str, float]) -> float:
    """What describes a measured batch's workload, per task: its model calls, or its subtasks (zero for no model)."""
    regressor = counts.variant(variant).regressor
    return 0.0 if variant in NO_MODEL_CALLS else measured.get(regressor, 0.0)


def check_variant(counts: CallCounts, batch: Batch, r: Requirements, rec: Recommendation, prices: PriceFile) -> VariantCheck:
    """Estimate ``batch``'s variant at its measured model calls, and price both sides alike."""
    measured = batch.per_task()
    estimated = counts.variant(batch.variant).at(workload_x(counts, batch.variant, measured))
    single = replace(
        rec, variant=batch.variant, components=((batch.variant, 1.0),), settings=replace(rec.settings, streaming=False)
    )

    def priced(raw: dict[str, float]) -> CostEstimate:
        usage = task_usage(raw, r, single, measured_tokens=True)
        return estimate(usage, FixedMonthly(), prices, r.region, r.tasks_per_month)

    return VariantCheck(batch.variant, batch.tasks, estimated, measured, priced(estimated), priced(measured))


def render_checks(checks: list[VariantCheck]) -> str:
    """The checks as the CLI prints them: each raw count, then the priced cost, estimate beside measurement."""
    out = []
    for check in checks:
        out.append(f"{check.variant}: {check.tasks} tasks measured in local mode (per task)")
        out.append(f"  {'':<62} {'estimate':>12} {'measured':>12} {'diff':>7}")
        for name, what in RAW_COUNTS.items():
            e, m = check.estimated.get(name, 0.0), check.measured.get(name, 0.0)
            if e == 0 and m == 0:
                continue
            diff = f"{(e - m) / m:+.0%}" if m else "-"
            out.append(f"  {what[:62]:<62} {e:>12.4g} {m:>12.4g} {diff:>7}")
        e_cost, m_cost = check.estimated_cost, check.measured_cost
        out.append(
            f"  {'AWS cost per 1,000 tasks (USD)':<62} {e_cost.aws_usd_per_task * 1000:>12.4f} {m_cost.aws_usd_per_task * 1000:>12.4f} {check.aws_difference:>+7.1%}"
        )
        out.append(
            f"  {'whole cost per 1,000 tasks, tokens included (USD)':<62} {e_cost.usd_per_task * 1000:>12.4f} {m_cost.usd_per_task * 1000:>12.4f} {check.difference:>+7.1%}"
        )
        if check.within:
            out.append(f"  the estimate holds: AWS cost and every billed count within {TOLERANCE:.0%} (or one billing granule)")
        else:
            off = ", ".join(check.off) or "the AWS cost"
            out.append(f"  the estimate does NOT hold: {off} off by more than {TOLERANCE:.0%}")
    return "\n".join(out) + "\n"
