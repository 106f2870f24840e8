"""Callback URLs of task webhooks: only https to a host whose every address is global (the signature scheme is in ``signatures``).

A name is resolved and *each* of its addresses vetted; the notifier then
connects to the vetted address, so a DNS answer that changes between the check
and the connection (a rebind) cannot aim the call inside.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

#: ``resolver(host, port)``: every address of ``host``, as strings.
Resolver = Callable[[str, int], Sequence[str]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# A last label that a URL parser reads as a number makes the whole host an IPv4 address in some form
# (``2852039166``, ``127.1``, ``0x7f.1``): refused, so only the dotted form, checked below, names an address.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class InvalidCallbackUrl(ValueError):
    """A callback URL we refuse to call."""


class CallbackHostUnresolvable(InvalidCallbackUrl):
    """The callback URL's host has no address (now): at delivery, worth a retry."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address of ``host`` (``getaddrinfo``), in the resolver's order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class CallbackTarget:
    """A vetted callback: connect to ``address``, and present ``host`` in TLS (SNI, certificate) and ``Host``."""

    url: str
    host: str
    port: int
    address: str


def _unwrapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4): the one the packet reaches in the end."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_loopback: bool) -> bool:
    address = _unwrapped(address)
    if address.is_loopback:
        return not allow_loopback
    return not address.is_global or address.is_multicast or address.is_reserved or address.is_link_local


def _within(host: str, domains: Sequence[str]) -> bool:
    return any(host == domain or host.endswith("." + domain) for domain in domains)


@dataclass(frozen=True)
class CallbackPolicy:
    """Which callback URLs a deployment calls.

    Parameters
    ----------
    allow_insecure:
        Local mode only: also ``http`` and loopback addresses (never private or link-local ones).
    allowed_domains:
        When given, the host must be one of these domains or a subdomain of one, and IP literals are refused.
    resolver:
        Name resolution; tests inject one (the default asks the system resolver).
    """

    allow_insecure: bool = False
    allowed_domains: Sequence[str] = ()
    resolver: Resolver = resolve_host

    def vet(self, url: str) -> CallbackTarget:
        """Check ``url`` and pick the address to connect to. Messages never repeat the URL.

        Raises
        ------
        InvalidCallbackUrl
            When the URL is not absolute http(s), is http without ``allow_insecure``, names a number or a host
            outside ``allowed_domains``, or any address of its host is not global.
        CallbackHostUnresolvable
            When the host has no address.
        """
        try:
            parts = urlsplit(url)  # a stray "[" or "]" in the host is ValueError("Invalid IPv6 URL")
        except ValueError:
            raise InvalidCallbackUrl("callback_url must be an absolute http(s) URL") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise InvalidCallbackUrl("callback_url must be an absolute http(s) URL")
        if parts.scheme == "http" and not self.allow_insecure:
            raise InvalidCallbackUrl("callback_url must use https")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise InvalidCallbackUrl("callback_url has an invalid port") from None
        host = parts.hostname.rstrip(".")
        if (host == "localhost" or host.endswith(".localhost")) and not self.allow_insecure:
            raise InvalidCallbackUrl("callback_url must not point at this host")
        domains = [domain.lower().strip(".") for domain in self.allowed_domains]
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
                raise InvalidCallbackUrl(
                    "callback_url must name a host, not a number (write an address in dotted form)"
                ) from None
            if domains and not _within(host, domains):
                raise InvalidCallbackUrl("callback_url's host is not in the allowed callback domains") from None
            addresses = self._resolve(host, port)
        else:
            if domains:
                raise InvalidCallbackUrl("callback_url must name a host in the allowed callback domains, not an address")
        if any(_refused(address, allow_loopback=self.allow_insecure) for address in addresses):
            raise InvalidCallbackUrl("callback_url must not point at a private, loopback or link-local address")
        return CallbackTarget(url=url, host=host, port=port, address=str(addresses[0]))

    def _resolve(self, host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        try:
            # A scope id (fe80::1%eth0) names an interface, not another address.
            found = [ipaddress.ip_address(str(address).split("%", 1)[0]) for address in self.resolver(host, port)]
        except (OSError, UnicodeError, ValueError):
            found = []
        if not found:
            raise CallbackHostUnresolvable("callback_url's host does not resolve")
        return found


def validate_callback_url(
    url: str, *, allow_insecure: bool = False, allowed_domains: Sequence[str] = (), resolver: Resolver = resolve_host
) -> str:
    """Refuse callback URLs that would let a caller aim our functions at internal addresses; return ``url``.

    See :meth:`CallbackPolicy.vet`.

    Raises
    ------
    InvalidCallbackUrl
    """
    return CallbackPolicy(allow_insecure=allow_insecure, allowed_domains=allowed_domains, resolver=resolver).vet(url).url


__all__ = [
    "CallbackHostUnresolvable",
    "CallbackPolicy",
    "CallbackTarget",
    "InvalidCallbackUrl",
    "Resolver",
    "resolve_host",
    "validate_callback_url",
]
