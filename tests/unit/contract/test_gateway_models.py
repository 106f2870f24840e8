"""API Gateway's request models are generated from the runtime's pydantic models, down-converted to draft-04."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft4Validator

from agentrail_runtime.api.gateway_models import DRAFT4, UnsupportedSchema, draft4, gateway_models, render, request_bodies


def test_the_committed_request_models_are_what_the_generator_writes_today() -> None:
    committed = resources.files("agentrail_constructs").joinpath("request_models.json").read_text(encoding="utf-8")

    generated = render(gateway_models())

    assert committed == generated, "request_models.json is stale: run `make schemas` and commit the result"


def test_every_generated_model_is_a_valid_draft4_schema_with_no_2020_12_keyword() -> None:
    for name, schema in gateway_models().items():
        Draft4Validator.check_schema(schema)
        text = render(schema)
        for keyword in ('"$defs"', '"$ref"', '"const"', '"title"', '"default"'):
            assert keyword not in text, f"{name} still has {keyword}"


def test_the_root_names_draft4_and_nested_schemas_do_not() -> None:
    converted = draft4({"type": "object", "properties": {"a": {"type": "string"}}})

    assert converted == {"$schema": DRAFT4, "type": "object", "properties": {"a": {"type": "string"}}}


def test_a_ref_into_defs_is_inlined() -> None:
    schema = {
        "type": "object",
        "properties": {"inner": {"$ref": "#/$defs/Inner"}},
        "$defs": {"Inner": {"type": "object", "properties": {"n": {"type": "integer"}}, "title": "Inner"}},
    }

    converted = draft4(schema)

    assert converted["properties"]["inner"] == {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert "$defs" not in converted


def test_a_ref_into_openapi_components_is_inlined_from_the_given_definitions() -> None:
    components = {"Body": {"type": "object", "required": ["m"], "properties": {"m": {"type": "string"}}}}

    converted = draft4({"$ref": "#/components/schemas/Body"}, components)

    assert converted == {"$schema": DRAFT4, **components["Body"]}


def test_a_ref_to_an_unknown_definition_is_refused() -> None:
    with pytest.raises(UnsupportedSchema, match="names no known definition"):
        draft4({"$ref": "#/$defs/Missing"})


def test_any_of_a_typed_schema_and_null_becomes_a_type_list_with_null() -> None:
    schema = {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}], "title": "Model", "description": "d"}

    converted = draft4(schema, root=False)

    assert converted == {"type": ["string", "null"], "maxLength": 5, "description": "d"}
    assert Draft4Validator(converted).is_valid(None)
    assert not Draft4Validator(converted).is_valid("toolong")


def test_any_of_null_and_an_enum_also_allows_null_in_the_enum() -> None:
    converted = draft4({"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}]}, root=False)

    assert converted == {"type": ["string", "null"], "enum": ["a", "b", None]}
    assert Draft4Validator(converted).is_valid(None)


def test_any_of_two_real_branches_is_kept_as_any_of() -> None:
    schema = {"anyOf": [{"type": "string"}, {"type": "integer"}]}

    assert draft4(schema, root=False) == schema


def test_const_becomes_a_one_value_enum() -> None:
    assert draft4({"const": "approve"}, root=False) == {"enum": ["approve"]}


def test_a_numeric_exclusive_minimum_becomes_minimum_with_the_draft4_flag() -> None:
    converted = draft4({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10.0}, root=False)

    assert converted == {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 10, "exclusiveMaximum": True}
    validator = Draft4Validator(converted)
    assert (validator.is_valid(0), validator.is_valid(0.5), validator.is_valid(10)) == (False, True, False)


def test_integral_float_bounds_become_integers() -> None:
    assert draft4({"type": "integer", "minimum": 0.0}, root=False) == {"type": "integer", "minimum": 0}


def test_annotations_are_dropped() -> None:
    schema = {"type": "string", "title": "T", "default": "x", "examples": ["y"], "description": "kept"}

    assert draft4(schema, root=False) == {"type": "string", "description": "kept"}


@pytest.mark.parametrize("keyword", ["prefixItems", "propertyNames", "dependentRequired", "if", "unevaluatedProperties"])
def test_a_keyword_without_a_draft4_equivalent_is_refused_rather_than_silently_dropped(keyword: str) -> None:
    with pytest.raises(UnsupportedSchema, match=f"keyword '{keyword}' has no draft-04 equivalent"):
        draft4({"type": "object", keyword: {}})


def test_nested_items_and_additional_properties_are_converted_too() -> None:
    schema = {
        "type": "object",
        "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "properties": {"xs": {"type": "array", "items": {"const": 1}}},
    }

    converted = draft4(schema, root=False)

    assert converted["additionalProperties"] == {"type": ["string", "null"]}
    assert converted["properties"]["xs"]["items"] == {"enum": [1]}


def test_request_bodies_names_the_pydantic_model_of_each_operation_with_a_json_body() -> None:
    document: dict[str, Any] = {
        "paths": {
            "/things": {
                "post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}},
                "get": {},
            },
            "/optional": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"anyOf": [{"$ref": "#/components/schemas/Thing"}, {"type": "null"}]}}
                        }
                    }
                }
            },
        },
        "components": {"schemas": {"Thing": {"type": "object", "title": "Thing"}}},
    }

    bodies = request_bodies(document)

    assert bodies == {
        ("POST", "/things"): ("Thing", {"$schema": DRAFT4, "type": "object"}),
        ("POST", "/optional"): ("Thing", {"$schema": DRAFT4, "type": ["object", "null"]}),
    }
