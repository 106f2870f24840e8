"""An SSL-only bucket's policy in local mode: its functions reach moto over HTTP on loopback, where their AWS calls
would use TLS, so the ``aws:SecureTransport: false`` deny CDK's ``enforceSSL`` writes must not deny them; any other
deny still does."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto.iam.access_control import PermissionResult
from moto.s3.models import FakeBucket, s3_backends

from agentrail_local.awslambda.moto_seam import _get_permission

NAME = "agentrail-ssl-only-seam"
ARN = f"arn:aws:s3:::{NAME}"
SSL_ONLY = {
    "Action": "s3:*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Resource": [ARN, f"{ARN}/*"],
}


@pytest.fixture(autouse=True)
def _forget_the_bucket() -> Iterator[None]:
    # A FakeBucket registers its name in moto's global bucket index: a later test's moto account must not find it.
    yield
    s3_backends.bucket_accounts.pop(NAME, None)


def bucket_with(*statements: dict) -> FakeBucket:
    bucket = FakeBucket(NAME, account_id="123456789012", region_name="us-east-1")
    bucket.policy = json.dumps({"Version": "2012-10-17", "Statement": list(statements)}).encode()
    return bucket


def test_the_ssl_only_deny_does_not_deny_local_modes_requests_though_moto_alone_would() -> None:
    bucket = bucket_with(SSL_ONLY)

    assert bucket.get_permission("s3:PutObject", f"{ARN}/batch/x") == PermissionResult.DENIED  # moto, unpatched
    assert _get_permission(bucket, "s3:PutObject", f"{ARN}/batch/x") == PermissionResult.NEUTRAL
    assert json.loads(bucket.policy.decode())["Statement"] == [SSL_ONLY]  # the stored policy is untouched


def test_any_other_deny_of_the_bucket_still_denies() -> None:
    other = {"Action": "s3:DeleteObject", "Effect": "Deny", "Principal": {"AWS": "*"}, "Resource": f"{ARN}/*"}
    bucket = bucket_with(SSL_ONLY, other)

    assert _get_permission(bucket, "s3:DeleteObject", f"{ARN}/batch/x") == PermissionResult.DENIED
    assert _get_permission(bucket, "s3:GetObject", f"{ARN}/batch/x") == PermissionResult.NEUTRAL
