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

SIGNATURE_HEADER = "X-Agentrail-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    """Missing, malformed, forged, stale or replayed signature."""


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
    """Check a signature header and return its timestamp.

    Raises
    ------
    InvalidSignature
        When the header is missing or malformed, the digest does not match, or
        the timestamp is further than ``tolerance`` seconds from ``now``.
    """
    if not header:
        raise InvalidSignature("missing signature")
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
        digest = parts["v1"]
    except (KeyError, ValueError):
        raise InvalidSignature("malformed signature") from None
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature("stale timestamp")
    if not hmac.compare_digest(sign(secret, timestamp, body), digest):
        raise InvalidSignature("signature mismatch")
    return timestamp


__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "InvalidSignature",
    "receiver_secret",
    "sign",
    "signature_header",
    "verify",
]
