"""The cost model: each quantity is its own line, priced exactly, per task, per 1,000 tasks and per month."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentrail_cli.plan.cost import NO_FREE_TIER_NOTE, estimate
from agentrail_cli.plan.errors import PlanInputError
from agentrail_cli.plan.prices import PriceFile, load_prices
from agentrail_cli.plan.usage import Basis, FixedMonthly, Quantity, TaskUsage, TokenUse
from tests.unit.plan.plan_helpers import assert_one_sentence, counted


def test_the_lambda_pricing_pages_example_1_is_recomputed_to_the_cent(tmp_path: Path) -> None:
    """AWS Lambda pricing page, "Example 1" (https://aws.amazon.com/lambda/pricing/, as stored with 512 MB examples):

    512 MB, executed 3 million times in one month, 1 second each, at the page's $0.00001667 per GB-s (x86) and
    $0.20 per 1M requests, in us-east-1:

    - compute: 3,000,000 s x 512/1024 GB = 1,500,000 GB-s; minus the 400,000 GB-s free tier = 1,100,000 GB-s;
      1,100,000 x $0.00001667 = $18.337, shown as $18.34;
    - requests: 3M - 1M free = 2M; 2 x $0.20 = $0.40;
    - total: $18.34 + $0.40 = $18.74 per month.

    The cost model applies no free tier, so its lines are the gross charges (1,500,000 x 0.00001667 = $25.005 and
    3 x $0.20 = $0.60); subtracting the free tier's worth at the same prices ($6.668 and $0.20) gives the page's figure.
    """
    page_price = {
        "regions": {
            "us-east-1": {
                "items": {
                    "lambda_gb_seconds": {
                        "usd_by_architecture": {"arm64": 0.0000133334, "x86_64": 0.00001667},
                        "per": 1,
                        "unit": "GB-seconds",
                    }
                }
            }
        }
    }
    override = tmp_path / "page-2020.json"
    override.write_text(json.dumps(page_price), encoding="utf-8")
    prices = load_prices(overrides=[override])
    usage = TaskUsage(
        pattern="stateless",
        unit="invocation",
        architecture="x86_64",
        quantities={"lambda_requests": counted(1), "lambda_gb_seconds": counted(1.0 * 512 / 1024)},
    )

    result = estimate(usage, FixedMonthly(), prices, "us-east-1", tasks_per_month=3_000_000)

    requests, compute = result.lines
    assert compute.usd_per_month == pytest.approx(25.005)
    assert requests.usd_per_month == pytest.approx(0.60)
    free_tier_worth = 400_000 * 0.00001667 + 1_000_000 * 0.20 / 1_000_000
    assert round(compute.usd_per_month - 400_000 * 0.00001667, 2) == 18.34
    assert round(requests.usd_per_month - 0.20, 2) == 0.40
    assert round(result.usd_per_month - free_tier_worth, 2) == 18.74
    assert NO_FREE_TIER_NOTE in result.notes


def test_each_quantity_is_its_own_line_priced_per_task_per_1000_and_per_month(shipped_prices: PriceFile) -> None:
    usage = TaskUsage(
        pattern="async",
        unit="task with one approval",
        quantities={
            "lambda_requests": counted(4),
            "lambda_gb_seconds": counted(20),
            "http_api_requests": counted(2),
            "dynamodb_write_units": counted(6),
            "dynamodb_read_units": counted(10),
            "sfn_transitions": counted(12),
            "kms_requests": Quantity(value=2, basis=Basis.ESTIMATED, note="DynamoDB's KMS calls"),
        },
    )

    result = estimate(usage, FixedMonthly(), shipped_prices, "us-east-1", tasks_per_month=50_000)

    expected = {
        "lambda_requests": 4 * 0.20 / 1e6,
        "lambda_gb_seconds": 20 * 0.0000133334,
        "http_api_requests": 2 * 1.00 / 1e6,
        "dynamodb_write_units": 6 * 0.625 / 1e6,
        "dynamodb_read_units": 10 * 0.125 / 1e6,
        "sfn_transitions": 12 * 0.025 / 1000,
        "kms_requests": 2 * 0.03 / 10_000,
    }
    assert [line.key for line in result.lines] == list(expected)
    for line in result.lines:
        assert line.kind == "per_task"
        assert line.usd_per_task == pytest.approx(expected[line.key], rel=1e-12), line.key
        assert line.usd_per_1000_tasks == pytest.approx(expected[line.key] * 1000, rel=1e-12), line.key
        assert line.usd_per_month == pytest.approx(expected[line.key] * 50_000, rel=1e-12), line.key
    assert result.usd_per_task == pytest.approx(sum(expected.values()), rel=1e-12)
    assert result.usd_per_month == pytest.approx(sum(expected.values()) * 50_000, rel=1e-12)
    kms = next(line for line in result.lines if line.key == "kms_requests")
    assert (kms.service, kms.basis, kms.price_usd, kms.price_per) == ("KMS", Basis.ESTIMATED, 0.03, 10_000)
    assert "DynamoDB's KMS calls" in kms.note
    assert next(line for line in result.lines if line.key == "lambda_gb_seconds").item == "GB-seconds (arm64)"


def test_x86_functions_are_priced_at_the_x86_gb_second_price(shipped_prices: PriceFile) -> None:
    usage = TaskUsage(pattern="stateless", unit="request", architecture="x86_64", quantities={"lambda_gb_seconds": counted(3)})
    (line,) = estimate(usage, FixedMonthly(), shipped_prices, "eu-central-1", tasks_per_month=1000).lines
    assert line.usd_per_task == pytest.approx(3 * 0.0000166667, rel=1e-12)
    assert line.item == "GB-seconds (x86_64)"


def test_fixed_monthly_items_cost_the_same_per_month_and_spread_over_the_tasks(shipped_prices: PriceFile) -> None:
    fixed = FixedMonthly(quantities={"kms_keys": counted(2), "alarms": counted(8), "vpc_endpoint_hours": counted(2 * 730)})
    usage = TaskUsage(pattern="stateless", unit="request", quantities={"lambda_requests": counted(1)})

    result = estimate(usage, fixed, shipped_prices, "us-east-1", tasks_per_month=20_000)

    fixed_lines = result.lines_of("fixed")
    assert [line.usd_per_month for line in fixed_lines] == pytest.approx([2.0, 0.8, 14.6])
    assert [line.usd_per_task for line in fixed_lines] == pytest.approx([2.0 / 20_000, 0.8 / 20_000, 14.6 / 20_000])
    assert result.fixed_usd_per_month == pytest.approx(17.4)
    assert result.usd_per_month == pytest.approx(17.4 + 20_000 * 0.20 / 1e6)


def test_model_tokens_are_priced_per_model_and_kind_batch_at_the_batch_price(shipped_prices: PriceFile) -> None:
    usage = TaskUsage(
        pattern="stateful",
        unit="session of 10 turns",
        quantities={"lambda_requests": counted(10)},
        tokens=[
            TokenUse(
                model="bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0",
                calls=10,
                input_tokens=20_000,
                output_tokens=3_000,
                cache_read_tokens=50_000,
                cache_write_tokens=5_000,
            ),
            TokenUse(model="bedrock:amazon.nova-micro-v1:0", calls=2, input_tokens=1_000, output_tokens=100, batch=True),
        ],
    )

    result = estimate(usage, FixedMonthly(), shipped_prices, "us-east-1", tasks_per_month=10_000)

    tokens = result.lines_of("tokens")
    assert [(line.key, line.item) for line in tokens] == [
        ("tokens:input", "input tokens (on-demand)"),
        ("tokens:output", "output tokens (on-demand)"),
        ("tokens:cache_read", "cache read tokens"),
        ("tokens:cache_write", "cache write tokens"),
        ("tokens:input", "input tokens (batch)"),
        ("tokens:output", "output tokens (batch)"),
    ]
    haiku = 20_000 * 0.80 / 1e6 + 3_000 * 4.00 / 1e6 + 50_000 * 0.08 / 1e6 + 5_000 * 1.00 / 1e6
    micro_batch = 1_000 * 0.0175 / 1e6 + 100 * 0.07 / 1e6
    assert sum(line.usd_per_task for line in tokens[:4]) == pytest.approx(haiku, rel=1e-12)
    assert sum(line.usd_per_task for line in tokens[4:]) == pytest.approx(micro_batch, rel=1e-12)
    assert result.token_usd_per_task == pytest.approx(haiku + micro_batch, rel=1e-12)
    assert result.aws_usd_per_task == pytest.approx(10 * 0.20 / 1e6, rel=1e-12)
    assert result.usd_per_task == pytest.approx(result.aws_usd_per_task + result.token_usd_per_task, rel=1e-12)
    assert result.usd_per_1000_tasks == pytest.approx(result.usd_per_task * 1000, rel=1e-12)


def test_cached_tokens_on_a_model_without_prompt_caching_fail_with_one_sentence(shipped_prices: PriceFile) -> None:
    usage = TaskUsage(
        pattern="stateless",
        unit="request",
        tokens=[
            TokenUse(
                model="bedrock:anthropic.claude-3-haiku-20240307-v1:0",
                calls=1,
                input_tokens=10,
                output_tokens=10,
                cache_read_tokens=100,
            )
        ],
    )
    with pytest.raises(PlanInputError, match="no prompt-caching price") as caught:
        estimate(usage, FixedMonthly(), shipped_prices, "us-east-1", tasks_per_month=1)
    assert_one_sentence(str(caught.value), "model 'bedrock:anthropic.claude-3-haiku")


@pytest.mark.parametrize(
    ("usage", "fixed", "tasks", "message"),
    [
        (
            TaskUsage(pattern="p", unit="u", quantities={"lambda_magic": counted(1)}),
            FixedMonthly(),
            10,
            "unknown per-task item 'lambda_magic'",
        ),
        (
            TaskUsage(pattern="p", unit="u"),
            FixedMonthly(quantities={"lambda_requests": counted(1)}),
            10,
            "unknown fixed monthly item 'lambda_requests'",
        ),
        (TaskUsage(pattern="p", unit="u", architecture="riscv"), FixedMonthly(), 10, "unknown architecture 'riscv'"),
        (TaskUsage(pattern="p", unit="u"), FixedMonthly(), 0, "tasks per month must be a positive number"),
        (
            TaskUsage(pattern="p", unit="u", tokens=[TokenUse(model="openai:gpt-9", calls=1, input_tokens=1, output_tokens=1)]),
            FixedMonthly(),
            10,
            "unknown model 'openai:gpt-9'",
        ),
    ],
)
def test_bad_inputs_fail_with_one_sentence(
    shipped_prices: PriceFile, usage: TaskUsage, fixed: FixedMonthly, tasks: float, message: str
) -> None:
    with pytest.raises(PlanInputError) as caught:
        estimate(usage, fixed, shipped_prices, "us-east-1", tasks_per_month=tasks)
    assert_one_sentence(str(caught.value), message)


def test_the_estimate_is_frozen_and_says_which_prices_it_used(shipped_prices: PriceFile) -> None:
    result = estimate(
        TaskUsage(pattern="p", unit="u", quantities={"xray_traces": counted(1)}), FixedMonthly(), shipped_prices, "us-west-2", 100
    )
    assert (result.region, result.prices_version, result.prices_as_of) == (
        "us-west-2",
        shipped_prices.version,
        shipped_prices.as_of.isoformat(),
    )
    with pytest.raises(ValueError, match="frozen"):
        result.usd_per_task = 0  # type: ignore[misc]
