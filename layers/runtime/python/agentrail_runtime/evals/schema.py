"""The JSON schema scorer's validator: ``jsonschema``, which the CLI's ``local`` extra installs.

The runtime's dependencies layer does not ship it (it is not needed to serve an agent); a function that scores
``json_schema`` cases adds ``jsonschema`` to its own dependencies. Without it, a dataset that uses the scorer fails
validation with this sentence, before any case runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

MISSING = (
    "the json_schema scorer needs the jsonschema package: pip install 'agentrail-aws[local]', "
    "or add jsonschema to the function's dependencies"
)


def _jsonschema() -> ModuleType:
    try:
        # By name: the runtime layer imports nothing its dependencies layer lacks until a dataset asks for it.
        return importlib.import_module("jsonschema")
    except ModuleNotFoundError:
        raise ValueError(MISSING) from None


def check_schema(schema: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``schema`` is a valid JSON schema (the draft its ``$schema`` names, else 2020-12)."""
    jsonschema = _jsonschema()
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as error:
        raise ValueError(f"not a valid JSON schema: {error.message}") from None


def schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every way ``instance`` breaks ``schema``, as ``path: message`` (empty when it conforms)."""
    jsonschema = _jsonschema()
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


__all__ = ["MISSING", "check_schema", "schema_errors"]
