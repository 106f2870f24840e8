"""Callback URLs of task webhooks: only https to a public host (the signature scheme is in ``signatures``)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class InvalidCallbackUrl(ValueError):
    """A callback URL we refuse to call."""


def validate_callback_url(url: str, *, allow_insecure: bool = False) -> str:
    """Refuse callback URLs that would let a caller aim our functions at internal addresses.

    Only ``https`` to a public host; ``allow_insecure`` (local mode) also allows
    ``http`` and loopback.

    Raises
    ------
    InvalidCallbackUrl
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidCallbackUrl("callback_url must be an absolute http(s) URL")
    if parts.scheme == "http" and not allow_insecure:
        raise InvalidCallbackUrl("callback_url must use https")
    host = parts.hostname
    if host == "localhost" and not allow_insecure:
        raise InvalidCallbackUrl("callback_url must not point at this host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url
    if address.is_loopback and allow_insecure:
        return url
    if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved or address.is_multicast:
        raise InvalidCallbackUrl("callback_url must not point at a private, loopback or link-local address")
    return url
