"""Callback URLs a caller may give ``POST /tasks``: public https hosts only (no SSRF into the VPC or IMDS)."""

from __future__ import annotations

import pytest
from agentrail_runtime.tasks.webhook import InvalidCallbackUrl, validate_callback_url


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/agentrail", "https://hooks.example.com:8443/a?b=c", "https://52.94.236.248/hook"],
    ids=["host", "port-and-query", "public-ip"],
)
def test_a_public_https_url_is_accepted_unchanged(url):
    assert validate_callback_url(url) == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/agentrail", "must use https"),
        ("ftp://hooks.example.com/agentrail", "absolute http"),
        ("hooks.example.com/agentrail", "absolute http"),
        ("https:///no-host", "absolute http"),
        ("https://localhost/hook", "must not point at this host"),
        ("https://169.254.169.254/latest/meta-data/", "private, loopback or link-local"),
        ("https://127.0.0.1/hook", "private, loopback or link-local"),
        ("https://10.0.12.7/hook", "private, loopback or link-local"),
        ("https://192.168.1.20/hook", "private, loopback or link-local"),
        ("https://[::1]/hook", "private, loopback or link-local"),
        ("https://[fd00:ec2::254]/hook", "private, loopback or link-local"),
        ("https://224.0.0.1/hook", "private, loopback or link-local"),
    ],
    ids=[
        "http",
        "ftp",
        "relative",
        "no-host",
        "localhost",
        "imds",
        "loopback",
        "10/8",
        "192.168/16",
        "ipv6-loopback",
        "ipv6-imds",
        "multicast",
    ],
)
def test_a_url_that_could_reach_internal_addresses_is_refused(url, problem):
    with pytest.raises(InvalidCallbackUrl, match=problem):
        validate_callback_url(url)


def test_local_mode_allows_http_and_loopback_but_still_not_the_metadata_service():
    assert validate_callback_url("http://127.0.0.1:8787/hook", allow_insecure=True) == "http://127.0.0.1:8787/hook"
    assert validate_callback_url("http://localhost:8787/hook", allow_insecure=True) == "http://localhost:8787/hook"
    with pytest.raises(InvalidCallbackUrl):
        validate_callback_url("http://169.254.169.254/latest/meta-data/", allow_insecure=True)


def test_the_refusal_does_not_echo_the_url():
    with pytest.raises(InvalidCallbackUrl) as refused:
        validate_callback_url("https://169.254.169.254/secret-path")

    assert "secret-path" not in str(refused.value)
