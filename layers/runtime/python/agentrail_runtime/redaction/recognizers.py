"""PII recognizers: an extensible set (a pattern, and a check where one exists), and the redactor that applies them.

Building them compiles their patterns and nothing more: the checks that need ``phonenumbers`` and ``python-stdnum``
(:mod:`agentrail_runtime.redaction.checks`) load on the first candidate one of them confirms, so a function whose
texts hold no candidate never loads those libraries (see :mod:`agentrail_runtime.redaction`).
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from types import ModuleType


@cache
def _checks() -> ModuleType:
    return importlib.import_module("agentrail_runtime.redaction.checks")


@dataclass(frozen=True)
class LibraryCheck:
    """The check ``name`` of :mod:`agentrail_runtime.redaction.checks`, loaded (with ``phonenumbers`` and
    ``python-stdnum``) on the first candidate it is asked about."""

    name: str

    def __call__(self, candidate: str) -> bool:
        result: bool = getattr(_checks(), self.name)(candidate)
        return result


@dataclass(frozen=True)
class PhoneCheck:
    """A candidate that ``phonenumbers`` parses as a valid number (international, or national to ``region``), loaded
    on the first candidate; the answers for the last 1,024 candidates are kept (parsing is the dearest check)."""

    region: str

    def __call__(self, candidate: str) -> bool:
        result: bool = _checks().phone(candidate, self.region)
        return result


@dataclass(frozen=True)
class Recognizer:
    """One kind of personal or secret data.

    Attributes
    ----------
    kind:
        Names it in the redaction marker (``[REDACTED:<kind>]``) and the reason code (``pii.<kind>``).
    pattern:
        Finds candidates; when it has a group, only the first group's text is redacted (``password=<value>``).
    check:
        Confirms a candidate (a checksum, a number plan): ``None`` takes every match.
    """

    kind: str
    pattern: str
    check: Callable[[str], bool] | None = None
    flags: int = 0
    #: Substrings, one of which every match holds (``"@"``, ``"token"``, ``"c++"``: plain text, matched without
    #: regard to case): the pattern only runs on a text that has one, and they make the redactor's quick check.
    hints: tuple[str, ...] = ()
    #: Like ``hints``, as regular expressions of the lowered text (``":[0-9a-f]{0,4}:"``).
    hint_patterns: tuple[str, ...] = ()
    #: The fewest digits a match holds in one run of digits and separators (``+``, ``(``, ``)``, ``.``, ``-``,
    #: ``:``, ``/``, spaces), and the separators it needs there: the pattern only runs on a text that has such a run.
    min_digits: int = 0
    needs: str = ""

    # Compiled on first use, not at import (a cold-start cost): most texts pass the redactor's quick check, and a
    # recognizer's own pattern runs only on a text that holds one of its hints or its digits.
    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern, self.flags)

    @cached_property
    def hinted(self) -> re.Pattern[str] | None:
        return re.compile("|".join(self.hint_alternatives)) if self.hint_alternatives else None

    @property
    def hint_alternatives(self) -> list[str]:
        """``hints`` (escaped, lowered) and ``hint_patterns``, as alternatives of one pattern of the lowered text."""
        return [re.escape(hint.lower()) for hint in self.hints] + list(self.hint_patterns)

    def find(self, text: str, lowered: str | None = None, runs: Sequence[str] | None = None) -> Iterable[tuple[int, int]]:
        """The spans of ``text`` to redact (``lowered``: ``text.lower()``, and ``runs``: ``_digit_runs``, for
        the gates, when the caller has them)."""
        if self.min_digits:
            runs = _digit_runs(text) if runs is None else runs
            if not any(_count_digits(run) >= self.min_digits and all(c in run for c in self.needs) for run in runs):
                return
        if self.hinted is not None:
            lowered = text.lower() if lowered is None else lowered
            if not self.hinted.search(lowered):
                return
        for match in self.regex.finditer(text):
            group = 1 if self.regex.groups else 0
            value = match.group(group)
            if self.check is None or self.check(value):
                yield match.span(group)


_DIGIT_RUN = re.compile(r"\d[\d ().:/+-]*")
_NON_DIGIT_BYTES = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)


def _digit_runs(text: str) -> list[str]:
    """The runs of digits and separators of ``text`` with 4 digits or more (what number recognizers may match)."""
    return [run for run in _DIGIT_RUN.findall(text) if _count_digits(run) >= 4]


def _count_digits(run: str) -> int:
    return len(run.encode().translate(None, _NON_DIGIT_BYTES))


def _ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def phone_check(region: str) -> Callable[[str], bool]:
    """A candidate that ``phonenumbers`` parses as a valid number (international, or national to ``region``)."""
    return PhoneCheck(region)


def default_recognizers(*, phone_region: str = "US") -> tuple[Recognizer, ...]:
    """The built-in recognizers, in the order they claim text (an earlier one wins an overlap).

    Emails; secret-like tokens (private keys, provider tokens such as ``ghp_``, ``xox?-``, ``sk-``, ``AIza``,
    JSON web tokens, and the value of a ``password=``/``token:``/``api_key=`` assignment); AWS access key ids; card
    numbers (13-19 digits, Luhn-checked); IBANs (mod-97 checked); national ids (US SSN, Spanish DNI, both checked by
    python-stdnum); IP addresses (v4 and v6, parsed); phone numbers (``phonenumbers``' number plans; national
    numbers are read as ``phone_region``'s).
    """
    return (
        Recognizer("email", r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b", hints=("@",)),
        Recognizer(
            "private_key",
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
            hints=("private key",),
        ),
        Recognizer(
            "secret_token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"
            r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35}|eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,})",
            hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "sk-", "_live_", "_test_", "aiza", "eyj"),
        ),
        Recognizer(
            "secret_token",
            r"\b(?:aws_secret_access_key|secret(?:_key)?|client_secret|password|passwd|pwd|api[_-]?key|access[_-]?token|token)"
            r"\b[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{8,})",
            flags=re.IGNORECASE,
            hints=("secret", "password", "passwd", "pwd", "api_key", "api-key", "apikey", "token"),
        ),
        Recognizer(
            "aws_access_key",
            r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[A-Z0-9]{16}\b",
            hints=("akia", "asia", "abia", "acca", "aroa", "aida"),
        ),
        Recognizer("card_number", r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", LibraryCheck("card"), min_digits=13),
        Recognizer(
            "iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", LibraryCheck("iban_number"), min_digits=6
        ),
        Recognizer("national_id", r"\b\d{3}-\d{2}-\d{4}\b", LibraryCheck("us_ssn"), min_digits=9, needs="-"),
        Recognizer("national_id", r"\b\d{8}-?[A-Z]\b", LibraryCheck("es_dni"), min_digits=8),
        Recognizer("ip_address", r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)", _ip, min_digits=4, needs="."),
        Recognizer(
            "ip_address",
            r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])",
            _ip,
            hint_patterns=(":[0-9a-f]{0,4}:",),
        ),
        Recognizer("phone", r"(?<![\w+(])(?:\+\s?)?\(?\d[\d ().-]{5,18}\d\b(?![.-]\d)", phone_check(phone_region), min_digits=7),
    )


def _candidate_pattern(recognizers: Sequence[Recognizer]) -> re.Pattern[str] | None:
    """What every match of one of ``recognizers`` holds, as one pattern (``None``: any text may hold one)."""
    hints: set[str] = set()
    digits: list[int] = []
    for recognizer in recognizers:
        if recognizer.hint_alternatives:
            hints.update(recognizer.hint_alternatives)
        elif recognizer.min_digits:
            digits.append(recognizer.min_digits)
        else:
            return None
    alternatives = sorted(hints)
    if digits:
        # ``min(digits)`` digits in one run of digits and separators (what ``_digit_runs`` counts).
        alternatives.append(rf"\d(?:[ ().:/+-]*\d){{{min(digits) - 1}}}")
    if not alternatives:
        return re.compile(r"(?!)")
    quick = "|".join(alternatives)
    if all(hint[0] not in _METACHARACTERS for hint in hints):
        # The look-ahead skips, at C speed, every position no alternative can start at (an escaped hint, or a
        # pattern, that starts with a metacharacter has no single first character: no look-ahead then).
        first = "".join(re.escape(start) for start in sorted({hint[0] for hint in hints})) + (r"\d" if digits else "")
        quick = f"(?=[{first}])(?:{quick})"
    return re.compile(quick)


_METACHARACTERS = frozenset("\\.^$*+?{}[]|()")


class Redactor:
    """Replaces each value its recognizers find with ``[REDACTED:<kind>]``.

    Parameters
    ----------
    recognizers:
        What to find. Default: :func:`default_recognizers`.
    """

    def __init__(self, *, recognizers: Sequence[Recognizer] | None = None) -> None:
        self.recognizers = tuple(recognizers) if recognizers is not None else default_recognizers()
        self._candidate = _candidate_pattern(self.recognizers)

    def may_hold(self, text: str) -> bool:
        """Whether ``text`` may hold something a recognizer finds (``False``: it certainly holds nothing): one
        search for any recognizer's hint, or a run of as many digits as the number recognizers need, in the lowered
        text. A recognizer with neither hints nor ``min_digits`` makes every text a candidate."""
        return self._candidate is None or self._candidate.search(text.lower()) is not None

    def findings(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, kind)`` of each value found, in text order; an earlier recognizer wins an overlap."""
        taken: list[tuple[int, int, str]] = []
        lowered, runs = text.lower(), _digit_runs(text)
        for recognizer in self.recognizers:
            for start, end in recognizer.find(text, lowered, runs):
                if all(end <= s or start >= e for s, e, _ in taken):
                    taken.append((start, end, recognizer.kind))
        return sorted(taken)

    def redact(self, text: str) -> tuple[str, list[str]]:
        """``text`` with every finding replaced by its marker, and the kinds found (sorted, once each)."""
        found = self.findings(text)
        if not found:
            return text, []
        parts, at = [], 0
        for start, end, kind in found:
            parts += [text[at:start], f"[REDACTED:{kind}]"]
            at = end
        parts.append(text[at:])
        return "".join(parts), sorted({kind for _, _, kind in found})


__all__ = ["LibraryCheck", "PhoneCheck", "Recognizer", "Redactor", "default_recognizers", "phone_check"]
