"""One whole plan: the recommendation, the itemized cost, the comparison with containers, and the chart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentrail_cli.plan.calls import CallCounts, code_hash
from agentrail_cli.plan.compare import Comparison, ComputeProfile, Platform, compare, monthly_cost
from agentrail_cli.plan.cost import CostEstimate, estimate
from agentrail_cli.plan.errors import PlanInputError
from agentrail_cli.plan.prices import PriceFile, model_price, region_prices
from agentrail_cli.plan.quantities import estimated_raw, fixed_monthly, tables_of, task_usage
from agentrail_cli.plan.recommend import Recommendation, recommend
from agentrail_cli.plan.requirements import Requirements, State

__all__ = ["Plan", "make_plan", "wall_seconds_per_task"]


@dataclass(frozen=True)
class Plan:
    """Everything ``agentrail plan`` prints."""

    requirements: Requirements
    recommendation: Recommendation
    cost: CostEstimate
    comparison: Comparison
    counts_fresh: bool
    counts_hash: str
    prices: PriceFile

    @property
    def over_budget(self) -> bool:
        budget = self.requirements.budget_usd_per_month
        return budget is not None and self.cost.usd_per_month > budget

    def compute_at_traffic(self) -> dict[Platform, float]:
        """Monthly compute cost of each platform at the requirements' own traffic (as the chart draws it)."""
        r = self.requirements
        return {
            platform: monthly_cost(
                platform,
                r.tasks_per_month / 730.0,
                estimate=self.cost,
                profile=self.comparison.profile,
                prices=self.prices,
                region=r.region,
            )
            for platform in Platform
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: every figure at full precision."""
        rec = self.recommendation
        return {
            "requirements": self.requirements.model_dump(mode="json"),
            "patterns": list(rec.patterns),
            "context": rec.context,
            "components": [{"variant": v, "per_task": n} for v, n in rec.components],
            "chosen": [d.__dict__ for d in rec.chosen],
            "rejected": [d.__dict__ for d in rec.rejected],
            "settings": rec.settings.__dict__,
            "warnings": rec.warnings,
            "app_py": rec.stanza(self.requirements),
            "cost": self.cost.model_dump(mode="json"),
            "comparison": self.comparison.model_dump(mode="json"),
            "compute_usd_per_month_at_traffic": {p.value: usd for p, usd in self.compute_at_traffic().items()},
            "call_counts": {"code_hash": self.counts_hash, "fresh": self.counts_fresh},
            "over_budget": self.over_budget,
        }


def wall_seconds_per_task(r: Requirements) -> float:
    """How long one task holds a session or a container slot: the task's duration (a session: each of its turns)."""
    return r.task_duration * (r.turns_per_session if r.state is State.SESSION else 1)


def make_plan(r: Requirements, *, prices: PriceFile, counts: CallCounts) -> Plan:
    """The plan for ``r``.

    Raises
    ------
    PlanInputError
        On an unknown region or model (one sentence), or a call-count file without a variant the plan needs.
    """
    region_prices(prices, r.region)
    price = model_price(prices, r.region, r.model)
    if r.prompt_caching and (price.cache_read_per_million is None or price.cache_write_per_million is None):
        raise PlanInputError(
            f"model '{r.model}' has no prompt-caching prices in {r.region}: set prompt_caching to false, or price it with --prices."
        )
    if r.batch_lane and (price.batch_input_per_million is None or price.batch_output_per_million is None):
        raise PlanInputError(
            f"model '{r.model}' has no batch price in {r.region}: set batch_lane to false, or price it with --prices."
        )
    rec = recommend(r)
    usage = task_usage(estimated_raw(counts, rec, r), r, rec, tables=tables_of(counts, rec))
    cost = estimate(usage, fixed_monthly(counts, rec), prices, r.region, r.tasks_per_month)
    tasks_per_hour = r.tasks_per_month / 730.0
    profile = ComputeProfile(wall_seconds_per_task=wall_seconds_per_task(r), memory_gb=rec.settings.memory_mb / 1024.0)
    comparison = compare(cost, profile, prices, r.region, at_tasks_per_hour=tasks_per_hour)
    current = code_hash()
    return Plan(r, rec, cost, comparison, counts_fresh=current == counts.code_hash, counts_hash=counts.code_hash, prices=prices)
