"""Guardrails: guards on user messages, tool results and answers (prompt injection, PII, deny-lists)."""

from agentrail_runtime.guardrails.base import (
    Guard,
    GuardAction,
    GuardBlocked,
    GuardDecision,
    GuardEvent,
    GuardPipeline,
    GuardStage,
    PipelineDecision,
)
from agentrail_runtime.guardrails.injection import PromptInjectionGuard

__all__ = [
    "Guard",
    "GuardAction",
    "GuardBlocked",
    "GuardDecision",
    "GuardEvent",
    "GuardPipeline",
    "GuardStage",
    "PipelineDecision",
    "PromptInjectionGuard",
]
