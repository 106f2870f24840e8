"""Typed functions as tools: schemas from signatures, validation and the decorator's rules."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from agentrail_runtime.agent.tools import describe_validation_error, tool


@tool
def search(
    query: Annotated[str, Field(min_length=2, max_length=50, description="Words to look for")],
    limit: Annotated[int, Field(ge=1, le=10)] = 5,
    exact: bool = False,
) -> list[str]:
    """Search the catalogue.

    Everything after the first paragraph stays out of the model's description.
    """
    return [query] * limit


def test_schema_comes_from_the_signature_with_constraints_and_defaults():
    schema = search.spec.input_schema

    assert schema["type"] == "object"
    assert schema["required"] == ["query"]
    assert schema["additionalProperties"] is False
    assert "title" not in schema
    assert schema["properties"]["query"] == {
        "type": "string",
        "minLength": 2,
        "maxLength": 50,
        "description": "Words to look for",
        "title": "Query",
    }
    assert schema["properties"]["limit"] == {"type": "integer", "minimum": 1, "maximum": 10, "default": 5, "title": "Limit"}
    assert schema["properties"]["exact"] == {"type": "boolean", "default": False, "title": "Exact"}


def test_description_is_the_first_paragraph_of_the_docstring():
    assert search.name == "search"
    assert search.description == "Search the catalogue."
    assert search.spec.description == "Search the catalogue."


def test_name_and_description_can_be_given_explicitly():
    @tool(name="find-products", description="Find products by keyword.")
    def find(query: str) -> list[str]:
        return []

    assert (find.name, find.description) == ("find-products", "Find products by keyword.")


def test_validation_applies_defaults_and_constraints():
    assert search.validate({"query": "lamp"}).model_dump() == {"query": "lamp", "limit": 5, "exact": False}
    with pytest.raises(ValidationError):
        search.validate({"query": "lamp", "limit": 11})
    with pytest.raises(ValidationError):
        search.validate({"query": "lamp", "colour": "red"})


def test_invoke_returns_json_compatible_values():
    @tool
    def holidays(year: int) -> tuple[date, ...]:
        """Public holidays of a year."""
        return (date(year, 1, 1), date(year, 12, 25))

    assert holidays.invoke(holidays.validate({"year": 2026})) == ["2026-01-01", "2026-12-25"]


def test_tool_without_description_or_docstring_is_refused():
    def nameless(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="tool 'nameless' needs a description or a docstring"):
        tool(nameless)


@pytest.mark.parametrize("bad_name", ["1st_tool", "has space", "dots.are.out", "x" * 65])
def test_tool_names_providers_would_refuse_are_rejected(bad_name):
    def f(x: int) -> int:
        """Do a thing."""
        return x

    with pytest.raises(ValueError, match=r"must match \[a-zA-Z\]"):
        tool(f, name=bad_name)


def test_variadic_arguments_are_refused_because_a_model_cannot_be_told_about_them():
    def spread(*values: int) -> int:
        """Sum values."""
        return sum(values)

    def options(**flags: bool) -> None:
        """Set flags."""

    with pytest.raises(TypeError, match=r"tool 'spread': \*args and \*\*kwargs"):
        tool(spread)
    with pytest.raises(TypeError, match=r"tool 'options': \*args and \*\*kwargs"):
        tool(options)


def test_approval_rule_is_evaluated_on_validated_arguments():
    @tool(requires_approval=lambda arguments: arguments["amount_usd"] > 100)
    def pay(amount_usd: float) -> str:
        """Pay an invoice."""
        return "paid"

    assert pay.needs_approval(pay.validate({"amount_usd": "150"})) is True
    assert pay.needs_approval(pay.validate({"amount_usd": 99})) is False


def test_validation_problems_name_fields_but_never_the_values_given():
    with pytest.raises(ValidationError) as caught:
        search.validate({"query": "x", "limit": "lots-of-SECRET", "password": "hunter2-SECRET"})

    problems = describe_validation_error(caught.value)

    assert {p["field"] for p in problems} == {"query", "limit", "password"}
    assert all(set(p) == {"field", "problem"} for p in problems)
    text = json.dumps(problems)
    assert "SECRET" not in text
    assert "hunter2" not in text
    assert "errors.pydantic.dev" not in text
