"""Helpers of the planner's cost tests."""

from __future__ import annotations

from agentrail_cli.plan.usage import Basis, Quantity


def counted(value: float) -> Quantity:
    """A quantity counted in local mode."""
    return Quantity(value=value, basis=Basis.COUNTED)


def assert_one_sentence(message: str, starts_with: str) -> None:
    """A user-facing error: one line, one sentence, that starts by naming its subject."""
    assert message.startswith(starts_with), message
    assert "\n" not in message, message
    assert message.endswith("."), message
    assert message.count(". ") == 0, message
