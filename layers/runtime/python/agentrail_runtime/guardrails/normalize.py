"""Undo the tricks that hide words from a pattern: invisible characters, compatibility forms and look-alike letters."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

#: Characters that render as nothing: zero-width spaces and joiners, word joiner, invisible operators, BOM, soft hyphen.
INVISIBLE = frozenset("\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff")
#: Cyrillic and Greek letters that look like Latin ones (the confusables attackers use), mapped to those.
HOMOGLYPHS = {
    **dict(
        zip(
            "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u04bb\u0501\u051b\u051d\u043a\u043c\u0442\u043d\u0432\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0423\u0406\u0408\u0405",
            "aeopcyxijshdqwkmthbABEKMHOPCTXYIJS",
            strict=True,
        )
    ),
    **dict(
        zip(
            "\u03b1\u03b2\u03b5\u03b7\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7\u03b3\u03c9\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7",
            "abenikvoptuxywABEZHIKMNOPTYX",
            strict=True,
        )
    ),
}
_TRANSLATION = {ord(c): None for c in INVISIBLE} | {ord(k): v for k, v in HOMOGLYPHS.items()}
#: Unicode tag characters (U+E0020-E007E) mirror ASCII invisibly ("ASCII smuggling").
_TAGS = re.compile("[\U000e0020-\U000e007e]+")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
#: Every byte but a-z and 0-9: deleting them gives the compact form of an ASCII text at C speed.
_NON_ALNUM_BYTES = bytes(b for b in range(256) if not (0x61 <= b <= 0x7A or 0x30 <= b <= 0x39))
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_HEX_RUN = re.compile(r"(?:(?:\\x|0x)?[0-9A-Fa-f]{2}[\s:]?){8,}")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}:?")
_HEX_NOISE = re.compile(r"\\x|0x|[\s:]")


@dataclass(frozen=True)
class Normalized:
    """A text as the patterns read it.

    Attributes
    ----------
    plain:
        Tag characters decoded, invisible characters removed, NFKC, look-alike letters folded (case kept).
    words:
        ``plain`` case-folded, whitespace runs as one space.
    compact:
        ``words`` with only ``a-z`` and ``0-9``: spacing and punctuation tricks disappear.
    smuggled:
        The text that tag characters carried, decoded ("" when none).
    """

    plain: str
    words: str
    compact: str
    smuggled: str


def normalize(text: str) -> Normalized:
    """The forms of ``text`` the patterns read (see :class:`Normalized`)."""
    if text.isascii():
        words = " ".join(text.casefold().split())
        return Normalized(plain=text, words=words, compact=words.encode().translate(None, _NON_ALNUM_BYTES).decode(), smuggled="")
    smuggled = ""
    if _TAGS.search(text):
        smuggled = "".join(chr(ord(c) - 0xE0000) for run in _TAGS.findall(text) for c in run)
        text = _TAGS.sub(lambda m: " " + "".join(chr(ord(c) - 0xE0000) for c in m.group()) + " ", text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text.translate(_TRANSLATION)).translate(_TRANSLATION)
    words = " ".join(text.casefold().split())
    return Normalized(plain=text, words=words, compact=_NON_ALNUM.sub("", words), smuggled=smuggled)


def _readable(raw: bytes) -> str | None:
    """``raw`` as text when it reads as text (UTF-8, letters, no control characters), else ``None``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not any(c.isalpha() for c in text):
        return None
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text):
        return None
    return text


def _spaced_hex(tokens: list[str]) -> list[str]:
    """Runs of 8 or more tokens that are each one hex byte (``49 67 6e ...``), joined by spaces."""
    runs, current = [], []
    for token in tokens:
        if len(token) <= 3 and _HEX_PAIR.fullmatch(token):
            current.append(token)
            continue
        if len(current) >= 8:
            runs.append(" ".join(current))
        current = []
    if len(current) >= 8:
        runs.append(" ".join(current))
    return runs


def decoded_payloads(text: str) -> list[str]:
    """The readable texts that base64 runs (16+ characters) and hex runs (8+ bytes, ``\\x``, ``0x``, spaces or
    colons between bytes allowed) of ``text`` decode to."""
    found: list[str] = []
    tokens = text.split()
    # Regular expressions that may start anywhere cost a scan each: only tokens long enough to hold a run are read,
    # and the hex pattern only where eight two-digit tokens in a row (or an escaped run) may be.
    long_tokens = [token for token in tokens if len(token) >= 16]
    spaced = _spaced_hex(tokens)
    for match in (m for token in long_tokens for m in _BASE64_RUN.finditer(token)):
        run = match.group().rstrip("=")
        run = run[: len(run) - len(run) % 4] if len(run) % 4 == 1 else run
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4))
        except (binascii.Error, ValueError):
            continue
        readable = _readable(raw)
        if readable is not None:
            found.append(readable)
    for match in (m for token in [*long_tokens, *spaced] for m in _HEX_RUN.finditer(token)):
        digits = _HEX_NOISE.sub("", match.group())
        try:
            raw = bytes.fromhex(digits[: len(digits) - len(digits) % 2])
        except ValueError:
            continue
        readable = _readable(raw)
        if readable is not None:
            found.append(readable)
    return found


__all__ = ["HOMOGLYPHS", "INVISIBLE", "Normalized", "decoded_payloads", "normalize"]
