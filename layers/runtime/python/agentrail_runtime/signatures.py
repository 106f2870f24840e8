"""Signed webhooks: HMAC-SHA256 over ``<timestamp>.<body>``, verified with a timestamp tolerance.

Header: ``X-Agentrail-Signature: t=<unix seconds>,v1=<hex digest>``. The same
scheme signs outgoing task notifications and verifies incoming approval
decisions from chat tools.

Outgoing task notifications are signed with a key of their own per task owner,
derived from the deployment's signing secret (:func:`receiver_secret`): one
receiver's key neither verifies nor forges another owner's notifications.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import NamedTuple

SIGNATURE_HEADER = "X-Agentrail-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


#: Exactly ``t=<unix seconds>,v1=<64 lowercase hex>``: no other order, no extra field, no leading zero.
_HEADER = re.compile(r"^t=(?P<t>[1-9][0-9]{0,11}),v1=(?P<v1>[0-9a-f]{64})$")


class InvalidSignature(Exception):
    """Missing, malformed, forged, stale or replayed signature."""


class SignedHeader(NamedTuple):
    """A signature header's two parts: together they are the replay cache's key."""

    timestamp: int
    digest: str


def parse_header(header: str | None) -> SignedHeader:
    """The parts of a signature header, parsed strictly, so one signature has one spelling.

    Raises
    ------
    InvalidSignature
        When the header is missing or is not exactly ``t=<unix seconds>,v1=<hex digest>``.
    """
    if not header:
        raise InvalidSignature("missing signature")
    match = _HEADER.match(header)
    if match is None:
        raise InvalidSignature("malformed signature")
    return SignedHeader(int(match["t"]), match["v1"])


#: Binds derived keys to their use, so a key derived here is never valid for another purpose of the same secret.
_RECEIVER_KEY_LABEL = b"agentrail task webhook v1\x00"


def receiver_secret(master: bytes, owner: str) -> str:
    """The signing key of ``owner``'s task webhooks: HMAC-SHA256 of the owner under the deployment's secret.

    HMAC is a pseudorandom function, so keys of different owners are independent, and one key reveals
    neither the secret nor another key. Rotating the secret changes every owner's key.

    Returns
    -------
    str
        ``whsec_`` and 64 hex digits; a receiver verifies with its UTF-8 bytes.
    """
    return "whsec_" + hmac.new(master, _RECEIVER_KEY_LABEL + owner.encode(), hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(secret: bytes, header: str | None, body: bytes, *, now: int, tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> int:
    """Check a signature header (parsed by :func:`parse_header`) and return its timestamp.

    Raises
    ------
    InvalidSignature
        When the header is missing or malformed, the digest does not match, or
        the timestamp is further than ``tolerance`` seconds from ``now``.
    """
    signed = parse_header(header)
    if abs(now - signed.timestamp) > tolerance:
        raise InvalidSignature("stale timestamp")
    if not hmac.compare_digest(sign(secret, signed.timestamp, body), signed.digest):
        raise InvalidSignature("signature mismatch")
    return signed.timestamp


__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "InvalidSignature",
    "SignedHeader",
    "parse_header",
    "receiver_secret",
    "sign",
    "signature_header",
    "verify",
]
