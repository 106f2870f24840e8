"""The built-in guard sets for each stage, to put on an agent definition as they are or as a start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agentrail_runtime.guardrails.base import Guard
from agentrail_runtime.guardrails.deny import DenyListGuard
from agentrail_runtime.guardrails.injection import PromptInjectionGuard
from agentrail_runtime.guardrails.pii import PiiGuard


def builtin_input_guards() -> tuple[Guard, ...]:
    """User messages: the prompt-injection heuristics (a block answers 400 with the reason code)."""
    return (PromptInjectionGuard(),)


def builtin_tool_result_guards() -> tuple[Guard, ...]:
    """Tool results: the prompt-injection heuristics (indirect injection), then PII redaction."""
    return (PromptInjectionGuard(), PiiGuard())


def builtin_output_guards(*, topics: Sequence[str] = (), patterns: Mapping[str, str] | None = None) -> tuple[Guard, ...]:
    """Answers: PII redaction, then a deny-list of ``topics`` and ``patterns`` (see :class:`DenyListGuard`)."""
    guards: list[Guard] = [PiiGuard()]
    if topics or patterns:
        guards.append(DenyListGuard(topics=topics, patterns=patterns))
    return tuple(guards)


__all__ = ["builtin_input_guards", "builtin_output_guards", "builtin_tool_result_guards"]
