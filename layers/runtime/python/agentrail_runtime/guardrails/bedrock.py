"""A guard that applies an Amazon Bedrock guardrail (``ApplyGuardrail``) to a text, whatever the agent's model."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from agentrail_runtime import aws
from agentrail_runtime.contract import BEDROCK_GUARDRAIL_ID_ENV, BEDROCK_GUARDRAIL_VERSION_ENV
from agentrail_runtime.guardrails.base import Guard, GuardDecision
from agentrail_runtime.observability import logger

GuardrailSource = Literal["INPUT", "OUTPUT"]
#: The reason code of a text blocked because the guardrail could not be applied (fail closed).
UNAVAILABLE = "bedrock_guardrail.unavailable"

# Where each policy of an assessment lists its findings, and the part of the reason code it gives.
_FINDINGS: tuple[tuple[str, str, str, str | None], ...] = (
    # (policy, list, reason prefix, the finding's field that names it)
    ("contentPolicy", "filters", "content", "type"),
    ("topicPolicy", "topics", "topic", None),
    ("wordPolicy", "customWords", "word", None),
    ("wordPolicy", "managedWordLists", "word", "type"),
    ("sensitiveInformationPolicy", "piiEntities", "pii", "type"),
    ("sensitiveInformationPolicy", "regexes", "regex", None),
    ("contextualGroundingPolicy", "filters", "grounding", "type"),
)


class BedrockGuardrailGuard(Guard):
    """Applies a Bedrock guardrail to each text (``bedrock-runtime:ApplyGuardrail``), with any model provider.

    The guardrail's answer maps to the pipeline's: ``NONE`` allows; ``GUARDRAIL_INTERVENED`` redacts when every
    finding was masked (``ANONYMIZED``, e.g. PII; the text becomes the guardrail's masked output, reason
    ``bedrock_guardrail.pii.email`` ...) and blocks otherwise, with the first blocking finding as reason code
    (``bedrock_guardrail.content.prompt_attack``, ``bedrock_guardrail.topic``, ``bedrock_guardrail.word``,
    ``bedrock_guardrail.pii.<type>``, ``bedrock_guardrail.regex``, ``bedrock_guardrail.grounding.<type>``).

    Unlike the built-in guards, this one calls the network on every text it checks (billed per text unit of up to
    1,000 characters, see the README). The client retries throttling (botocore's standard mode, 4 attempts); a call
    that still fails blocks the text with ``bedrock_guardrail.unavailable`` (fail closed) unless ``fail_open``.

    Parameters
    ----------
    source:
        ``INPUT`` for user messages and tool results, ``OUTPUT`` for answers (the guardrail's policies differ).
    guardrail_id, guardrail_version:
        The guardrail (id or ARN) and its version. Default: ``AGENT_BEDROCK_GUARDRAIL_ID`` and
        ``AGENT_BEDROCK_GUARDRAIL_VERSION`` (``DRAFT`` when unset), which the constructs write; with neither an id
        nor that setting (local mode writes it empty) the guard allows everything without calling Bedrock. The
        settings are read once, at the first check.
    fail_open:
        Allow a text when the guardrail cannot be applied (throttled after retries, unreachable, access denied).
        Default: False (fail closed: block it).
    client:
        A ``bedrock-runtime`` client. Default: one made on first use by ``agentrail_runtime.aws.client``.
    """

    name = "bedrock_guardrail"

    def __init__(
        self,
        *,
        source: GuardrailSource,
        guardrail_id: str | None = None,
        guardrail_version: str | None = None,
        fail_open: bool = False,
        client: Any = None,
    ) -> None:
        if source not in ("INPUT", "OUTPUT"):
            raise ValueError(f"source must be INPUT or OUTPUT, got {source!r}")
        self.source = source
        self._guardrail_id = guardrail_id
        self._guardrail_version = guardrail_version
        self.fail_open = fail_open
        self._client = client

    @cached_property
    def guardrail(self) -> tuple[str, str] | None:
        """The guardrail's id and version, or None when none is configured: read from the settings once, at the
        first check (a definition's guard is built at import, possibly before the settings are in place)."""
        identifier = (self._guardrail_id or os.environ.get(BEDROCK_GUARDRAIL_ID_ENV, "")).strip()
        if not identifier:
            return None
        version = self._guardrail_version or os.environ.get(BEDROCK_GUARDRAIL_VERSION_ENV, "") or "DRAFT"
        return identifier, version.strip()

    def check(self, text: str) -> GuardDecision:
        guardrail = self.guardrail
        if guardrail is None or not text.strip():
            return GuardDecision.allow(text)
        if self._client is None:
            self._client = aws.client("bedrock-runtime")
        try:
            response = self._client.apply_guardrail(
                guardrailIdentifier=guardrail[0],
                guardrailVersion=guardrail[1],
                source=self.source,
                content=[{"text": {"text": text}}],
            )
        except (ClientError, BotoCoreError) as error:
            code = (
                error.response.get("Error", {}).get("Code", "Unknown") if isinstance(error, ClientError) else type(error).__name__
            )
            logger.warning(
                "bedrock guardrail unavailable",
                extra={"event": "guard_unavailable", "guard": self.name, "error": code, "fail_open": self.fail_open},
            )
            return GuardDecision.allow(text) if self.fail_open else GuardDecision.block(text, UNAVAILABLE)
        if response.get("action") != "GUARDRAIL_INTERVENED":
            return GuardDecision.allow(text)
        findings = list(_findings(response.get("assessments") or []))
        blocking = [reason for reason, action in findings if action != "ANONYMIZED"]
        masked = "".join(output.get("text", "") for output in response.get("outputs") or [])
        if findings and not blocking and masked:
            return GuardDecision.redact(masked, ",".join(dict.fromkeys(reason for reason, _ in findings)))
        return GuardDecision.block(text, blocking[0] if blocking else "bedrock_guardrail.intervened")

    def describe(self) -> dict[str, Any]:
        # The guardrail named by the settings is the deployment's, not the definition's: it stays out of the agent
        # version (which is computed at synth, before the guardrail exists); one passed here is part of it.
        return {
            "name": self.name,
            "source": self.source,
            "guardrail": [self._guardrail_id, self._guardrail_version or "DRAFT"] if self._guardrail_id else "settings",
            "fail_open": self.fail_open,
        }


def _findings(assessments: list[dict[str, Any]]) -> Any:
    """``(reason code, action)`` of every finding that acted (``BLOCKED`` or ``ANONYMIZED``), in policy order."""
    for assessment in assessments:
        for policy, listing, prefix, field in _FINDINGS:
            for finding in (assessment.get(policy) or {}).get(listing) or []:
                action = finding.get("action", "NONE")
                if action == "NONE" or finding.get("detected") is False:
                    continue
                kind = finding.get(field) if field else None
                yield (f"bedrock_guardrail.{prefix}.{str(kind).lower()}" if kind else f"bedrock_guardrail.{prefix}"), action


__all__ = ["UNAVAILABLE", "BedrockGuardrailGuard", "GuardrailSource"]
