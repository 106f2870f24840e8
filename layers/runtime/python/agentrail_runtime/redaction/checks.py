"""The checks that confirm a recognizer's candidate with python-stdnum and ``phonenumbers``: loaded (with those
libraries) on the first candidate one confirms, see :class:`~agentrail_runtime.redaction.recognizers.LibraryCheck`."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from stdnum import iban, luhn
from stdnum.es import dni
from stdnum.us import ssn

_NON_DIGITS = re.compile(r"\D")


def card(candidate: str) -> bool:
    """13-19 digits that pass the Luhn check."""
    digits = _NON_DIGITS.sub("", candidate)
    return 13 <= len(digits) <= 19 and bool(luhn.is_valid(digits))


def iban_number(candidate: str) -> bool:
    """An IBAN whose mod-97 check holds."""
    return bool(iban.is_valid(candidate))


def us_ssn(candidate: str) -> bool:
    """A US social security number python-stdnum accepts."""
    return bool(ssn.is_valid(candidate))


def es_dni(candidate: str) -> bool:
    """A Spanish DNI whose check letter holds."""
    return bool(dni.is_valid(candidate))


@lru_cache(maxsize=1024)
def phone(candidate: str, region: str) -> bool:
    """A number ``phonenumbers`` parses as valid (international, or national to ``region``); the answers for the last
    1,024 candidates are kept (parsing is the dearest check, and texts repeat numbers)."""
    if not 7 <= len(_NON_DIGITS.sub("", candidate)) <= 15:
        return False
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)))
    except phonenumbers.NumberParseException:
        return False


__all__ = ["card", "es_dni", "iban_number", "phone", "us_ssn"]
