"""Caller authentication for the local API Gateway: SigV4 against local principals, Cognito JWT claims, API keys and usage plans."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from agentrail_local.account import ACCOUNT_ID, REGION
from agentrail_local.apigateway.responses import GatewayRejection

if TYPE_CHECKING:
    # Types only: the CLI imports this module for the local principals and must not load the template reader.
    from agentrail_local.apigateway.model import ApiKey, Method, RestApi, Stage

#: API Gateway refuses a signature dated more than five minutes from its clock.
MAX_CLOCK_SKEW = timedelta(minutes=5)
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,\s*"
    r"SignedHeaders=(?P<headers>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class LocalPrincipal:
    """An IAM user that exists only in local mode; sign requests with its keys to act as it."""

    name: str
    access_key_id: str
    secret_access_key: str

    @property
    def user_id(self) -> str:
        # IAM user ids start with AIDA; derive a stable one from the name.
        return "AIDA" + hashlib.sha256(self.name.encode()).hexdigest()[:17].upper()

    @property
    def user_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:user/{self.name}"

    def credentials(self) -> Credentials:
        return Credentials(self.access_key_id, self.secret_access_key)

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "user_arn": self.user_arn,
        }


#: The local principal that ``agentrail local`` makes the approver (CDK context ``approvers``).
APPROVER = "agentrail-approver"
#: Local-only credentials: they open nothing but this machine's local mode. The first is the default caller.
DEFAULT_PRINCIPALS: tuple[LocalPrincipal, ...] = (
    LocalPrincipal("agentrail-local", "AKIDLOCALAGENTRAIL", "agentrail-local-secret-key-not-for-aws"),
    LocalPrincipal("agentrail-other", "AKIDLOCALOTHER", "agentrail-other-secret-key-not-for-aws"),
    LocalPrincipal(APPROVER, "AKIDLOCALAPPROVER", "agentrail-approver-secret-key-not-for-aws"),
)


class SignatureError(Exception):
    """A request failed SigV4 verification.

    Attributes
    ----------
    missing:
        True when the request carries no signature at all (API Gateway's
        ``MISSING_AUTHENTICATION_TOKEN``); otherwise it is ``INVALID_SIGNATURE``.
    """

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


def verify_sigv4(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    principals: Iterable[LocalPrincipal],
    region: str = REGION,
    service: str = "execute-api",
    now: datetime | None = None,
) -> LocalPrincipal:
    """Check a SigV4 ``Authorization`` header the way API Gateway does, and return the signer.

    ``url`` must be the URL as the client addressed it (scheme, the ``Host``
    header's value, raw path and query), since that is what was signed.

    Raises
    ------
    SignatureError
        When the signature is missing, malformed, from an unknown key, for
        another Region or service, too old, or does not match.
    """
    authorization = _header(headers, "Authorization")
    if not authorization:
        raise SignatureError("Missing Authentication Token", missing=True)
    match = _AUTHORIZATION.match(authorization)
    if match is None:
        raise SignatureError("Authorization header requires Credential, SignedHeaders and Signature.")
    principal = next((p for p in principals if p.access_key_id == match["key"]), None)
    if principal is None:
        raise SignatureError("The security token included in the request is invalid.")
    if match["region"] != region or match["service"] != service:
        raise SignatureError(f"Credential should be scoped to a valid region and service '{service}'.")
    amz_date = _header(headers, "X-Amz-Date")
    if not amz_date:
        raise SignatureError("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError("X-Amz-Date is not in ISO 8601 basic format.") from None
    if not amz_date.startswith(match["date"]):
        raise SignatureError("Credential date does not match X-Amz-Date.")
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureError("Signature expired: the request time is more than 5 minutes from the server time.")
    signed_names = match["headers"].split(";")
    signed_headers: dict[str, str] = {}
    for name in signed_names:
        value = _header(headers, name)
        if value is None:
            raise SignatureError(f"Signed header {name} is missing from the request.")
        signed_headers[name] = value
    claimed_hash = _header(headers, "X-Amz-Content-SHA256")
    if claimed_hash and claimed_hash != _UNSIGNED_PAYLOAD and claimed_hash != hashlib.sha256(body).hexdigest():
        raise SignatureError("The provided x-amz-content-sha256 header does not match what was computed.")
    request = AWSRequest(method=method, url=url, data=body, headers=signed_headers)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(principal.credentials(), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureError(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return principal


class TokenError(Exception):
    """The bearer token is not a readable JWT."""


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, *without* verifying its signature.

    Local mode only: the local gateway trusts any well-formed token, so tests
    and developers can act as any user. API Gateway verifies the signature
    against the user pool's keys.

    Raises
    ------
    TokenError
        When ``token`` is not three base64url parts with a JSON object in the middle.
    """
    token = token.removeprefix("Bearer ").strip()
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("not a JWT")
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        raise TokenError("unreadable JWT payload") from None
    if not isinstance(claims, dict):
        raise TokenError("JWT payload is not an object")
    return claims


# -- the gateway's authorization steps: each refuses with the gateway response API Gateway gives ----------


def signed_principal(
    *, method: str, url: str, headers: dict[str, str], body: bytes, principals: tuple[LocalPrincipal, ...]
) -> LocalPrincipal:
    """The local principal that signed an ``AWS_IAM`` request.

    Raises
    ------
    GatewayRejection
        ``MISSING_AUTHENTICATION_TOKEN`` without a signature, ``INVALID_SIGNATURE`` with a wrong one.
    """
    try:
        return verify_sigv4(method=method, url=url, headers=headers, body=body, principals=principals)
    except SignatureError as error:
        if error.missing:
            raise GatewayRejection("MISSING_AUTHENTICATION_TOKEN") from None
        raise GatewayRejection("INVALID_SIGNATURE", str(error)) from None


def cognito_claims(method: Method, headers: dict[str, str]) -> dict[str, str]:
    """The claims of a ``COGNITO_USER_POOLS`` request's token, as strings; ``UNAUTHORIZED`` when refused."""
    source = str((method.authorizer or {}).get("IdentitySource", "method.request.header.Authorization"))
    claims = _unexpired_claims(headers, source, expired_message="The incoming token has expired")
    pools = [str(arn).rsplit("/", 1)[-1] for arn in (method.authorizer or {}).get("ProviderARNs", ())]
    issuer = str(claims.get("iss", ""))
    if pools and not any(issuer.endswith("/" + pool) for pool in pools):
        raise GatewayRejection("UNAUTHORIZED")
    if method.authorization_scopes:
        # With scopes API Gateway takes access tokens only: an ID token carries no scopes, and its audience is unchecked.
        if claims.get("token_use") != "access":
            raise GatewayRejection("UNAUTHORIZED")
        granted = set(str(claims.get("scope", "")).split())
        if not granted & set(method.authorization_scopes):
            raise GatewayRejection("UNAUTHORIZED")
    return {k: v if isinstance(v, str) else json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in claims.items()}


def _unexpired_claims(
    headers: dict[str, str], source: str, *, bearer: bool = False, expired_message: str | None = None
) -> dict[str, Any]:
    """The claims of the token in the header ``source`` names (``...header.Authorization``), refused
    (``UNAUTHORIZED``) when missing, malformed or expired; ``bearer``: the value may start ``Bearer ``."""
    header = source.rsplit(".", 1)[-1]
    token = next((v for k, v in headers.items() if k.lower() == header.lower()), None)
    if not token:
        raise GatewayRejection("UNAUTHORIZED")
    try:
        claims = jwt_claims(token.removeprefix("Bearer ").strip() if bearer else token)
    except TokenError:
        raise GatewayRejection("UNAUTHORIZED") from None
    if "exp" in claims and float(claims["exp"]) < time.time():
        raise GatewayRejection("UNAUTHORIZED", expired_message)
    return claims


def jwt_authorizer_claims(method: Method, headers: dict[str, str]) -> dict[str, Any]:
    """The claims of an HTTP API ``JWT`` route's token, as an HTTP API's JWT authorizer checks them: issuer, audience
    (``aud``, else ``client_id``: a Cognito access token has no ``aud``), expiry and the route's scopes.

    Raises
    ------
    GatewayRejection
        ``UNAUTHORIZED`` when refused.
    """
    authorizer = method.authorizer or {}
    source = str((authorizer.get("IdentitySource") or ["$request.header.Authorization"])[0])
    claims = _unexpired_claims(headers, source, bearer=True)
    config = authorizer.get("JwtConfiguration") or {}
    if config.get("Issuer") and str(claims.get("iss", "")) != str(config["Issuer"]):
        raise GatewayRejection("UNAUTHORIZED")
    audience = {str(a) for a in config.get("Audience") or ()}
    aud = claims.get("aud", claims.get("client_id"))
    offered = {str(a) for a in (aud if isinstance(aud, list) else [aud]) if a is not None}
    if audience and not audience & offered:
        raise GatewayRejection("UNAUTHORIZED")
    if method.authorization_scopes:
        granted = set(str(claims.get("scope", "")).split())
        if not granted & set(method.authorization_scopes):
            raise GatewayRejection("ACCESS_DENIED")
    return claims


def admitted_api_key(api: RestApi, headers: dict[str, str], stage: Stage) -> ApiKey:
    """The API key of a request that needs one, counted against its usage plan.

    Raises
    ------
    GatewayRejection
        ``INVALID_API_KEY``, ``THROTTLED`` or ``QUOTA_EXCEEDED``.
    """
    value = next((v for k, v in headers.items() if k.lower() == "x-api-key"), None)
    key = api.api_keys.get(value or "")
    if key is None or not key.enabled:
        raise GatewayRejection("INVALID_API_KEY")
    plans = [p for p in api.usage_plans if key.id in p.key_ids and (api.api_id, stage.name) in p.stages]
    if not plans:
        raise GatewayRejection("INVALID_API_KEY")
    refused = plans[0].admit(key.id)
    if refused:
        raise GatewayRejection(refused)
    return key


__all__ = [
    "APPROVER",
    "DEFAULT_PRINCIPALS",
    "LocalPrincipal",
    "SignatureError",
    "TokenError",
    "admitted_api_key",
    "cognito_claims",
    "jwt_authorizer_claims",
    "jwt_claims",
    "signed_principal",
    "verify_sigv4",
]
