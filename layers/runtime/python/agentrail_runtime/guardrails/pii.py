"""PII detection and redaction as a guard: the recognizers of :mod:`agentrail_runtime.redaction.recognizers`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentrail_runtime.guardrails.base import Guard, GuardDecision
from agentrail_runtime.redaction import default_redactor
from agentrail_runtime.redaction.recognizers import Recognizer, Redactor, default_recognizers, phone_check


class PiiGuard(Guard):
    """Redacts personal and secret data: each found value becomes ``[REDACTED:<kind>]``; the reason lists the kinds
    (``pii.card_number,pii.email``).

    Parameters
    ----------
    recognizers:
        What to find. Default: :func:`default_recognizers`, the one set the log redactor uses too (built on the first
        text, shared by every guard); add your own with
        ``PiiGuard(recognizers=(*default_recognizers(), Recognizer("employee_id", r"\\bE\\d{6}\\b", min_digits=6)))``
        (``min_digits`` or ``hints`` gate a recognizer: see :class:`Recognizer`).
    block:
        Block instead of redact (reason ``pii.<kind>``). Default: ``False``.
    """

    name = "pii"

    def __init__(self, *, recognizers: Sequence[Recognizer] | None = None, block: bool = False) -> None:
        self._redactor = Redactor(recognizers=recognizers) if recognizers is not None else None
        self.block = block

    @property
    def redactor(self) -> Redactor:
        """What finds and replaces: the shared :func:`~agentrail_runtime.redaction.default_redactor`, or one of
        the guard's own recognizers."""
        return self._redactor if self._redactor is not None else default_redactor()

    def check(self, text: str) -> GuardDecision:
        if not self.redactor.may_hold(text):
            return GuardDecision.allow(text)
        redacted, kinds = self.redactor.redact(text)
        if not kinds:
            return GuardDecision.allow(text)
        reason = ",".join(f"pii.{kind}" for kind in kinds)
        return GuardDecision.block(text, reason) if self.block else GuardDecision.redact(redacted, reason)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "block": self.block,
            "recognizers": [[r.kind, r.pattern, _check_name(r.check)] for r in self.redactor.recognizers],
        }


def _check_name(check: Callable[[str], bool] | None) -> str | None:
    """A function's qualified name, or a check object's repr (its settings: ``PhoneCheck(region='GB')``)."""
    if check is None:
        return None
    name: str | None = getattr(check, "__qualname__", None)
    return name if name is not None else repr(check)


__all__ = ["PiiGuard", "Recognizer", "default_recognizers", "phone_check"]
