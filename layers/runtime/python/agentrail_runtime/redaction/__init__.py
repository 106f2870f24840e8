"""Redaction of personal and secret data in texts and JSON-like data: what log lines and stored records pass through.

A text with no digit, no ``@`` and none of the few words a token or key starts with costs one regular-expression
search. The recognizers (:mod:`agentrail_runtime.redaction.recognizers`) are built on the first text that may hold
something; ``phonenumbers`` and ``python-stdnum`` load on the first candidate a check confirms (a long enough run of
digits), so a function that never logs or stores such a text never loads them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Collection
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentrail_runtime.redaction.recognizers import Redactor

#: What every match of a built-in recognizer holds (a necessary condition, never a sufficient one): a digit (the
#: number recognizers and most keys), ``@`` (emails), two colons (IPv6), or the start of a token, key or assignment.
#: Searched in the lowered text; the look-ahead skips, at C speed, every position no alternative can start at.
_CANDIDATE = re.compile(
    r"(?=[\d@:pgxs_ate])(?:[\d@]|:[0-9a-f]{0,4}:|private key|gh[pousr]_|github_pat_|xox[abprs]-|sk-|_live_|_test_|aiza"
    r"|eyj|secret|passw|pwd|api[_-]?key|token|akia|asia|abia|acca|aroa|aida)"
)
#: Integers shorter than this hold no number a recognizer finds (phone numbers have 7 digits or more).
_SMALLEST_NUMBER = 1_000_000


def may_hold_pii(text: str) -> bool:
    """Whether ``text`` may hold something the built-in recognizers find (``False``: it certainly holds nothing)."""
    return _CANDIDATE.search(text.lower()) is not None


@lru_cache(maxsize=1)
def default_redactor() -> Redactor:
    """The redactor of the built-in recognizers, built on first use and shared: the log formatter, the stores and
    every :class:`~agentrail_runtime.guardrails.pii.PiiGuard` without recognizers of its own use this one."""
    recognizers = importlib.import_module("agentrail_runtime.redaction.recognizers")
    redactor: Redactor = recognizers.Redactor()
    return redactor


#: Texts up to this long are remembered (the last 4,096): log lines repeat model ids, tool names and counts.
_REMEMBERED_CHARS = 256


def redact(text: str) -> str:
    """``text`` with each value the built-in recognizers find replaced by ``[REDACTED:<kind>]``."""
    if not _CANDIDATE.search(text.lower()):
        return text
    if len(text) <= _REMEMBERED_CHARS:
        return _redact_short(text)
    return default_redactor().redact(text)[0]


@lru_cache(maxsize=4096)
def _redact_short(text: str) -> str:
    return default_redactor().redact(text)[0]


def redact_data(value: Any, *, keep: Collection[str] = ()) -> Any:
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string redacted, and every integer long
    enough to be a card or phone number that holds one replaced by its marker; the values of the keys in ``keep``
    (ids, names) stay as they are, at any depth. Other objects are redacted as their ``str`` (what ``json.dumps(...,
    default=str)`` writes)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: v if k in keep else redact_data(v, keep=keep) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v, keep=keep) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        if abs(value) < _SMALLEST_NUMBER:
            return value
        redacted = redact(str(value))
        return value if redacted == str(value) else redacted
    return redact(str(value))


#: Keys of stored records (turns, checkpoints, task results) whose values are ids, names and enums, never text a
#: user, a model or a tool wrote: :func:`redact_record` keeps them.
RECORD_KEYS_KEPT = frozenset(
    {"id", "tool_use_id", "message_id", "type", "role", "name", "tool", "model", "status", "outcome", "agent_version"}
)


def redact_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record (a model's ``model_dump(mode="json")``) with what users, models and tools wrote redacted:
    :func:`redact_data`, keeping :data:`RECORD_KEYS_KEPT`."""
    redacted: dict[str, Any] = redact_data(record, keep=RECORD_KEYS_KEPT)
    return redacted


__all__ = ["RECORD_KEYS_KEPT", "default_redactor", "may_hold_pii", "redact", "redact_data", "redact_record"]
