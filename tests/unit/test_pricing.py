"""The price table: prefix lookup, inference profiles, overrides and cost arithmetic."""

from __future__ import annotations

import pytest

from agentrail_runtime.metering.pricing import DEFAULT_PRICES, ModelPrice, PriceTable
from agentrail_runtime.models.base import Usage


def test_the_longest_matching_prefix_wins():
    table = PriceTable()

    assert table.price_for("openai:gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["openai:gpt-4o-mini"]
    assert table.price_for("openai:gpt-4o-2024-08-06") == DEFAULT_PRICES["openai:gpt-4o"]


def test_a_versioned_model_id_is_priced_like_its_family():
    assert PriceTable().price_for("bedrock:amazon.nova-lite-v1:0") == DEFAULT_PRICES["bedrock:amazon.nova-lite"]


@pytest.mark.parametrize("profile", ["us", "eu", "apac", "global"])
def test_cross_region_inference_profiles_are_priced_like_the_model(profile):
    price = PriceTable().price_for(f"bedrock:{profile}.anthropic.claude-3-5-haiku-20241022-v1:0")

    assert price == DEFAULT_PRICES["bedrock:anthropic.claude-3-5-haiku"]


def test_overrides_replace_defaults_and_add_models():
    table = PriceTable(
        {
            "bedrock:amazon.nova-lite": ModelPrice(input_per_million=1.0, output_per_million=2.0),
            "bedrock:amazon.nova": ModelPrice(input_per_million=7.0, output_per_million=9.0),
        }
    )

    assert table.price_for("bedrock:us.amazon.nova-lite-v1:0") == ModelPrice(input_per_million=1.0, output_per_million=2.0)
    assert table.price_for("bedrock:amazon.nova-premier-v1:0") == ModelPrice(input_per_million=7.0, output_per_million=9.0)
    assert table.price_for("bedrock:amazon.nova-micro-v1:0") == DEFAULT_PRICES["bedrock:amazon.nova-micro"]


def test_an_unknown_model_has_no_price_and_no_cost():
    table = PriceTable()

    assert table.price_for("bedrock:example.unpriced-model-v1:0") is None
    assert table.cost("bedrock:example.unpriced-model-v1:0", Usage(input_tokens=10, output_tokens=10)) is None


def test_cost_is_tokens_times_price_per_million():
    usage = Usage(input_tokens=1_234_567, output_tokens=89_012)

    cost = PriceTable().cost("bedrock:amazon.nova-lite-v1:0", usage)

    # 1,234,567 x $0.06/M + 89,012 x $0.24/M
    assert cost == pytest.approx(0.07407402 + 0.02136288, abs=1e-12)


def test_cost_is_rounded_to_a_hundred_millionth_of_a_dollar():
    table = PriceTable({"openai:tiny": ModelPrice(input_per_million=0.123456789, output_per_million=0.0)})

    assert table.cost("openai:tiny", Usage(input_tokens=1_000_000)) == 0.12345679


def test_the_local_model_is_free():
    assert PriceTable().cost("local", Usage(input_tokens=5000, output_tokens=5000)) == 0.0


def test_negative_prices_and_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        ModelPrice(input_per_million=-1, output_per_million=0)
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        ModelPrice(input_per_million=1, output_per_million=1, currency="EUR")
