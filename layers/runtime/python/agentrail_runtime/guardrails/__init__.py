"""Guardrails: guards on user messages, tool results and answers (prompt injection, PII, deny-lists).

The pipeline and its types load with the package; each built-in guard loads on first use, so a function whose agent
has no guards pays nothing for them at cold start. ``PiiGuard``'s ``phonenumbers`` and ``python-stdnum`` load later
still: with the first candidate one of its checks confirms (see :mod:`agentrail_runtime.redaction`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from agentrail_runtime.guardrails.bedrock import BedrockGuardrailGuard
    from agentrail_runtime.guardrails.builtin import (
        builtin_input_guards,
        builtin_output_guards,
        builtin_tool_result_guards,
    )
    from agentrail_runtime.guardrails.deny import DenyListGuard
    from agentrail_runtime.guardrails.injection import PromptInjectionGuard
    from agentrail_runtime.guardrails.pii import PiiGuard, Recognizer, default_recognizers

#: The names loaded on first use, and their modules.
_ON_FIRST_USE = {
    "builtin_input_guards": "builtin",
    "builtin_output_guards": "builtin",
    "builtin_tool_result_guards": "builtin",
    "BedrockGuardrailGuard": "bedrock",
    "DenyListGuard": "deny",
    "PromptInjectionGuard": "injection",
    "PiiGuard": "pii",
    "Recognizer": "pii",
    "default_recognizers": "pii",
}


def __getattr__(name: str) -> Any:
    module = _ON_FIRST_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_REFUSAL",
    "BedrockGuardrailGuard",
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
