"""Delivering task notifications to callers' webhooks, signed with the owner's key (see :mod:`agentrail_runtime.tasks.webhook`)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from agentrail_runtime.aws import read_secret
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.observability import correlate, logger
from agentrail_runtime.signatures import SIGNATURE_HEADER, receiver_secret, signature_header
from agentrail_runtime.tasks.settings import WebhookSettings
from agentrail_runtime.tasks.webhook import CallbackHostUnresolvable, CallbackPolicy, CallbackTarget


class WebhookDeliveryFailed(Exception):
    """The receiver did not answer 2xx; raised so the delivery is retried, then dead-lettered."""


class WebhookNotifier:
    """Posts a finished task's summary to its callback URL, signed with the owner's key.

    The URL is vetted again at delivery (its name may resolve elsewhere by now), and the
    request goes to the vetted address, with the name kept for TLS (SNI and certificate
    check) and ``Host``. Connections are not reused, so one host's TLS session never
    carries another host's notification.

    Parameters
    ----------
    secret_id:
        Secrets Manager id of the deployment's signing secret (read through Powertools parameters, cached);
        each owner's key is derived from it (:func:`agentrail_runtime.signatures.receiver_secret`).
    callbacks:
        Which callback URLs to call. Default: ``CallbackPolicy(allow_insecure=allow_insecure)``.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        http_client: httpx.Client | None = None,
        allow_insecure: bool = False,
        callbacks: CallbackPolicy | None = None,
        clock: Clock = now,
    ) -> None:
        self.secret_id = secret_id
        self._http = http_client or httpx.Client(
            timeout=httpx.Timeout(10.0, connect=3.0), follow_redirects=False, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self.callbacks = callbacks or CallbackPolicy(allow_insecure=allow_insecure)
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> WebhookNotifier:
        if not settings.webhook_secret:
            raise ValueError("AGENT_TASK_WEBHOOK_SECRET must name the signing secret")
        return cls(settings.webhook_secret, callbacks=settings.callback_policy())

    def deliver(self, detail: dict[str, Any]) -> dict[str, Any]:
        """POST the notification once; raise :class:`WebhookDeliveryFailed` so that a failure is retried.

        Raises
        ------
        InvalidCallbackUrl
            The URL is refused (see :class:`CallbackPolicy`).
        WebhookDeliveryFailed
            The host does not resolve, is unreachable, or did not answer 2xx.
        """
        if detail.get("task_id"):
            correlate(detail.get("correlation_id"), task_id=str(detail["task_id"]))
        url = detail.get("callback_url")
        if not url:
            return {"delivered": False, "reason": "no callback_url"}
        if not detail.get("owner"):
            raise ValueError("the Task Finished event names no owner, whose key signs the notification")
        try:
            target = self.callbacks.vet(url)
        except CallbackHostUnresolvable:
            raise WebhookDeliveryFailed("webhook host does not resolve") from None
        payload = {
            key: detail.get(key)
            for key in ("task_id", "task_type", "status", "finished_at", "steps", "usage", "cost_usd", "error")
        }
        body = json.dumps(payload, sort_keys=True).encode()
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(self.secret_for(detail["owner"]).encode(), timestamp, body),
        }
        try:
            response = self._post(target, body, headers)
        except httpx.TransportError as error:
            raise WebhookDeliveryFailed(f"webhook unreachable ({type(error).__name__})") from None
        if not 200 <= response.status_code < 300:
            raise WebhookDeliveryFailed(f"webhook answered HTTP {response.status_code}")
        logger.info("webhook delivered", extra={"event": "webhook_delivered", "task_id": payload["task_id"]})
        return {"delivered": True, "status_code": response.status_code}

    def secret_for(self, owner: str) -> str:
        """The key ``owner``'s receivers verify with (``GET /webhooks/secret`` serves it to them)."""
        return receiver_secret(read_secret(self.secret_id).encode(), owner)

    def _post(self, target: CallbackTarget, body: bytes, headers: dict[str, str]) -> httpx.Response:
        url = httpx.URL(target.url)
        extensions = {"sni_hostname": target.host} if url.scheme == "https" else {}
        return self._http.post(
            url.copy_with(host=target.address),
            content=body,
            headers={**headers, "Host": url.netloc.decode("ascii")},
            extensions=extensions,
        )
