"""PII detection and redaction as a guard: the recognizers of :mod:`agentrail_runtime.redaction.recognizers`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentrail_runtime.guardrails.base import Guard, GuardDecision
from agentrail_runtime.redaction.recognizers import Recognizer, Redactor, default_recognizers, phone_check


class PiiGuard(Redactor, Guard):
    """Redacts personal and secret data: each found value becomes ``[REDACTED:<kind>]``; the reason lists the kinds
    (``pii.card_number,pii.email``).

    Parameters
    ----------
    recognizers:
        What to find. Default: :func:`default_recognizers`; add your own with
        ``PiiGuard(recognizers=(*default_recognizers(), Recognizer("employee_id", r"\\bE\\d{6}\\b")))``.
    block:
        Block instead of redact (reason ``pii.<kind>``). Default: ``False``.
    """

    name = "pii"

    def __init__(self, *, recognizers: Sequence[Recognizer] | None = None, block: bool = False) -> None:
        super().__init__(recognizers=recognizers)
        self.block = block

    def check(self, text: str) -> GuardDecision:
        redacted, kinds = self.redact(text)
        if not kinds:
            return GuardDecision.allow(text)
        reason = ",".join(f"pii.{kind}" for kind in kinds)
        return GuardDecision.block(text, reason) if self.block else GuardDecision.redact(redacted, reason)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "block": self.block,
            "recognizers": [[r.kind, r.pattern, getattr(r.check, "__qualname__", None)] for r in self.recognizers],
        }


__all__ = ["PiiGuard", "Recognizer", "default_recognizers", "phone_check"]
