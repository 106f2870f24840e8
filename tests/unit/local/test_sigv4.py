"""SigV4 verification of the local gateway, against requests signed by the API client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from agentrail_cli.client import IamAuth
from agentrail_local.apigateway.auth import (
    DEFAULT_PRINCIPALS,
    LocalPrincipal,
    SignatureError,
    TokenError,
    jwt_claims,
    verify_sigv4,
)

ALICE, BOB = DEFAULT_PRINCIPALS[:2]
URL = "http://127.0.0.1:3000/v1/invoke?b=2&a=1"


def _signed(principal: LocalPrincipal, body: bytes = b'{"message": "hi"}', url: str = URL) -> httpx.Request:
    request = httpx.Request("POST", url, content=body, headers={"Content-Type": "application/json"})
    flow = IamAuth.from_keys(principal.access_key_id, principal.secret_access_key).auth_flow(request)
    return next(flow)


def _verify(request: httpx.Request, *, body: bytes | None = None, now: datetime | None = None) -> LocalPrincipal:
    return verify_sigv4(
        method=request.method,
        url=str(request.url),
        headers=dict(request.headers),
        body=request.content if body is None else body,
        principals=DEFAULT_PRINCIPALS,
        now=now,
    )


def test_a_request_signed_by_a_local_principal_is_attributed_to_it() -> None:
    assert _verify(_signed(ALICE)) == ALICE
    assert _verify(_signed(BOB)) == BOB


def test_a_request_without_authorization_is_missing_a_token() -> None:
    request = httpx.Request("POST", URL, content=b"{}")

    with pytest.raises(SignatureError) as error:
        _verify(request)

    assert error.value.missing


def test_a_tampered_body_does_not_match_the_signature() -> None:
    request = _signed(ALICE)

    with pytest.raises(SignatureError, match="does not match") as error:
        _verify(request, body=b'{"message": "changed"}')

    assert not error.value.missing


def test_a_signature_made_with_the_wrong_secret_is_invalid() -> None:
    impostor = LocalPrincipal("mallory", ALICE.access_key_id, "not-the-secret")

    with pytest.raises(SignatureError, match="does not match"):
        _verify(_signed(impostor))


def test_an_unknown_access_key_is_invalid() -> None:
    stranger = LocalPrincipal("stranger", "AKIDUNKNOWN", "secret")

    with pytest.raises(SignatureError, match="security token"):
        _verify(_signed(stranger))


def test_a_signature_older_than_five_minutes_has_expired() -> None:
    request = _signed(ALICE)

    with pytest.raises(SignatureError, match="expired"):
        _verify(request, now=datetime.now(UTC) + timedelta(minutes=6))


def test_a_signature_scoped_to_another_service_is_invalid() -> None:
    request = httpx.Request("GET", URL)
    signed = next(IamAuth(ALICE.credentials(), service="s3").auth_flow(request))

    with pytest.raises(SignatureError, match="execute-api"):
        _verify(signed)


def test_jwt_claims_are_read_without_verification_and_garbage_is_refused() -> None:
    token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LTEiLCJjb2duaXRvOnVzZXJuYW1lIjoiYWRhIn0.sig"

    assert jwt_claims(token) == {"sub": "u-1", "cognito:username": "ada"}
    assert jwt_claims("Bearer " + token)["sub"] == "u-1"
    with pytest.raises(TokenError):
        jwt_claims("not-a-token")
