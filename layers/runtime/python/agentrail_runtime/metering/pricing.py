"""Prices per million tokens, and the cost of a usage.

The defaults are list prices for on-demand inference in us-east-1 as published
by the providers; they change, so deployments should pass their own table
(``AGENT_PRICE_TABLE``, or ``prices=`` on the AgentFunction construct).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from agentrail_runtime.models.base import INFERENCE_PROFILE_PREFIXES, Usage


class ModelPrice(BaseModel):
    """USD per one million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "local": ModelPrice(input_per_million=0.0, output_per_million=0.0),
    "bedrock:amazon.nova-micro": ModelPrice(input_per_million=0.035, output_per_million=0.14),
    "bedrock:amazon.nova-lite": ModelPrice(input_per_million=0.06, output_per_million=0.24),
    "bedrock:amazon.nova-pro": ModelPrice(input_per_million=0.8, output_per_million=3.2),
    "bedrock:anthropic.claude-3-haiku": ModelPrice(input_per_million=0.25, output_per_million=1.25),
    "bedrock:anthropic.claude-3-5-haiku": ModelPrice(input_per_million=0.8, output_per_million=4.0),
    "bedrock:anthropic.claude-3-5-sonnet": ModelPrice(input_per_million=3.0, output_per_million=15.0),
    "bedrock:anthropic.claude-3-7-sonnet": ModelPrice(input_per_million=3.0, output_per_million=15.0),
    "bedrock:anthropic.claude-sonnet-4": ModelPrice(input_per_million=3.0, output_per_million=15.0),
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
        for prefix in INFERENCE_PROFILE_PREFIXES:  # a profile is priced like its model
            if model_id.startswith(prefix):
                model_id = model_id[len(prefix) :]
                break
        candidate = f"{provider}:{model_id}" if model_id else provider
        return next((self._prices[key] for key in self._keys if candidate.startswith(key)), None)

    def cost(self, model: str, usage: Usage) -> float | None:
        """USD for ``usage`` on ``model``, rounded to 1e-8; ``None`` when the price is unknown."""
        price = self.price_for(model)
        if price is None:
            return None
        cost = (usage.input_tokens * price.input_per_million + usage.output_tokens * price.output_per_million) / 1e6
        return round(cost, 8)
