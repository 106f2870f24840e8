"""A deny-list of topics and patterns: an answer that touches one is blocked."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agentrail_runtime.guardrails.base import Guard, GuardDecision
from agentrail_runtime.guardrails.normalize import normalize


class DenyListGuard(Guard):
    """Blocks a text that mentions a denied topic (reason ``deny_list.topic``) or matches a denied pattern (reason
    ``deny_list.<code>``).

    Topics are words or phrases, matched whole, case-insensitively, on the normalized text (look-alike letters and
    invisible characters don't hide them). Patterns are regular expressions matched on the text as it is.

    Parameters
    ----------
    topics:
        Words or phrases, e.g. ``("competitor pricing", "internal roadmap")``. Default: none.
    patterns:
        Reason code -> regular expression, e.g. ``{"ticket_id": r"\\bINC-\\d{6}\\b"}``. Default: none.
    """

    name = "deny_list"

    def __init__(self, *, topics: Sequence[str] = (), patterns: Mapping[str, str] | None = None) -> None:
        self.topics = tuple(topics)
        self.patterns = dict(patterns or {})
        words = [r"\s+".join(re.escape(w) for w in normalize(t).words.split()) for t in self.topics]
        self._topics = re.compile(rf"\b(?:{'|'.join(words)})\b") if words else None
        self._patterns = {code: re.compile(p) for code, p in self.patterns.items()}

    def check(self, text: str) -> GuardDecision:
        for code, pattern in self._patterns.items():
            if pattern.search(text):
                return GuardDecision.block(text, f"deny_list.{code}")
        if self._topics is not None and self._topics.search(normalize(text).words):
            return GuardDecision.block(text, "deny_list.topic")
        return GuardDecision.allow(text)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "topics": list(self.topics), "patterns": self.patterns}


__all__ = ["DenyListGuard"]
