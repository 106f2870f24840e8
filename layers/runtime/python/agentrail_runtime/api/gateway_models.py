"""API Gateway request models, generated from the OpenAPI documents the agent APIs already produce.

API Gateway validates a request body against a JSON Schema draft-04 model
before the function runs; the handler validates it again with pydantic. So the
two never drift, the models are derived from the pydantic models (through the
OpenAPI document Powertools builds from them), converted down to draft-04 by
:func:`draft4`, and written as package data of the CDK constructs::

    python -m agentrail_runtime.api.gateway_models constructs/agentrail_constructs/request_models.json

(``make schemas``). A unit test regenerates the file and fails when it is stale.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentrail_runtime.api import sessions, stateless, tasks
from agentrail_runtime.contract import DRAFT4, UnsupportedSchema, draft4


def request_bodies(document: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """``(METHOD, path)`` → (model name, draft-04 schema) of every operation of an OpenAPI document with a JSON body."""
    components = document.get("components", {}).get("schemas", {})
    bodies: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            schema = body["schema"]
            refs = [schema] if "$ref" in schema else [b for b in schema.get("anyOf", []) if "$ref" in b]
            if len(refs) != 1:
                raise UnsupportedSchema(f"{method.upper()} {path}: the body is not one pydantic model")
            name = refs[0]["$ref"].rsplit("/", 1)[-1]
            bodies[(method.upper(), path)] = (name, draft4(schema, components))
    return bodies


@contextmanager
def _placeholder_environment() -> Iterator[None]:
    """The resolvers are built offline: placeholder names, nothing is called; the environment is restored."""
    placeholders = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AGENT_SESSION_TABLE": "placeholder",
        "AGENT_TASK_TABLE": "placeholder",
        "AGENT_APPROVAL_TABLE": "placeholder",
        "AGENT_APPROVAL_AUDIT_TABLE": "placeholder",
    }
    saved = {key: os.environ.get(key) for key in placeholders}
    os.environ.update({key: value for key, value in placeholders.items() if saved[key] is None})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def openapi_documents() -> dict[str, dict[str, Any]]:
    """The OpenAPI document of each agent API, by pattern: ``stateless``, ``stateful`` and ``async``.

    ``model`` stays open here: these documents make the request models every deployment shares, and which models a
    function serves is its own configuration (its served document lists them; an unknown one is 400 ``unknown_model``).
    """
    with _placeholder_environment():
        return {
            "stateless": stateless.create_stateless_app()
            .get_openapi_schema(closed_models=False)
            .model_dump(mode="json", by_alias=True, exclude_none=True),
            "stateful": sessions.create_sessions_app()
            .get_openapi_schema(closed_models=False)
            .model_dump(mode="json", by_alias=True, exclude_none=True),
            "async": tasks.create_tasks_app()
            .get_openapi_schema(closed_models=False)
            .model_dump(mode="json", by_alias=True, exclude_none=True),
        }


def gateway_models() -> dict[str, dict[str, Any]]:
    """Model name → draft-04 schema of every request body of every agent API (what the constructs ship)."""
    models: dict[str, dict[str, Any]] = {}
    for document in openapi_documents().values():
        for name, schema in request_bodies(document).values():
            if models.setdefault(name, schema) != schema:
                raise UnsupportedSchema(f"{name} has two different body schemas")
    return dict(sorted(models.items()))


def render(models: Mapping[str, Any]) -> str:
    """The file's exact text: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(models, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m agentrail_runtime.api.gateway_models <output.json>", file=sys.stderr)
        return 2
    Path(args[0]).write_text(render(gateway_models()), encoding="utf-8")
    print(f"wrote {args[0]}")
    return 0


__all__ = ["DRAFT4", "UnsupportedSchema", "draft4", "gateway_models", "main", "openapi_documents", "render", "request_bodies"]

if __name__ == "__main__":
    raise SystemExit(main())
