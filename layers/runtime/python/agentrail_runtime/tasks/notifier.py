"""Delivering task notifications to callers' webhooks, signed (see :mod:`agentrail_runtime.tasks.webhook`)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from agentrail_runtime.aws import read_secret
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.observability import logger
from agentrail_runtime.signatures import SIGNATURE_HEADER, signature_header
from agentrail_runtime.tasks.settings import WebhookSettings
from agentrail_runtime.tasks.webhook import validate_callback_url


class WebhookDeliveryFailed(Exception):
    """The receiver did not answer 2xx; raised so the delivery is retried, then dead-lettered."""


class WebhookNotifier:
    """Parameters
    ----------
    secret_id:
        Secrets Manager id of the signing secret (read through Powertools parameters, cached).
    """

    def __init__(
        self,
        secret_id: str,
        *,
        http_client: httpx.Client | None = None,
        allow_insecure: bool = False,
        clock: Clock = now,
    ) -> None:
        self.secret_id = secret_id
        self._http = http_client or httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0), follow_redirects=False)
        self.allow_insecure = allow_insecure
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> WebhookNotifier:
        if not settings.webhook_secret:
            raise ValueError("AGENT_TASK_WEBHOOK_SECRET must name the signing secret")
        return cls(settings.webhook_secret, allow_insecure=settings.allow_insecure_callbacks)

    def deliver(self, detail: dict[str, Any]) -> dict[str, Any]:
        url = detail.get("callback_url")
        if not url:
            return {"delivered": False, "reason": "no callback_url"}
        validate_callback_url(url, allow_insecure=self.allow_insecure)
        payload = {
            key: detail.get(key)
            for key in ("task_id", "task_type", "status", "finished_at", "steps", "usage", "cost_usd", "error")
        }
        body = json.dumps(payload, sort_keys=True).encode()
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(read_secret(self.secret_id).encode(), timestamp, body),
        }
        try:
            response = self._http.post(url, content=body, headers=headers)
        except httpx.TransportError as error:
            raise WebhookDeliveryFailed(f"webhook unreachable ({type(error).__name__})") from None
        if not 200 <= response.status_code < 300:
            raise WebhookDeliveryFailed(f"webhook answered HTTP {response.status_code}")
        logger.info("webhook delivered", extra={"event": "webhook_delivered", "task_id": payload["task_id"]})
        return {"delivered": True, "status_code": response.status_code}
