"""The body model API Gateway enforces on ``POST /invoke`` agrees with the handler's pydantic ``InvokeRequest``.

API Gateway rejects a body before the function runs; the handler validates it
again. If the two disagree, a caller either gets a gateway 400 for a body the
OpenAPI document allows, or reaches the function with one the gateway should
have stopped.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from annotated_types import MaxLen, MinLen
from aws_cdk.assertions import Template
from jsonschema import Draft4Validator
from pydantic import ValidationError

from agentrail_runtime.api.stateless import InvokeRequest
from agentrail_constructs.stateless import INVOKE_REQUEST_SCHEMA

ACCEPT, REJECT = True, False

#: (body, verdict): each body must get the same verdict from API Gateway's model and from pydantic.
SAMPLE_BODIES: list[tuple[Any, bool]] = [
    ({"message": "What is the capital of France?"}, ACCEPT),
    ({"message": "hi", "model": "bedrock:amazon.nova-lite-v1:0"}, ACCEPT),
    ({"message": "  padded on both sides  "}, ACCEPT),
    ({"message": "héllo wörld ✓"}, ACCEPT),
    ({"message": "x" * 8000}, ACCEPT),
    ({"message": "é" * 8000}, ACCEPT),
    ({"message": "hi", "model": "m" * 200}, ACCEPT),
    ({"message": "hi", "model": None}, ACCEPT),
    ({"message": "x" * 8001}, REJECT),
    ({"message": ""}, REJECT),
    ({"message": "   \n\t "}, REJECT),
    ({"message": None}, REJECT),
    ({"message": 42}, REJECT),
    ({"message": True}, REJECT),
    ({"message": ["hi"]}, REJECT),
    ({"message": {"text": "hi"}}, REJECT),
    ({}, REJECT),
    ({"model": "local"}, REJECT),
    ({"message": "hi", "stream": True}, REJECT),
    ({"message": "hi", "model": ""}, REJECT),
    ({"message": "hi", "model": "   "}, REJECT),
    ({"message": "hi", "model": "m" * 201}, REJECT),
    ({"message": "hi", "model": 7}, REJECT),
    ([{"message": "hi"}], REJECT),
    ("hi", REJECT),
    (None, REJECT),
]


@pytest.fixture(scope="module")
def gateway_schema(stateless_template: Template) -> dict[str, Any]:
    """The JSON schema of the synthesized ``AWS::ApiGateway::Model`` of ``POST /invoke``."""
    models = stateless_template.find_resources("AWS::ApiGateway::Model")
    assert len(models) == 1
    schema = next(iter(models.values()))["Properties"]["Schema"]
    Draft4Validator.check_schema(schema)
    return schema


def pydantic_limits(name: str) -> tuple[int, int]:
    metadata = InvokeRequest.model_fields[name].metadata
    (min_length,) = [m.min_length for m in metadata if isinstance(m, MinLen)]
    (max_length,) = [m.max_length for m in metadata if isinstance(m, MaxLen)]
    return min_length, max_length


def test_gateway_requires_exactly_the_fields_pydantic_requires(gateway_schema: dict[str, Any]) -> None:
    required = {name for name, field in InvokeRequest.model_fields.items() if field.is_required()}

    assert set(gateway_schema["required"]) == required == {"message"}


def test_gateway_knows_the_same_fields_and_refuses_unknown_ones_like_pydantic(gateway_schema: dict[str, Any]) -> None:
    assert set(gateway_schema["properties"]) == set(InvokeRequest.model_fields) == set(INVOKE_REQUEST_SCHEMA)
    assert gateway_schema["additionalProperties"] is False
    assert InvokeRequest.model_config.get("extra") == "forbid"


@pytest.mark.parametrize("name", sorted(INVOKE_REQUEST_SCHEMA))
def test_length_limits_are_the_same_in_the_construct_the_template_and_pydantic(
    gateway_schema: dict[str, Any], name: str
) -> None:
    synthesized = gateway_schema["properties"][name]

    expected = pydantic_limits(name)

    assert (INVOKE_REQUEST_SCHEMA[name]["min_length"], INVOKE_REQUEST_SCHEMA[name]["max_length"]) == expected
    assert (synthesized["minLength"], synthesized["maxLength"]) == expected


@pytest.mark.parametrize(
    ("body", "verdict"), SAMPLE_BODIES, ids=[json.dumps(body)[:40] for body, _ in SAMPLE_BODIES]
)
def test_gateway_and_handler_give_the_same_verdict(gateway_schema: dict[str, Any], body: Any, verdict: bool) -> None:
    # The body travels as JSON text; both sides see what json.loads makes of it.
    parsed = json.loads(json.dumps(body))

    gateway_accepts = Draft4Validator(gateway_schema).is_valid(parsed)
    try:
        InvokeRequest.model_validate(parsed)
        handler_accepts = True
    except ValidationError:
        handler_accepts = False

    assert (gateway_accepts, handler_accepts) == (verdict, verdict)
