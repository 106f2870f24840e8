"""The agent version: a short, stable hash of everything that changes how an agent behaves.

It is written once, here. Metrics carry it as a property (never a dimension) and traces as an annotation; the
delivery issue (14) stamps the same value at synth into ``AGENT_VERSION`` and reuses :func:`agent_version`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.prompts import BedrockPrompt
from agentrail_runtime.contract import StepKind
from agentrail_runtime.guardrails.base import DEFAULT_REFUSAL, describe_guards

#: Environment variable that, when set, is the version (stamped at synth) instead of the computed hash.
AGENT_VERSION_ENV = "AGENT_VERSION"
#: Hex characters of the SHA-256 kept: 48 bits, enough to tell the releases of one agent apart.
VERSION_CHARS = 12


class VersionedSettings(Protocol):
    """The settings that change behaviour (the runtime's ``RuntimeSettings`` is one)."""

    @property
    def system_prompt(self) -> str | None: ...

    @property
    def models(self) -> Sequence[str]: ...

    @property
    def max_steps(self) -> int: ...

    @property
    def token_budget(self) -> int: ...

    @property
    def max_output_tokens(self) -> int: ...

    @property
    def max_tool_result_bytes(self) -> int: ...

    @property
    def step_models(self) -> Mapping[StepKind, str]: ...


def version_inputs(definition: AgentDefinition, settings: VersionedSettings) -> dict[str, Any]:
    """What the version hashes, as plain JSON: the system prompt in use (the setting's override, else the
    definition's text, or its Bedrock prompt reference: ID or ARN, version and variant, never the text, which
    synth does not read), each tool's name, description, input schema and its ``side_effects``, ``terminal`` and
    approval flags, and its declared ``dry_run`` result (what a shadow run's model sees; only when declared, so a
    tool without one keeps its version), the models (in order: the first is the default) and the limits.

    Tools are sorted by name: their order changes nothing the agent may do, so reordering them keeps the version.
    An approval rule (a function) counts as ``"rule"``: its code cannot be hashed stably.

    The guards of each stage (in order: their order changes what they do, each as its ``describe()``) and the
    refusal are hashed under ``guards``, present only when an agent has a guard or a refusal of its own: an agent
    without guards keeps the version it had before guards existed.
    """
    tools = sorted(definition.tools, key=lambda t: t.name)
    inputs: dict[str, Any] = {
        "system_prompt": settings.system_prompt
        or (prompt.reference if isinstance(prompt := definition.system_prompt, BedrockPrompt) else prompt),
        "tools": [
            {
                "name": t.name,
                "description": t.description,
                "input_schema": t.spec.input_schema,
                "side_effects": t.side_effects,
                "terminal": t.terminal,
                "requires_approval": "rule" if callable(t.requires_approval) else bool(t.requires_approval),
                **({"dry_run": t.dry_run} if t.dry_run is not None else {}),
            }
            for t in tools
        ],
        "models": list(settings.models),
        "max_steps": settings.max_steps,
        "token_budget": settings.token_budget,
        "max_output_tokens": settings.max_output_tokens,
        "max_tool_result_bytes": settings.max_tool_result_bytes,
    }
    if settings.step_models:  # only when set: an agent without step models keeps its version
        inputs["step_models"] = dict(sorted(settings.step_models.items()))
    guards = {
        "input": describe_guards(definition.input_guards),
        "tool_result": describe_guards(definition.tool_result_guards),
        "output": describe_guards(definition.output_guards),
    }
    if any(guards.values()) or definition.refusal != DEFAULT_REFUSAL:
        inputs["guards"] = {**guards, "refusal": definition.refusal}
    return inputs


def agent_version(definition: AgentDefinition, settings: VersionedSettings) -> str:
    """The agent's version: ``AGENT_VERSION`` when set, else the first 12 hex characters of the SHA-256 of
    :func:`version_inputs` as canonical JSON (sorted keys, no spaces).

    Compute it once per execution environment (``AgentService`` does). The same inputs give the same version on
    every machine and run; changing any one of them changes it.

    Parameters
    ----------
    definition:
        The agent's prompt and tools.
    settings:
        The model choice and limits (``RuntimeSettings``).

    Returns
    -------
    str
        The version, e.g. ``"3f9a0c1b2d4e"``.
    """
    stamped = os.getenv(AGENT_VERSION_ENV, "").strip()
    if stamped:
        return stamped
    canonical = json.dumps(version_inputs(definition, settings), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_CHARS]


def prompt_references(definition: AgentDefinition, settings: VersionedSettings) -> list[dict[str, str | None]]:
    """The Bedrock prompts the agent reads at cold start (none when ``AGENT_SYSTEM_PROMPT`` overrides the
    definition's): what its function's role must be allowed to ``bedrock:GetPrompt``."""
    prompt = definition.system_prompt
    return [prompt.reference] if isinstance(prompt, BedrockPrompt) and not settings.system_prompt else []


__all__ = [
    "AGENT_VERSION_ENV",
    "VERSION_CHARS",
    "VersionedSettings",
    "agent_version",
    "prompt_references",
    "version_inputs",
]
