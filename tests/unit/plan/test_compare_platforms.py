"""Ours against AgentCore Runtime and always-on Fargate: monthly compute cost by traffic, and exact crossovers."""

from __future__ import annotations

import math

import pytest

from agentrail_cli.plan.compare import HOURS_PER_MONTH, ComputeProfile, Platform, compare, crossovers, monthly_cost, ours_compute
from agentrail_cli.plan.cost import CostEstimate, estimate
from agentrail_cli.plan.errors import PlanInputError
from agentrail_cli.plan.prices import PriceFile
from agentrail_cli.plan.usage import FixedMonthly, TaskUsage
from tests.unit.plan.plan_helpers import assert_one_sentence, counted

REGION = "us-east-1"
#: 0.5 vCPU and 1 GB per container, 20 tasks at once, tasks of 10 s: one container per 2,400 tasks per hour at a
#: peak-to-average of 3 (Little's law: 2,400/3,600 tasks/s x 10 s x 3 = 20 in flight).
PROFILE = ComputeProfile(wall_seconds_per_task=10, vcpus=0.5, memory_gb=1, concurrency_per_container=20, alb_kb_per_task=10)
CONTAINER_USD_PER_MONTH = (0.5 * 0.03238 + 1 * 0.00356) * HOURS_PER_MONTH
ALB_USD_PER_MONTH = 0.0225 * HOURS_PER_MONTH
ALB_USD_PER_TASK = 0.008 / (3600 * 25)  # one new connection per task is the largest LCU dimension here


def lambda_estimate(prices: PriceFile, gb_seconds: float, *, with_the_rest: bool = True) -> CostEstimate:
    quantities = {"lambda_requests": counted(1), "lambda_gb_seconds": counted(gb_seconds), "rest_api_requests": counted(1)}
    if with_the_rest:
        quantities |= {"dynamodb_write_units": counted(4), "sqs_requests": counted(3)}
    usage = TaskUsage(pattern="stateless", unit="request", quantities=quantities)
    return estimate(usage, FixedMonthly(quantities={"kms_keys": counted(1)}), prices, REGION, tasks_per_month=100_000)


def cost(
    platform: Platform, tasks_per_hour: float, result: CostEstimate, prices: PriceFile, profile: ComputeProfile = PROFILE
) -> float:
    return monthly_cost(platform, tasks_per_hour, estimate=result, profile=profile, prices=prices, region=REGION)


def test_only_lambda_and_api_gateway_lines_are_our_compute(shipped_prices: PriceFile) -> None:
    ours = ours_compute(lambda_estimate(shipped_prices, gb_seconds=10))
    assert ours.usd_per_task == pytest.approx(0.20 / 1e6 + 10 * 0.0000133334 + 3.50 / 1e6, rel=1e-12)
    assert ours.fixed_usd_per_month == 0
    assert all(item.startswith(("Lambda", "API Gateway")) for item in ours.items)


def test_fargate_runs_enough_containers_for_the_peak_by_littles_law_and_bills_the_whole_month(shipped_prices: PriceFile) -> None:
    result = lambda_estimate(shipped_prices, gb_seconds=10)
    # 7,200 tasks per hour = 2 per second; x 10 s x 3 = 60 in flight at the peak; / 20 per container = 3 containers.
    expected = 3 * CONTAINER_USD_PER_MONTH + ALB_USD_PER_MONTH + ALB_USD_PER_TASK * 7_200 * HOURS_PER_MONTH
    assert cost(Platform.FARGATE, 7_200, result, shipped_prices) == pytest.approx(expected, rel=1e-12)
    assert cost(Platform.FARGATE, 0, result, shipped_prices) == pytest.approx(2 * CONTAINER_USD_PER_MONTH + ALB_USD_PER_MONTH)
    given_peak = monthly_cost(
        Platform.FARGATE, 0, estimate=result, profile=PROFILE, prices=shipped_prices, region=REGION, peak_concurrency=100
    )
    assert given_peak == pytest.approx(5 * CONTAINER_USD_PER_MONTH + ALB_USD_PER_MONTH)


def test_agentcore_bills_active_cpu_and_the_sessions_memory_with_its_minimums(shipped_prices: PriceFile) -> None:
    result = lambda_estimate(shipped_prices, gb_seconds=1)
    profile = ComputeProfile(
        wall_seconds_per_task=0.5, cpu_active_share=0.5, vcpus=2, memory_gb=0.1, agentcore_idle_seconds_per_task=0
    )
    # Memory: 128 MB minimum for the 1-second minimum; CPU: 0.5 s x 50% active x 2 vCPUs.
    per_task = 0.125 * 1 / 3600 * 0.00945 + 0.5 * 0.5 * 2 / 3600 * 0.0895
    assert cost(Platform.AGENTCORE, 100, result, shipped_prices, profile) == pytest.approx(
        per_task * 100 * HOURS_PER_MONTH, rel=1e-12
    )
    idle = profile.model_copy(update={"agentcore_idle_seconds_per_task": 900})
    idle_memory = 0.125 * 900 / 3600 * 0.00945
    assert cost(Platform.AGENTCORE, 100, result, shipped_prices, idle) == pytest.approx(
        (per_task + idle_memory) * 100 * HOURS_PER_MONTH, rel=1e-12
    )


def test_fargates_fixed_cost_meets_linear_lambda_at_the_returned_traffic(shipped_prices: PriceFile) -> None:
    result = lambda_estimate(shipped_prices, gb_seconds=10)

    fargate = next(
        found for found in crossovers(result, PROFILE, shipped_prices, REGION) if found.alternative is Platform.FARGATE
    )

    assert fargate.status == "crosses"
    (point,) = fargate.points
    assert (point.alternative_cheaper, point.at_step) == ("above", False)
    at = point.tasks_per_hour
    assert cost(Platform.FARGATE, at, result, shipped_prices) == pytest.approx(
        cost(Platform.OURS, at, result, shipped_prices), rel=1e-9
    )
    assert cost(Platform.OURS, at * 0.99, result, shipped_prices) < cost(Platform.FARGATE, at * 0.99, result, shipped_prices)
    assert cost(Platform.OURS, at * 1.01, result, shipped_prices) > cost(Platform.FARGATE, at * 1.01, result, shipped_prices)
    # Closed form on the first piece (2 containers): 730 x T x (ours per task - ALB per task) = fixed monthly.
    ours_per_task = ours_compute(result).usd_per_task
    assert at == pytest.approx(
        (2 * CONTAINER_USD_PER_MONTH + ALB_USD_PER_MONTH) / (HOURS_PER_MONTH * (ours_per_task - ALB_USD_PER_TASK)), rel=1e-12
    )
    assert point.tasks_per_month == pytest.approx(at * HOURS_PER_MONTH)
    assert "cheaper than ours above" in fargate.summary


def test_a_crossover_where_a_container_is_added_is_found_at_the_step(shipped_prices: PriceFile) -> None:
    # Ours at ~2.0e-5 USD per task: Fargate's 1 container gets cheaper before 2,400 tasks per hour, the 2nd makes it dearer.
    result = lambda_estimate(shipped_prices, gb_seconds=1.5)
    profile = PROFILE.model_copy(update={"min_containers": 1})

    (_, fargate) = crossovers(result, profile, shipped_prices, REGION, max_tasks_per_hour=4_000)

    assert [(point.alternative_cheaper, point.at_step) for point in fargate.points] == [
        ("above", False),
        ("below", True),
        ("above", False),
    ]
    step = fargate.points[1].tasks_per_hour
    assert step == pytest.approx(2_400)
    assert cost(Platform.FARGATE, step, result, shipped_prices, profile) < cost(
        Platform.OURS, step, result, shipped_prices, profile
    )
    assert cost(Platform.FARGATE, step * (1 + 1e-9), result, shipped_prices, profile) > cost(
        Platform.OURS, step * (1 + 1e-9), result, shipped_prices, profile
    )


def test_an_alternative_that_never_gets_cheaper_in_range_says_never(shipped_prices: PriceFile) -> None:
    result = lambda_estimate(shipped_prices, gb_seconds=10)

    agentcore, fargate = crossovers(result, PROFILE, shipped_prices, REGION, max_tasks_per_hour=100)

    assert (agentcore.status, agentcore.points) == ("never", [])  # 900 s of idle session memory per task
    assert (fargate.status, fargate.points) == ("never", [])
    assert fargate.summary == "Fargate + ALB, always on is never cheaper than ours between 1 and 100 tasks per hour."


def test_an_alternative_cheaper_across_the_whole_range_says_always(shipped_prices: PriceFile) -> None:
    result = lambda_estimate(shipped_prices, gb_seconds=100)
    profile = PROFILE.model_copy(update={"agentcore_idle_seconds_per_task": 0})

    agentcore, _ = crossovers(result, profile, shipped_prices, REGION)

    assert (agentcore.status, agentcore.points) == ("always", [])
    assert "cheaper than ours everywhere between 1 and 1,000,000 tasks per hour" in agentcore.summary


def test_the_comparison_spans_log_spaced_traffic_with_the_crossovers_and_the_requirement_on_it(shipped_prices: PriceFile) -> None:
    result = lambda_estimate(shipped_prices, gb_seconds=10)

    comparison = compare(result, PROFILE, shipped_prices, REGION, at_tasks_per_hour=150, points_per_decade=10)

    traffic = comparison.tasks_per_hour
    assert (traffic[0], traffic[-1]) == (1, pytest.approx(1_000_000))
    assert traffic == sorted(traffic)
    assert 150 in traffic
    assert comparison.crossovers[1].points[0].tasks_per_hour in traffic
    assert set(comparison.usd_per_month) == set(Platform)
    index = traffic.index(150)
    assert comparison.usd_per_month[Platform.OURS][index] == pytest.approx(cost(Platform.OURS, 150, result, shipped_prices))
    assert any("left out" in note for note in comparison.notes)
    assert math.isclose(comparison.ours.usd_per_task, ours_compute(result).usd_per_task)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda result, prices: crossovers(result, PROFILE, prices, REGION, min_tasks_per_hour=0),
            "the traffic range must go from a positive number",
        ),
        (
            lambda result, prices: monthly_cost(
                "lambda-on-mars", 1, estimate=result, profile=PROFILE, prices=prices, region=REGION
            ),
            "unknown platform 'lambda-on-mars'",
        ),
        (
            lambda result, prices: monthly_cost(
                Platform.OURS, -1, estimate=result, profile=PROFILE, prices=prices, region=REGION
            ),
            "tasks per hour must not be negative",
        ),
        (lambda result, prices: compare(result, PROFILE, prices, "mars-1"), "unknown region 'mars-1'"),
    ],
)
def test_bad_comparison_inputs_fail_with_one_sentence(shipped_prices: PriceFile, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PlanInputError) as caught:
        call(lambda_estimate(shipped_prices, gb_seconds=1), shipped_prices)
    assert_one_sentence(str(caught.value), message)
