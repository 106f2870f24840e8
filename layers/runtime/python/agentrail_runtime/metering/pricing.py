"""Prices per million tokens, and the cost of a usage.

The defaults are list prices for on-demand inference in us-east-1 as published
by the providers; they change, so deployments should pass their own table
(``AGENT_PRICE_TABLE``, or ``prices=`` on the AgentFunction construct).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from agentrail_runtime.models.base import Usage
from agentrail_runtime.models.caching import foundation_model_id


class ModelPrice(BaseModel):
    """USD per one million tokens.

    ``cache_read_per_million`` and ``cache_write_per_million`` price the input tokens read from and written to a
    prompt cache; a price that leaves them out charges them as plain input.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    cache_read_per_million: float | None = Field(default=None, ge=0)
    cache_write_per_million: float | None = Field(default=None, ge=0)

    def cost(self, usage: Usage) -> float:
        """USD for ``usage`` at this price, rounded to 1e-8."""
        read = self.input_per_million if self.cache_read_per_million is None else self.cache_read_per_million
        write = self.input_per_million if self.cache_write_per_million is None else self.cache_write_per_million
        cost = (
            usage.input_tokens * self.input_per_million
            + usage.cache_read_tokens * read
            + usage.cache_write_tokens * write
            + usage.output_tokens * self.output_per_million
        ) / 1e6
        return round(cost, 8)


def _nova(input_price: float, output_price: float) -> ModelPrice:
    """Nova: cache reads at a quarter of the input price; cache writes at the input price."""
    return ModelPrice(
        input_per_million=input_price,
        output_per_million=output_price,
        cache_read_per_million=round(input_price / 4, 8),
        cache_write_per_million=input_price,
    )


def _claude(input_price: float, output_price: float) -> ModelPrice:
    """Claude on Bedrock: cache reads at a tenth of the input price; cache writes at 1.25 times it."""
    return ModelPrice(
        input_per_million=input_price,
        output_per_million=output_price,
        cache_read_per_million=round(input_price / 10, 8),
        cache_write_per_million=round(input_price * 1.25, 8),
    )


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "local": ModelPrice(input_per_million=0.0, output_per_million=0.0),
    "bedrock:amazon.nova-micro": _nova(0.035, 0.14),
    "bedrock:amazon.nova-lite": _nova(0.06, 0.24),
    "bedrock:amazon.nova-pro": _nova(0.8, 3.2),
    "bedrock:anthropic.claude-3-haiku": ModelPrice(input_per_million=0.25, output_per_million=1.25),
    "bedrock:anthropic.claude-3-5-haiku": _claude(0.8, 4.0),
    "bedrock:anthropic.claude-3-5-sonnet": ModelPrice(input_per_million=3.0, output_per_million=15.0),
    "bedrock:anthropic.claude-3-7-sonnet": _claude(3.0, 15.0),
    "bedrock:anthropic.claude-sonnet-4": _claude(3.0, 15.0),
    "bedrock:meta.llama3-1-8b-instruct": ModelPrice(input_per_million=0.22, output_per_million=0.22),
    "openai:gpt-4o-mini": ModelPrice(input_per_million=0.15, output_per_million=0.6),
    "openai:gpt-4o": ModelPrice(input_per_million=2.5, output_per_million=10.0),
}


class PriceTable:
    """Looks up the price of a model spec (``provider:model-id``) by longest matching prefix.

    Parameters
    ----------
    overrides:
        Entries that replace or extend :data:`DEFAULT_PRICES`.
    """

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self._prices = {**DEFAULT_PRICES, **(overrides or {})}
        self._keys = sorted(self._prices, key=len, reverse=True)

    def price_for(self, model: str) -> ModelPrice | None:
        """The price of ``model``, or ``None`` when the table does not know it."""
        provider, _, model_id = model.partition(":")
        model_id = foundation_model_id(model_id)  # a profile is priced like its model
        candidate = f"{provider}:{model_id}" if model_id else provider
        return next((self._prices[key] for key in self._keys if candidate.startswith(key)), None)

    def cost(self, model: str, usage: Usage) -> float | None:
        """USD for ``usage`` on ``model``, rounded to 1e-8; ``None`` when the price is unknown."""
        price = self.price_for(model)
        return None if price is None else price.cost(usage)
