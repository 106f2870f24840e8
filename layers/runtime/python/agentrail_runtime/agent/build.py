"""Building an agent from a definition: its guard pipelines, built once."""

from __future__ import annotations

from dataclasses import dataclass

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.guardrails.base import GuardPipeline


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


__all__ = ["GuardPipelines"]
