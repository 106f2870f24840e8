"""The same workload's compute on three platforms, and the traffic at which an alternative becomes cheaper than ours.

Only compute differs between the platforms: ours is Lambda (requests, GB-seconds, provisioned concurrency) and API
Gateway; AgentCore Runtime bills active vCPU-seconds and the session's memory; always-on containers are Fargate
tasks behind an Application Load Balancer. DynamoDB, queues, workflows, logs and model tokens are the same
whichever platform runs the agent, so they are left out of the comparison.

Every cost is piecewise linear in traffic (Fargate steps up by one container at a time), so the crossovers are
solved exactly on each linear piece, not read off a grid.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentrail_cli.plan.cost import CostEstimate
from agentrail_cli.plan.errors import PlanInputError
from agentrail_cli.plan.prices import Architecture, PlatformPrices, PriceFile, region_prices

__all__ = [
    "COMPARED_ITEMS",
    "HOURS_PER_MONTH",
    "PLATFORM_LABELS",
    "Comparison",
    "ComputeProfile",
    "Crossover",
    "CrossoverPoint",
    "OursCompute",
    "Platform",
    "compare",
    "crossovers",
    "monthly_cost",
    "ours_compute",
]

#: Hours in a billing month, as AWS's pricing examples count them.
HOURS_PER_MONTH = 730.0
#: The estimate's lines that are our compute: what the alternatives replace.
COMPARED_ITEMS = frozenset(
    {
        "lambda_requests",
        "lambda_gb_seconds",
        "rest_api_requests",
        "http_api_requests",
        "websocket_messages",
        "websocket_connection_minutes",
        "provisioned_gb_seconds",
    }
)
_ALB_CONNECTIONS_PER_SECOND_PER_LCU = 25.0
_ALB_ACTIVE_CONNECTIONS_PER_LCU = 3000.0
_ALB_KB_PER_HOUR_PER_LCU = 1_000_000.0  # 1 GB processed per hour


class Platform(StrEnum):
    """A compute platform the comparison prices."""

    OURS = "ours"
    AGENTCORE = "agentcore"
    FARGATE = "fargate"


PLATFORM_LABELS: dict[Platform, str] = {
    Platform.OURS: "agentrail (Lambda + API Gateway)",
    Platform.AGENTCORE: "AgentCore Runtime",
    Platform.FARGATE: "Fargate + ALB, always on",
}


class ComputeProfile(BaseModel):
    """How one task runs, for the platforms that bill by time rather than by request.

    Parameters
    ----------
    wall_seconds_per_task:
        Wall-clock seconds one task holds a session or a container slot, model waits included.
    cpu_active_share:
        Share of the wall time the CPU works (the rest waits on the model and tools). Default: 0.3.
    memory_gb, vcpus:
        One AgentCore session's memory and vCPUs; also each container's, unless ``container_*`` are given.
        Default: 1 GB, 1 vCPU.
    concurrency_per_container:
        Tasks one container serves at once. Default: 10.
    min_containers:
        Containers kept running at any traffic. Default: 2, one per Availability Zone.
    peak_to_average:
        Peak concurrency over the average that Little's law gives. Default: 3.
    agentcore_idle_seconds_per_task:
        Seconds a session stays alive, billed for its memory, after its last task. Default: 900, the runtime's
        default ``idleRuntimeSessionTimeout``; set 0 when the caller stops each session (``StopRuntimeSession``).
    alb_kb_per_task:
        Request and response bytes the load balancer processes per task. Default: 50 KB.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    wall_seconds_per_task: float = Field(gt=0)
    cpu_active_share: float = Field(default=0.3, ge=0, le=1)
    memory_gb: float = Field(default=1.0, gt=0)
    vcpus: float = Field(default=1.0, gt=0)
    concurrency_per_container: float = Field(default=10, gt=0)
    min_containers: int = Field(default=2, ge=1)
    peak_to_average: float = Field(default=3.0, ge=1)
    container_vcpus: float | None = Field(default=None, gt=0)
    container_memory_gb: float | None = Field(default=None, gt=0)
    fargate_architecture: Architecture = "arm64"
    agentcore_idle_seconds_per_task: float = Field(default=900.0, ge=0)
    alb_kb_per_task: float = Field(default=50.0, ge=0)


class OursCompute(BaseModel):
    """Our compute, taken from an estimate's lines: a cost per task and a fixed cost per month."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    usd_per_task: float = Field(ge=0)
    fixed_usd_per_month: float = Field(ge=0)
    items: list[str]


class CrossoverPoint(BaseModel):
    """A traffic at which the cheaper of ours and an alternative changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tasks_per_hour: float
    tasks_per_month: float
    alternative_cheaper: Literal["above", "below"]
    at_step: bool  # True when a container is added here: the costs jump past each other rather than meet
    ours_usd_per_month: float
    alternative_usd_per_month: float


class Crossover(BaseModel):
    """Where one alternative is cheaper than ours, in the compared traffic range."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    alternative: Platform
    status: Literal["crosses", "never", "always"]  # never/always: not cheaper / always cheaper in the whole range
    points: list[CrossoverPoint]
    summary: str


class Comparison(BaseModel):
    """Monthly compute cost per platform over a log-spaced traffic range, and the crossovers."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    region: str
    profile: ComputeProfile
    ours: OursCompute
    min_tasks_per_hour: float
    max_tasks_per_hour: float
    tasks_per_hour: list[float]
    usd_per_month: dict[Platform, list[float]]
    crossovers: list[Crossover]
    at_tasks_per_hour: float | None = None
    notes: list[str]

    @model_validator(mode="after")
    def _series_match(self) -> Comparison:
        if any(len(series) != len(self.tasks_per_hour) for series in self.usd_per_month.values()):
            raise ValueError("every platform needs one cost per traffic point")
        return self


def ours_compute(estimate: CostEstimate) -> OursCompute:
    """Our compute cost from an estimate: its Lambda and API Gateway lines (:data:`COMPARED_ITEMS`)."""
    lines = [line for line in estimate.lines if line.key in COMPARED_ITEMS]
    return OursCompute(
        usd_per_task=sum(line.usd_per_task for line in lines if line.kind == "per_task"),
        fixed_usd_per_month=sum(line.usd_per_month for line in lines if line.kind == "fixed"),
        items=[f"{line.service} {line.item}" for line in lines],
    )


def monthly_cost(
    platform: Platform | str,
    tasks_per_hour: float,
    *,
    estimate: CostEstimate,
    profile: ComputeProfile,
    prices: PriceFile,
    region: str,
    peak_concurrency: float | None = None,
) -> float:
    """USD per month of ``platform``'s compute at a steady ``tasks_per_hour`` (a month is 730 hours).

    Parameters
    ----------
    peak_concurrency:
        Tasks in flight at the peak, for Fargate's container count. Default: Little's law, tasks per second times
        ``wall_seconds_per_task``, times ``profile.peak_to_average``.

    Raises
    ------
    PlanInputError
        On an unknown platform or region, or a negative traffic.
    """
    if tasks_per_hour < 0:
        raise PlanInputError(f"tasks per hour must not be negative, not {tasks_per_hour!r}.")
    rates = _Rates.of(estimate, profile, region_prices(prices, region).platforms)
    platform = _platform(platform)
    if platform is Platform.FARGATE:
        containers = rates.containers(tasks_per_hour, peak_concurrency)
        return (
            containers * rates.container_usd_per_month
            + rates.alb_usd_per_month
            + rates.alb_usd_per_task * tasks_per_hour * HOURS_PER_MONTH
        )
    intercept, slope = rates.linear(platform)
    return intercept + slope * tasks_per_hour


def compare(
    estimate: CostEstimate,
    profile: ComputeProfile,
    prices: PriceFile,
    region: str,
    *,
    min_tasks_per_hour: float = 1.0,
    max_tasks_per_hour: float = 1_000_000.0,
    points_per_decade: int = 24,
    at_tasks_per_hour: float | None = None,
) -> Comparison:
    """Monthly compute cost of each platform over a log-spaced traffic range, with the exact crossovers.

    Raises
    ------
    PlanInputError
        On a bad range, an unknown region, or fewer than one point per decade.
    """
    _check_range(min_tasks_per_hour, max_tasks_per_hour)
    if points_per_decade < 1:
        raise PlanInputError(f"points per decade must be at least 1, not {points_per_decade}.")
    found = crossovers(
        estimate, profile, prices, region, min_tasks_per_hour=min_tasks_per_hour, max_tasks_per_hour=max_tasks_per_hour
    )
    decades = math.log10(max_tasks_per_hour / min_tasks_per_hour)
    count = max(2, math.ceil(decades * points_per_decade) + 1)
    grid = {min_tasks_per_hour * 10 ** (decades * index / (count - 1)) for index in range(count)}
    grid |= {point.tasks_per_hour for crossover in found for point in crossover.points}
    grid |= _visible_steps(
        _Rates.of(estimate, profile, region_prices(prices, region).platforms), min_tasks_per_hour, max_tasks_per_hour
    )
    if at_tasks_per_hour is not None and min_tasks_per_hour <= at_tasks_per_hour <= max_tasks_per_hour:
        grid.add(at_tasks_per_hour)
    traffic = sorted(min(max(value, min_tasks_per_hour), max_tasks_per_hour) for value in grid)
    series = {
        platform: [
            monthly_cost(platform, value, estimate=estimate, profile=profile, prices=prices, region=region) for value in traffic
        ]
        for platform in Platform
    }
    return Comparison(
        region=region,
        profile=profile,
        ours=ours_compute(estimate),
        min_tasks_per_hour=min_tasks_per_hour,
        max_tasks_per_hour=max_tasks_per_hour,
        tasks_per_hour=traffic,
        usd_per_month=series,
        crossovers=found,
        at_tasks_per_hour=at_tasks_per_hour,
        notes=_notes(profile),
    )


def crossovers(
    estimate: CostEstimate,
    profile: ComputeProfile,
    prices: PriceFile,
    region: str,
    *,
    min_tasks_per_hour: float = 1.0,
    max_tasks_per_hour: float = 1_000_000.0,
) -> list[Crossover]:
    """For each alternative, the traffic above or below which it is cheaper than ours, solved exactly.

    On each linear piece of the cost difference the root is solved in closed form; where Fargate adds a container
    the costs may jump past each other, and that traffic is a crossover ``at_step``.

    Raises
    ------
    PlanInputError
        On a bad range or an unknown region.
    """
    _check_range(min_tasks_per_hour, max_tasks_per_hour)
    rates = _Rates.of(estimate, profile, region_prices(prices, region).platforms)
    ours_intercept, ours_slope = rates.linear(Platform.OURS)
    result = []
    for alternative in (Platform.AGENTCORE, Platform.FARGATE):
        points: list[CrossoverPoint] = []
        previous = 0  # sign of (alternative - ours) just before the current traffic
        first_sign = 0
        for low, high, intercept, slope in rates.pieces(alternative, min_tasks_per_hour, max_tasks_per_hour):
            c0, c1 = intercept - ours_intercept, slope - ours_slope
            start, end = _sign(c0 + c1 * low), _sign(c0 + c1 * high)
            first_sign = first_sign or start or end
            if previous and start and start != previous:
                points.append(_point(low, start, True, ours_intercept, ours_slope, intercept, slope))
            previous = start or previous
            if previous and end and end != previous:
                root = -c0 / c1
                points.append(_point(root, end, False, ours_intercept, ours_slope, intercept, slope))
            previous = end or previous
        if points:
            status: Literal["crosses", "never", "always"] = "crosses"
        else:
            status = "always" if first_sign < 0 else "never"
        result.append(
            Crossover(
                alternative=alternative,
                status=status,
                points=points,
                summary=_summary(alternative, status, points, min_tasks_per_hour, max_tasks_per_hour),
            )
        )
    return result


class _Rates:
    """The prices of one comparison, reduced to intercepts and slopes per task per hour."""

    def __init__(self, ours: OursCompute, profile: ComputeProfile, platforms: PlatformPrices) -> None:
        self.profile = profile
        self.ours = ours
        wall = profile.wall_seconds_per_task
        billed_seconds = max(wall, platforms.agentcore_min_billed_seconds)
        memory_gb = max(profile.memory_gb, platforms.agentcore_min_memory_gb)
        self.agentcore_usd_per_task = (
            memory_gb * (billed_seconds + profile.agentcore_idle_seconds_per_task) / 3600 * platforms.agentcore_gb_hour
            + wall * profile.cpu_active_share * profile.vcpus / 3600 * platforms.agentcore_vcpu_hour
        )
        architecture = profile.fargate_architecture
        vcpus = profile.container_vcpus or profile.vcpus
        container_gb = profile.container_memory_gb or profile.memory_gb
        self.container_usd_per_month = (
            vcpus * platforms.fargate_vcpu_hour(architecture) + container_gb * platforms.fargate_gb_hour(architecture)
        ) * HOURS_PER_MONTH
        self.alb_usd_per_month = platforms.alb_hour * HOURS_PER_MONTH
        lcu_per_task_per_hour = max(
            1 / (3600 * _ALB_CONNECTIONS_PER_SECOND_PER_LCU),  # one new connection per task
            wall / (3600 * _ALB_ACTIVE_CONNECTIONS_PER_LCU),  # connections held for the task's wall time
            profile.alb_kb_per_task / _ALB_KB_PER_HOUR_PER_LCU,
        )
        self.alb_usd_per_task = lcu_per_task_per_hour * platforms.alb_lcu_hour
        # Little's law: tasks in flight at the peak = tasks per second x wall seconds x peak-to-average.
        self.tasks_per_hour_per_container = profile.concurrency_per_container * 3600 / (wall * profile.peak_to_average)

    @classmethod
    def of(cls, estimate: CostEstimate, profile: ComputeProfile, platforms: PlatformPrices) -> _Rates:
        return cls(ours_compute(estimate), profile, platforms)

    def linear(self, platform: Platform) -> tuple[float, float]:
        """(USD per month at zero traffic, USD per month per task per hour) of a platform without steps."""
        if platform is Platform.OURS:
            return self.ours.fixed_usd_per_month, self.ours.usd_per_task * HOURS_PER_MONTH
        if platform is Platform.AGENTCORE:
            return 0.0, self.agentcore_usd_per_task * HOURS_PER_MONTH
        raise ValueError(f"{platform} is not linear")

    def containers(self, tasks_per_hour: float, peak_concurrency: float | None = None) -> int:
        """Fargate tasks running: the minimum, or enough for the peak concurrency."""
        if peak_concurrency is None:
            needed = tasks_per_hour / self.tasks_per_hour_per_container
        else:
            needed = peak_concurrency / self.profile.concurrency_per_container
        return max(self.profile.min_containers, math.ceil(needed * (1 - 1e-12)))  # 2.0000000000001 is float noise, not 3

    def pieces(self, platform: Platform, low: float, high: float) -> list[tuple[float, float, float, float]]:
        """Linear pieces (from, to, intercept, slope) of a platform's monthly cost over [low, high]."""
        if platform is not Platform.FARGATE:
            return [(low, high, *self.linear(platform))]
        slope = self.alb_usd_per_task * HOURS_PER_MONTH
        pieces: list[tuple[float, float, float, float]] = []
        step = self.tasks_per_hour_per_container
        containers = self.containers(low)
        start = low
        while start < high:
            end = min(high, containers * step)  # the last traffic this many containers serve
            if end > start or not pieces:
                pieces.append((start, max(end, start), containers * self.container_usd_per_month + self.alb_usd_per_month, slope))
            start = max(end, start)
            containers += 1
        return pieces


_MAX_DRAWN_STEPS = 60


def _visible_steps(rates: _Rates, low: float, high: float) -> set[float]:
    """Both sides of the first traffics where Fargate adds a container, so a line through the points shows the steps.

    Past the first few dozen, one more container is a small share of the total and the steps read as a line.
    """
    step = rates.tasks_per_hour_per_container
    first = max(rates.profile.min_containers, math.ceil(low / step))
    edges = [containers * step for containers in range(first, first + _MAX_DRAWN_STEPS) if low <= containers * step < high]
    return {value for edge in edges for value in (edge, edge * (1 + 1e-9))}


def _platform(platform: Platform | str) -> Platform:
    try:
        return Platform(platform)
    except ValueError:
        raise PlanInputError(f"unknown platform '{platform}'; use one of: {', '.join(Platform)}.") from None


def _check_range(low: float, high: float) -> None:
    if not 0 < low < high:
        raise PlanInputError(f"the traffic range must go from a positive number up to a larger one, not {low!r} to {high!r}.")


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def _point(
    tasks_per_hour: float,
    sign_after: int,
    at_step: bool,
    ours_intercept: float,
    ours_slope: float,
    intercept: float,
    slope: float,
) -> CrossoverPoint:
    return CrossoverPoint(
        tasks_per_hour=tasks_per_hour,
        tasks_per_month=tasks_per_hour * HOURS_PER_MONTH,
        alternative_cheaper="above" if sign_after < 0 else "below",
        at_step=at_step,
        ours_usd_per_month=ours_intercept + ours_slope * tasks_per_hour,
        alternative_usd_per_month=intercept + slope * tasks_per_hour,
    )


def _traffic(tasks_per_hour: float) -> str:
    return f"{tasks_per_hour:,.0f} tasks per hour ({tasks_per_hour * HOURS_PER_MONTH:,.0f} per month)"


def _summary(alternative: Platform, status: str, points: list[CrossoverPoint], low: float, high: float) -> str:
    name = PLATFORM_LABELS[alternative]
    span = f"between {low:,.0f} and {high:,.0f} tasks per hour"
    if status == "never":
        return f"{name} is never cheaper than ours {span}."
    if status == "always":
        return f"{name} is cheaper than ours everywhere {span}."
    first = points[0]
    said = f"{name} becomes cheaper than ours {first.alternative_cheaper} {_traffic(first.tasks_per_hour)}"
    if len(points) > 1:
        said += f", and the cheaper side changes {len(points) - 1} more time{'s' if len(points) > 2 else ''} up to {_traffic(points[-1].tasks_per_hour)}"
    return said + "."


def _notes(profile: ComputeProfile) -> list[str]:
    return [
        "Only compute is compared: ours is Lambda (requests, GB-seconds, provisioned concurrency) and API Gateway; "
        "DynamoDB, SQS, Step Functions, EventBridge, logs, traces, keys and model tokens cost the same on every platform and are left out.",
        "AgentCore Runtime bills per second (1-second minimum): vCPU only while the CPU works, memory (128 MB minimum) for the "
        f"session's whole life, here {profile.wall_seconds_per_task:g} s of work plus {profile.agentcore_idle_seconds_per_task:g} s "
        "idle before the session ends.",
        f"Fargate runs max({profile.min_containers}, ceil(peak concurrency / {profile.concurrency_per_container:g})) tasks all month "
        f"whatever the traffic; peak concurrency is tasks per second x {profile.wall_seconds_per_task:g} s x {profile.peak_to_average:g} "
        "(Little's law times the peak-to-average ratio). The ALB bills every hour plus LCUs estimated from new connections, "
        f"held connections and {profile.alb_kb_per_task:g} KB per task.",
        "No free tier, Savings Plan or Spot discount is applied to any platform.",
    ]
