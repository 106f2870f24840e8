"""The price file: the shipped one is complete and sourced; broken ones fail with one sentence; overrides replace
only what they name."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from agentrail_cli.plan.errors import PlanInputError
from agentrail_cli.plan.prices import PriceFile, load_prices, model_price, region_prices
from agentrail_cli.plan.usage import FIXED_ITEMS, ITEMS
from tests.unit.plan.plan_helpers import assert_one_sentence

REQUIRED_REGIONS = {"us-east-1", "us-west-2", "eu-west-1", "eu-central-1"}
REQUIRED_MODELS = {
    "local",
    "bedrock:amazon.nova-micro",
    "bedrock:amazon.nova-lite",
    "bedrock:amazon.nova-pro",
    "bedrock:anthropic.claude-3-haiku",
    "bedrock:anthropic.claude-3-5-haiku",
    "bedrock:anthropic.claude-3-7-sonnet",
    "bedrock:anthropic.claude-sonnet-4",
    "bedrock:meta.llama3-1-8b-instruct",
}


def shipped_data() -> dict[str, Any]:
    text = resources.files("agentrail_cli.plan").joinpath("data", "prices.json").read_text(encoding="utf-8")
    return json.loads(text)


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_shipped_file_loads_as_package_data_and_validates_against_the_schema(shipped_prices: PriceFile) -> None:
    assert PriceFile.model_validate(shipped_data()) == shipped_prices
    assert shipped_prices.version
    assert set(shipped_prices.regions) >= REQUIRED_REGIONS


def test_the_shipped_file_names_aws_pricing_pages_and_the_date_it_read_them(shipped_prices: PriceFile) -> None:
    urls = [source.url for source in shipped_prices.sources]
    assert all(url.startswith(("https://aws.amazon.com/", "https://docs.aws.amazon.com/")) for url in urls)
    for page in (
        "lambda/pricing",
        "api-gateway/pricing",
        "dynamodb/pricing",
        "bedrock/pricing",
        "agentcore/pricing",
        "fargate/pricing",
    ):
        assert any(page in url for url in urls), page
    assert all(source.as_of <= shipped_prices.as_of for source in shipped_prices.sources)


@pytest.mark.parametrize("region", sorted(REQUIRED_REGIONS))
def test_every_region_prices_every_item_fixed_item_and_model(shipped_prices: PriceFile, region: str) -> None:
    prices = region_prices(shipped_prices, region)
    assert set(prices.items) == set(ITEMS)
    assert set(prices.fixed) == set(FIXED_ITEMS)
    assert set(prices.models) >= REQUIRED_MODELS
    assert set(prices.models) == set(region_prices(shipped_prices, "us-east-1").models)
    assert prices.items["lambda_gb_seconds"].unit_price_usd("arm64") < prices.items["lambda_gb_seconds"].unit_price_usd("x86_64")


def test_batch_prices_are_half_the_on_demand_ones_and_local_is_free(shipped_prices: PriceFile) -> None:
    for name, price in region_prices(shipped_prices, "us-east-1").models.items():
        if price.batch_input_per_million is not None:
            assert price.batch_input_per_million == pytest.approx(price.input_per_million / 2), name
            assert price.batch_output_per_million == pytest.approx(price.output_per_million / 2), name
    local = model_price(shipped_prices, "us-east-1", "local")
    assert (local.input_per_million, local.output_per_million) == (0, 0)


def test_dynamodb_on_demand_carries_the_november_2024_price_cut(shipped_prices: PriceFile) -> None:
    items = region_prices(shipped_prices, "us-east-1").items
    assert items["dynamodb_write_units"].price_usd() == 0.625
    assert items["dynamodb_read_units"].price_usd() == 0.125
    assert items["dynamodb_write_units"].per == 1_000_000


def test_a_model_is_found_by_prefix_through_inference_profiles_and_versions(shipped_prices: PriceFile) -> None:
    sonnet = model_price(shipped_prices, "us-east-1", "bedrock:us.anthropic.claude-sonnet-4-20250514-v1:0")
    assert (sonnet.input_per_million, sonnet.cache_read_per_million) == (3.0, 0.3)
    assert model_price(shipped_prices, "eu-west-1", "bedrock:eu.amazon.nova-lite-v1:0").input_per_million == 0.06
    assert (
        model_price(shipped_prices, "us-east-1", "bedrock:global.anthropic.claude-3-5-haiku-20241022-v1:0").output_per_million
        == 4.0
    )


def test_an_unknown_region_lists_the_regions_the_file_knows(shipped_prices: PriceFile) -> None:
    with pytest.raises(PlanInputError) as caught:
        region_prices(shipped_prices, "mars-1")
    assert str(caught.value) == "unknown region 'mars-1'; the prices file knows: eu-central-1, eu-west-1, us-east-1, us-west-2."


def test_an_unknown_model_lists_the_models_the_file_knows(shipped_prices: PriceFile) -> None:
    with pytest.raises(
        PlanInputError, match=r"^unknown model 'bedrock:acme\.giant-1' in region 'us-east-1'; the prices file knows: .*local"
    ) as caught:
        model_price(shipped_prices, "us-east-1", "bedrock:acme.giant-1")
    assert_one_sentence(str(caught.value), "unknown model")


def test_a_negative_price_fails_with_one_sentence_naming_the_file_and_the_entry(tmp_path: Path) -> None:
    data = shipped_data()
    data["regions"]["us-east-1"]["items"]["sqs_requests"]["usd"] = -0.4
    with pytest.raises(PlanInputError, match=r"regions\.us-east-1\.items\.sqs_requests") as caught:
        load_prices(write(tmp_path, "bad.json", data))
    assert_one_sentence(str(caught.value), "prices file bad.json: ")
    assert "must be greater than or equal to 0 (got -0.4)" in str(caught.value)


def test_a_missing_item_fails_with_one_sentence_naming_it(tmp_path: Path) -> None:
    data = shipped_data()
    del data["regions"]["eu-west-1"]["fixed"]["alarms"]
    with pytest.raises(PlanInputError, match=r"fixed has no price for 'alarms'") as caught:
        load_prices(write(tmp_path, "short.json", data))
    assert_one_sentence(str(caught.value), "prices file short.json: regions.eu-west-1: ")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda data: data.update(surprise=1), "surprise is not a known key"),
        (lambda data: data["regions"]["us-west-2"]["items"].update(lambda_mystery={"usd": 1}), "unknown key 'lambda_mystery'"),
        (
            lambda data: data["regions"]["us-west-2"]["platforms"].update(fargate_spot=0.01),
            "platforms.fargate_spot is not a known key",
        ),
    ],
)
def test_an_unknown_key_fails_with_one_sentence_naming_it(tmp_path: Path, change: Any, named: str) -> None:
    data = shipped_data()
    change(data)
    with pytest.raises(PlanInputError) as caught:
        load_prices(write(tmp_path, "extra.json", data))
    assert named in str(caught.value)
    assert_one_sentence(str(caught.value), "prices file extra.json: ")


def test_a_file_that_is_not_json_fails_with_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(PlanInputError) as caught:
        load_prices(path)
    assert_one_sentence(str(caught.value), "prices file broken.json: is not valid JSON")


def test_an_override_replaces_only_the_entries_it_names(shipped_prices: PriceFile, tmp_path: Path) -> None:
    override = {
        "version": "team-2026-12",
        "regions": {
            "us-east-1": {
                "items": {"lambda_requests": {"usd": 0.25, "per": 1_000_000, "unit": "requests"}},
                "models": {"bedrock:acme.tiny": {"input_per_million": 0.01, "output_per_million": 0.02}},
                "platforms": {"alb_hour": 0.03},
            }
        },
    }
    prices = load_prices(overrides=[write(tmp_path, "team.json", override)])

    assert prices.version == "team-2026-12"
    east, shipped_east = region_prices(prices, "us-east-1"), region_prices(shipped_prices, "us-east-1")
    assert east.items["lambda_requests"].price_usd() == 0.25
    assert {key: value for key, value in east.items.items() if key != "lambda_requests"} == {
        key: value for key, value in shipped_east.items.items() if key != "lambda_requests"
    }
    assert east.fixed == shipped_east.fixed
    assert east.platforms.alb_hour == 0.03
    assert east.platforms.model_copy(update={"alb_hour": shipped_east.platforms.alb_hour}) == shipped_east.platforms
    assert model_price(prices, "us-east-1", "bedrock:acme.tiny-v2").output_per_million == 0.02
    assert model_price(prices, "us-east-1", "bedrock:amazon.nova-pro") == model_price(
        shipped_prices, "us-east-1", "bedrock:amazon.nova-pro"
    )
    for region in REQUIRED_REGIONS - {"us-east-1"}:
        assert prices.regions[region] == shipped_prices.regions[region]


def test_a_yaml_override_applies_after_a_json_one_in_order(tmp_path: Path) -> None:
    first = write(
        tmp_path, "first.json", {"regions": {"eu-west-1": {"fixed": {"secrets": {"usd": 0.5, "unit": "secret-months"}}}}}
    )
    second = tmp_path / "second.yaml"
    second.write_text("regions:\n  eu-west-1:\n    fixed:\n      secrets: {usd: 0.45, unit: secret-months}\n", encoding="utf-8")
    prices = load_prices(overrides=[first, second])
    assert region_prices(prices, "eu-west-1").fixed["secrets"].price_usd() == 0.45


def test_an_override_adding_an_incomplete_region_fails_with_one_sentence(tmp_path: Path) -> None:
    override = {"regions": {"ap-south-1": {"items": {"lambda_requests": {"usd": 0.2, "per": 1_000_000}}}}}
    with pytest.raises(PlanInputError, match=r"regions\.ap-south-1") as caught:
        load_prices(overrides=[write(tmp_path, "new-region.json", override)])
    assert_one_sentence(str(caught.value), "prices file new-region.json: ")


def test_the_clis_inference_profile_prefixes_are_the_runtimes() -> None:
    """prices.py keeps its own copy (a plain CLI install need not import the runtime): it must not drift."""
    from agentrail_cli.plan import prices
    from agentrail_runtime.contract import INFERENCE_PROFILE_PREFIXES

    assert prices.INFERENCE_PROFILE_PREFIXES == INFERENCE_PROFILE_PREFIXES
