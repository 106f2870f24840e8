"""Redaction of personal and secret data in texts and JSON-like data: what log lines and stored records pass through.

A text with none of the recognizers' hints (``@``, the few words a token or key starts with) and no run of four
digits costs one regular-expression search (:meth:`~agentrail_runtime.redaction.recognizers.Redactor.may_hold`).
The recognizers (:mod:`agentrail_runtime.redaction.recognizers`) are built, their patterns compiled, on the first
text; ``phonenumbers`` and ``python-stdnum`` load on the first candidate a check confirms (a long enough run of
digits), so a function that never logs or stores such a text never loads them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentrail_runtime.redaction.recognizers import Redactor

#: Integers shorter than this hold no number a recognizer finds (phone numbers have 7 digits or more).
_SMALLEST_NUMBER = 1_000_000


@lru_cache(maxsize=1)
def default_redactor() -> Redactor:
    """The redactor of the built-in recognizers, built on first use and shared: the log formatter, the stores and
    every :class:`~agentrail_runtime.guardrails.pii.PiiGuard` without recognizers of its own use this one."""
    recognizers = importlib.import_module("agentrail_runtime.redaction.recognizers")
    redactor: Redactor = recognizers.Redactor()
    return redactor


#: Texts up to this long are remembered (the last 4,096), with or without a candidate: log lines repeat their
#: messages, model ids, tool names and counts, and a lookup costs less than the quick check.
_REMEMBERED_CHARS = 256


def redact(text: str) -> str:
    """``text`` with each value the built-in recognizers find replaced by ``[REDACTED:<kind>]``."""
    if len(text) <= _REMEMBERED_CHARS:
        return _redact_short(text)
    return _redact(text)


def _redact(text: str) -> str:
    redactor = default_redactor()
    return redactor.redact(text)[0] if redactor.may_hold(text) else text


_redact_short = lru_cache(maxsize=4096)(_redact)


def redact_data(value: Any, *, keep: Collection[str] = (), text: Callable[[str], str] | None = None) -> Any:
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string redacted, and every integer long
    enough to be a card or phone number that holds one replaced by its marker; the values of the keys in ``keep``
    (ids, names) stay as they are, at any depth. Other objects are redacted as their ``str`` (what ``json.dumps(...,
    default=str)`` writes). ``text``: what is done to each string (the log formatter masks secrets too). Default:
    :func:`redact`."""
    text = text or redact
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {k: v if k in keep else redact_data(v, keep=keep, text=text) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v, keep=keep, text=text) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        if abs(value) < _SMALLEST_NUMBER:
            return value
        redacted = text(str(value))
        return value if redacted == str(value) else redacted
    return text(str(value))


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


__all__ = ["RECORD_KEYS_KEPT", "default_redactor", "redact", "redact_data", "redact_record"]
