"""The agent versions of functions not yet deployed: what ``AgentFunction`` stamps at synth, from a subprocess.

The constructs never import the runtime. To stamp ``AGENT_VERSION`` they run ``python -m agentrail_runtime.versions``
with one JSON request per function on standard input, and read one version per request on standard output. Each
request names the definition (``AGENT_DEFINITION``) and the function's ``AGENT_*`` settings; the answer is exactly
what :class:`~agentrail_runtime.service.AgentService` would compute from them in Lambda, with the Bedrock prompts the
agent reads at cold start (``"prompts"``: what the construct grants ``bedrock:GetPrompt`` on), whether a response
cache may serve it (``"response_cache"``: what the construct checks before it builds one), and the names of its tools
(``"tools"``: the batch lane refuses an agent with any). Nothing calls AWS.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from agentrail_runtime.agent.definition import load_definition
from agentrail_runtime.agent.version import AGENT_VERSION_ENV, agent_version, prompt_references
from agentrail_runtime.config import RuntimeSettings

_PREFIX = "AGENT_"


def version_for(environment: Mapping[str, str]) -> str:
    """The version of the agent a function with these ``AGENT_*`` variables runs (``AGENT_VERSION`` itself ignored).

    Raises
    ------
    ValueError
        The settings are invalid, or ``AGENT_DEFINITION`` names no AgentDefinition.
    """
    return str(answer_for(environment)["version"])


def answer_for(environment: Mapping[str, str]) -> dict[str, Any]:
    """``{"version": ..., "prompts": [...], "response_cache": {...}, "tools": [...]}`` of the agent a function with these
    ``AGENT_*`` variables runs: its version (:func:`version_for`), the Bedrock prompt references it reads at cold start
    (``bedrock_prompt``, ``version``, ``variant``), whether a response cache may serve it (``cacheable``; ``reason``,
    one sentence naming the tool that is not, or None; ``per_caller``: a tool reads the caller), and the names of its
    tools, in the definition's order.

    Raises
    ------
    ValueError
        As :func:`version_for`.
    """
    saved = {key: value for key, value in os.environ.items() if key.startswith(_PREFIX)}
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update({k: v for k, v in environment.items() if k.startswith(_PREFIX) and k != AGENT_VERSION_ENV})
        settings = RuntimeSettings()
        definition = load_definition(settings.definition)
        return {
            "version": agent_version(definition, settings),
            "prompts": prompt_references(definition, settings),
            "response_cache": {
                "cacheable": definition.cacheable,
                "reason": definition.not_cacheable_because,
                "per_caller": definition.cache_per_caller,
            },
            "tools": [tool.name for tool in definition.tools],
        }
    finally:
        for key in [key for key in os.environ if key.startswith(_PREFIX)]:
            del os.environ[key]
        os.environ.update(saved)


def versions_for(requests: Iterable[Mapping[str, str]]) -> list[dict[str, Any]]:
    """:func:`answer_for` of each request: ``{"version": ..., "prompts": [...]}``, or ``{"error": ...}`` naming what
    failed."""
    answers: list[dict[str, Any]] = []
    for environment in requests:
        try:
            answers.append(answer_for(environment))
        except Exception as error:  # one bad function must not hide the others' versions
            answers.append({"error": f"{type(error).__name__}: {error}"})
    return answers


def main() -> None:
    """Read a JSON list of environments on stdin, write the JSON list of their versions on stdout."""
    json.dump(versions_for(json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()

__all__ = ["answer_for", "main", "version_for", "versions_for"]
