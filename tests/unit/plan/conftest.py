"""Fixtures of the planner's cost tests: the shipped price file, and usages built item by item."""

from __future__ import annotations

import pytest

from agentrail_cli.plan.prices import PriceFile, load_prices


@pytest.fixture(scope="session")
def shipped_prices() -> PriceFile:
    return load_prices()
