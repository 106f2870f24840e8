"""Callback URLs a caller may give ``POST /tasks``: public https hosts only (no SSRF into the VPC or IMDS)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from agentrail_runtime.tasks.webhook import (
    CallbackHostUnresolvable,
    CallbackPolicy,
    InvalidCallbackUrl,
    validate_callback_url,
)

PUBLIC = "52.94.236.248"


class Dns:
    """A resolver with fixed answers (this machine has no DNS) that records what it was asked."""

    def __init__(self, answers: dict[str, Sequence[str]] | None = None) -> None:
        self.answers = {"hooks.example.com": [PUBLIC], "localhost": ["127.0.0.1", "::1"], **(answers or {})}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError("Name or service not known")
        return self.answers[host]


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/agentrail", "https://hooks.example.com:8443/a?b=c", "https://52.94.236.248/hook"],
    ids=["host", "port-and-query", "public-ip"],
)
def test_a_public_https_url_is_accepted_unchanged(url):
    assert validate_callback_url(url, resolver=Dns()) == url


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
        validate_callback_url(url, resolver=Dns())


def test_local_mode_allows_http_and_loopback_but_still_not_the_metadata_service():
    assert (
        validate_callback_url("http://127.0.0.1:8787/hook", allow_insecure=True, resolver=Dns()) == "http://127.0.0.1:8787/hook"
    )
    assert (
        validate_callback_url("http://localhost:8787/hook", allow_insecure=True, resolver=Dns()) == "http://localhost:8787/hook"
    )
    with pytest.raises(InvalidCallbackUrl):
        validate_callback_url("http://169.254.169.254/latest/meta-data/", allow_insecure=True, resolver=Dns())


def test_the_refusal_does_not_echo_the_url():
    with pytest.raises(InvalidCallbackUrl) as refused:
        validate_callback_url("https://169.254.169.254/secret-path", resolver=Dns())

    assert "secret-path" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["https://2852039166/hook", "https://127.1/", "https://0x7f.1/hook", "https://0177.0.0.1/hook", "https://10.1./hook"],
    ids=["decimal", "short-dotted", "hex", "octal", "trailing-dot"],
)
def test_a_host_written_as_a_number_is_refused_without_being_resolved(url):
    dns = Dns()

    with pytest.raises(InvalidCallbackUrl, match="not a number"):
        validate_callback_url(url, resolver=dns)
    assert dns.asked == []


@pytest.mark.parametrize(
    ("url", "answers"),
    [
        ("https://169.254.169.254.nip.io/latest/meta-data/", ["169.254.169.254"]),
        ("https://internal.example.com/hook", ["10.0.12.7"]),
        ("https://split.example.com/hook", [PUBLIC, "192.168.1.20"]),
        ("https://mapped.example.com/hook", ["::ffff:169.254.169.254"]),
        ("https://nat64.example.com/hook", ["64:ff9b::a9fe:a9fe"]),
        ("https://sixtofour.example.com/hook", ["2002:7f00:1::1"]),
        ("https://scoped.example.com/hook", ["fe80::1%eth0"]),
    ],
    ids=["wildcard-dns-to-imds", "private", "one-of-two-private", "ipv4-mapped", "nat64", "6to4", "link-local-with-zone"],
)
def test_a_name_with_any_internal_address_is_refused(url, answers):
    host = url.split("/")[2]

    with pytest.raises(InvalidCallbackUrl, match="private, loopback or link-local"):
        validate_callback_url(url, resolver=Dns({host: answers}))


@pytest.mark.parametrize(
    "url",
    ["https://[::ffff:127.0.0.1]/hook", "https://[::ffff:a9fe:a9fe]/hook", "https://[64:ff9b::7f00:1]/hook"],
    ids=["ipv4-mapped-loopback", "ipv4-mapped-imds", "nat64-loopback"],
)
def test_an_ipv6_literal_carrying_an_internal_ipv4_address_is_refused(url):
    with pytest.raises(InvalidCallbackUrl, match="private, loopback or link-local"):
        validate_callback_url(url, resolver=Dns())


@pytest.mark.parametrize("url", ["https://localhost./hook", "https://LOCALHOST/hook", "https://api.localhost/hook"])
def test_localhost_is_refused_in_any_spelling(url):
    with pytest.raises(InvalidCallbackUrl, match="must not point at this host"):
        validate_callback_url(url, resolver=Dns())


def test_a_host_that_does_not_resolve_is_refused_as_unresolvable():
    with pytest.raises(CallbackHostUnresolvable, match="does not resolve"):
        validate_callback_url("https://nowhere.example.com/hook", resolver=Dns())


def test_the_vetted_target_names_the_address_to_connect_to_and_the_host_to_present():
    target = CallbackPolicy(resolver=Dns({"hooks.example.com": [PUBLIC, "52.94.236.249"]})).vet(
        "https://Hooks.Example.com.:8443/agentrail"
    )

    assert (target.host, target.port, target.address) == ("hooks.example.com", 8443, PUBLIC)


def test_an_allow_list_admits_its_domains_and_their_subdomains_only():
    dns = Dns({"example.com": [PUBLIC], "evil-example.com": [PUBLIC], "example.com.evil.net": [PUBLIC]})
    policy = CallbackPolicy(allowed_domains=["Example.com"], resolver=dns)

    assert policy.vet("https://example.com/hook").host == "example.com"
    assert policy.vet("https://hooks.example.com/hook").host == "hooks.example.com"
    for outside in ("https://evil-example.com/hook", "https://example.com.evil.net/hook"):
        with pytest.raises(InvalidCallbackUrl, match="not in the allowed callback domains"):
            policy.vet(outside)
    with pytest.raises(InvalidCallbackUrl, match="not an address"):
        policy.vet(f"https://{PUBLIC}/hook")
    assert "evil-example.com" not in dns.asked


@pytest.mark.parametrize(
    "url",
    ["Http://\u00c0WF\\]x/hook", "https://[hooks.example.com/hook", "https://hooks]example.com/hook"],
    ids=["stray-bracket-found-by-the-fuzzer", "unclosed-bracket", "closing-bracket"],
)
def test_a_url_with_a_stray_bracket_in_its_host_is_an_invalid_callback_url_not_a_crash(url):
    with pytest.raises(InvalidCallbackUrl, match="absolute http"):
        validate_callback_url(url, resolver=Dns())
