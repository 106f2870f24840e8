"""The one way to build an :class:`~agentrail_runtime.agent.loop.Agent` from a definition: a function's service and
an eval's in-process target run the same agent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.loop import Agent
from agentrail_runtime.agent.tools import DryRunCall, Tool
from agentrail_runtime.guardrails.base import GuardPipeline
from agentrail_runtime.metering.pricing import PriceTable
from agentrail_runtime.models.base import ModelProvider


@dataclass(frozen=True)
class GuardPipelines:
    """A definition's guards as the three pipelines an agent runs; build them once and share them between agents."""

    input: GuardPipeline
    tool_result: GuardPipeline
    output: GuardPipeline

    @classmethod
    def of(cls, definition: AgentDefinition) -> GuardPipelines:
        return cls(
            input=GuardPipeline(definition.input_guards, stage="input"),
            tool_result=GuardPipeline(definition.tool_result_guards, stage="tool_result"),
            output=GuardPipeline(definition.output_guards, stage="output"),
        )


def system_prompt_of(definition: AgentDefinition, override: str | None = None, *, client: Any = None) -> str:
    """The system prompt's text: ``override`` when given, else the definition's (a Bedrock prompt is read now,
    through ``client``: call it once, at cold start)."""
    return override or definition.prompt_text(client=client)


def build_agent(
    definition: AgentDefinition,
    *,
    model: ModelProvider,
    system_prompt: str,
    max_steps: int,
    token_budget: int,
    max_output_tokens: int,
    max_tool_result_bytes: int,
    prices: PriceTable,
    version: str | None = None,
    guards: GuardPipelines | None = None,
    extra_tools: Sequence[Tool] = (),
    dry_run: list[DryRunCall] | None = None,
) -> Agent:
    """The agent of ``definition`` on ``model``, under the given limits and prices.

    Parameters
    ----------
    system_prompt:
        The prompt's text (:func:`system_prompt_of`).
    version:
        The agent version annotated on its traces. Default: none.
    guards:
        The definition's pipelines, built once (:meth:`GuardPipelines.of`). Default: built now.
    extra_tools:
        Join the definition's tools (hand-offs).
    dry_run:
        With a list (a shadow run), tools with side effects never run: they return their dry-run result, and each
        such call is appended to it.
    """
    guards = guards or GuardPipelines.of(definition)
    tools = [*definition.tools, *extra_tools]
    if dry_run is not None:
        tools = [t.in_dry_run(dry_run) for t in tools]
    return Agent(
        model=model,
        tools=tools,
        system_prompt=system_prompt,
        max_steps=max_steps,
        token_budget=token_budget,
        max_output_tokens=max_output_tokens,
        max_tool_result_bytes=max_tool_result_bytes,
        prices=prices,
        name=definition.name,
        version=version,
        input_guards=guards.input,
        tool_result_guards=guards.tool_result,
        output_guards=guards.output,
        refusal=definition.refusal,
    )


__all__ = ["GuardPipelines", "build_agent", "system_prompt_of"]
