"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>`` with a timestamp tolerance."""

from __future__ import annotations

import pytest

from agentrail_runtime.signatures import InvalidSignature, SignedHeader, parse_header, sign, signature_header, verify

SECRET = b"whsec-3b9f0c7e1d2a4c6e8f0a1b3c5d7e9f10"
BODY = b'{"status": "succeeded", "task_id": "8d1e5b7c2a9f4e3d8c6b1a0f9e7d5c3b"}'
NOW = 1_795_860_014


def test_a_signature_made_with_the_secret_verifies_and_returns_its_timestamp():
    header = signature_header(SECRET, NOW, BODY)

    assert verify(SECRET, header, BODY, now=NOW + 30) == NOW


def test_the_header_carries_the_timestamp_and_a_hex_sha256_digest():
    header = signature_header(SECRET, NOW, BODY)

    timestamp, digest = header.split(",")
    assert timestamp == f"t={NOW}"
    assert digest.startswith("v1=") and len(digest) == 3 + 64
    assert digest == f"v1={sign(SECRET, NOW, BODY)}"


@pytest.mark.parametrize(
    ("header", "body"),
    [
        (signature_header(b"another-secret", NOW, BODY), BODY),
        (signature_header(SECRET, NOW, BODY), BODY.replace(b"succeeded", b"failed")),
        (f"t={NOW + 1},v1={sign(SECRET, NOW, BODY)}", BODY),
        (f"t={NOW},v1={'0' * 64}", BODY),
    ],
    ids=["other-secret", "tampered-body", "moved-timestamp", "zero-digest"],
)
def test_a_forged_signature_is_rejected(header, body):
    with pytest.raises(InvalidSignature, match="signature mismatch"):
        verify(SECRET, header, body, now=NOW)


@pytest.mark.parametrize("age", [301, 3600, -301], ids=["just-stale", "an-hour-old", "from-the-future"])
def test_a_signature_outside_the_tolerance_is_rejected_even_if_genuine(age):
    header = signature_header(SECRET, NOW, BODY)

    with pytest.raises(InvalidSignature, match="stale timestamp"):
        verify(SECRET, header, BODY, now=NOW + age)


def test_the_tolerance_is_configurable():
    header = signature_header(SECRET, NOW, BODY)

    assert verify(SECRET, header, BODY, now=NOW + 3000, tolerance=3600) == NOW
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, BODY, now=NOW + 20, tolerance=10)


@pytest.mark.parametrize(
    "header",
    [
        f"v1={sign(SECRET, NOW, BODY)}",
        f"t={NOW}",
        f"t=yesterday,v1={sign(SECRET, NOW, BODY)}",
        "garbage",
        ",,,",
    ],
    ids=["no-timestamp", "no-digest", "non-numeric-timestamp", "garbage", "commas"],
)
def test_a_malformed_header_is_rejected(header):
    with pytest.raises(InvalidSignature, match="malformed signature"):
        verify(SECRET, header, BODY, now=NOW)


@pytest.mark.parametrize("header", [None, ""], ids=["none", "empty"])
def test_a_missing_header_is_rejected(header):
    with pytest.raises(InvalidSignature, match="missing signature"):
        verify(SECRET, header, BODY, now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        f"v1={sign(SECRET, NOW, BODY)},t={NOW}",
        f"t={NOW},v1={sign(SECRET, NOW, BODY)},v0=extra",
        f"t=0{NOW},v1={sign(SECRET, NOW, BODY)}",
        f"t={NOW},v1={sign(SECRET, NOW, BODY).upper()}",
        f" t={NOW},v1={sign(SECRET, NOW, BODY)}",
    ],
    ids=["reordered", "extra-field", "leading-zero-timestamp", "uppercase-digest", "leading-space"],
)
def test_a_genuine_signature_spelled_any_other_way_is_malformed_so_one_signature_has_one_spelling(header):
    # Given a header that carries a genuine timestamp and digest, but not as signature_header writes them
    # When it is verified
    # Then it is malformed: a replay cannot slip past the cache under a new spelling
    with pytest.raises(InvalidSignature, match="malformed signature"):
        verify(SECRET, header, BODY, now=NOW)


def test_the_parsed_header_is_the_timestamp_and_the_digest():
    header = signature_header(SECRET, NOW, BODY)

    assert parse_header(header) == SignedHeader(NOW, sign(SECRET, NOW, BODY))
