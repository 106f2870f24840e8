"""API Gateway request models, generated from the runtime's pydantic models (never written by hand).

``request_models.json`` is written by ``make schemas``
(``python -m agentrail_runtime.api.gateway_models``) and checked by a unit test;
this module only reads it and hands CDK the draft-04 schema of one model.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from aws_cdk import aws_apigateway as apigw

_SUBSCHEMA = {"items", "not", "additionalProperties"}
_SUBSCHEMA_LISTS = {"anyOf", "allOf", "oneOf"}


@cache
def request_models() -> dict[str, dict[str, Any]]:
    """Model name (the runtime's pydantic class) → draft-04 JSON schema."""
    text = resources.files("agentrail_constructs").joinpath("request_models.json").read_text(encoding="utf-8")
    return json.loads(text)


def request_model(name: str) -> apigw.JsonSchema:
    """The API Gateway schema of the runtime's request model ``name``, e.g. ``InvokeRequest``."""
    models = request_models()
    if name not in models:
        raise KeyError(f"no generated request model {name!r}; known: {', '.join(models)} (run `make schemas`)")
    return json_schema(models[name])


def json_schema(schema: dict[str, Any]) -> apigw.JsonSchema:
    """A JSON schema document as CDK's :class:`~aws_cdk.aws_apigateway.JsonSchema` (which renders it back unchanged)."""
    kwargs: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$schema":
            kwargs["schema"] = apigw.JsonSchemaVersion.DRAFT4
        elif key == "type":
            kinds = [getattr(apigw.JsonSchemaType, kind.upper()) for kind in ([value] if isinstance(value, str) else value)]
            kwargs["type"] = kinds[0] if isinstance(value, str) else kinds
        elif key == "properties":
            kwargs["properties"] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA and isinstance(value, dict):
            kwargs["not_" if key == "not" else _snake(key)] = json_schema(value)
        elif key in _SUBSCHEMA_LISTS:
            kwargs[_snake(key)] = [json_schema(sub) for sub in value]
        else:
            kwargs[_snake(key)] = value
    return apigw.JsonSchema(**kwargs)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


__all__ = ["json_schema", "request_model", "request_models"]
