"""Guardrails: guards on user messages, tool results and answers (prompt injection, PII, deny-lists)."""

from agentrail_runtime.guardrails.base import (
    DEFAULT_REFUSAL,
    Guard,
    GuardAction,
    GuardBlocked,
    GuardDecision,
    GuardEvent,
    GuardPipeline,
    GuardStage,
    PipelineDecision,
)
from agentrail_runtime.guardrails.builtin import builtin_input_guards, builtin_output_guards, builtin_tool_result_guards
from agentrail_runtime.guardrails.deny import DenyListGuard
from agentrail_runtime.guardrails.injection import PromptInjectionGuard
from agentrail_runtime.guardrails.pii import PiiGuard, Recognizer, default_recognizers

__all__ = [
    "DEFAULT_REFUSAL",
    "DenyListGuard",
    "Guard",
    "GuardAction",
    "GuardBlocked",
    "GuardDecision",
    "GuardEvent",
    "GuardPipeline",
    "GuardStage",
    "PiiGuard",
    "PipelineDecision",
    "PromptInjectionGuard",
    "Recognizer",
    "builtin_input_guards",
    "builtin_output_guards",
    "builtin_tool_result_guards",
    "default_recognizers",
]
