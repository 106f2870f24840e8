"""A Bedrock guardrail for an agent: one agentrail creates (``GuardrailOptions``) or one the user brings
(``ExistingGuardrail``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from aws_cdk import Names, Stack
from aws_cdk import aws_bedrock as bedrock
from aws_cdk import aws_kms as kms
from constructs import Construct

FilterStrength = Literal["NONE", "LOW", "MEDIUM", "HIGH"]
PiiAction = Literal["BLOCK", "ANONYMIZE"]

#: The harmful-content categories of a guardrail's content filters (prompt attacks aside).
CONTENT_FILTERS = ("SEXUAL", "VIOLENCE", "HATE", "INSULTS", "MISCONDUCT")
#: The PII entities a created guardrail finds by default.
DEFAULT_PII_ENTITIES = (
    "EMAIL",
    "PHONE",
    "CREDIT_DEBIT_CARD_NUMBER",
    "CREDIT_DEBIT_CARD_CVV",
    "CREDIT_DEBIT_CARD_EXPIRY",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "US_SOCIAL_SECURITY_NUMBER",
    "IP_ADDRESS",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "PASSWORD",
)
#: What a created guardrail's user sees when it blocks a message or an answer.
DEFAULT_BLOCKED_INPUT_MESSAGE = "Sorry, I can't help with that request."
DEFAULT_BLOCKED_OUTPUT_MESSAGE = "Sorry, I can't share that answer."


@dataclass(frozen=True, kw_only=True)
class GuardrailOptions:
    """A Bedrock guardrail agentrail creates (``AWS::Bedrock::Guardrail``) and publishes as a version
    (``AWS::Bedrock::GuardrailVersion``), which the agent's function applies."""

    prompt_attack_strength: FilterStrength = "HIGH"
    """Strength of the prompt-attack filter on user messages (jailbreaks, prompt injection). Default: HIGH."""
    content_filter_strength: FilterStrength = "HIGH"
    """Strength of the harmful-content filters (:data:`CONTENT_FILTERS`), on messages and answers. Default: HIGH."""
    pii_entities: Sequence[str] = DEFAULT_PII_ENTITIES
    """PII entity types to find (Bedrock's names). Default: :data:`DEFAULT_PII_ENTITIES` (emails, phones, card
    numbers, IBANs, US SSNs, IP addresses, AWS keys, passwords)."""
    pii_action: PiiAction = "ANONYMIZE"
    """What the guardrail does with PII: mask it (``{EMAIL}``) or block the text. Default: ANONYMIZE, except for
    AWS secret keys and passwords, which are always blocked."""
    blocked_input_message: str = DEFAULT_BLOCKED_INPUT_MESSAGE
    """What the user reads when the guardrail blocks their message. Default: "Sorry, I can't help with that request."."""
    blocked_output_message: str = DEFAULT_BLOCKED_OUTPUT_MESSAGE
    """What the user reads when the guardrail blocks an answer. Default: "Sorry, I can't share that answer."."""
    encryption_key: kms.IKey | None = None
    """A customer managed key for the guardrail's configuration; the function gets ``kms:Decrypt`` on it (Bedrock
    decrypts the guardrail with the caller's permissions). Default: none (a key AWS owns)."""
    description: str = field(default="agentrail: prompt-attack, harmful-content and PII filters")
    """Default: names the filters."""

    def validate(self) -> None:
        """Fail at synth with a message that names the fix."""
        if not self.pii_entities and self.prompt_attack_strength == "NONE" and self.content_filter_strength == "NONE":
            raise ValueError("GuardrailOptions filters nothing: keep a filter strength above NONE or some pii_entities")
        for name, message in (
            ("blocked_input_message", self.blocked_input_message),
            ("blocked_output_message", self.blocked_output_message),
        ):
            if not 1 <= len(message.strip()) <= 500:
                raise ValueError(f"GuardrailOptions.{name} must be 1 to 500 characters")


@dataclass(frozen=True, kw_only=True)
class ExistingGuardrail:
    """A Bedrock guardrail the user owns: its id (or ARN) and the version to apply."""

    guardrail: str
    """Its id (in this stack's account and Region) or ARN."""
    version: str
    """A published version (``1``, ``2``, ...) or ``DRAFT``."""
    encryption_key: kms.IKey | None = None
    """The customer managed key the guardrail is under: the function gets ``kms:Decrypt`` on it (Bedrock decrypts
    the guardrail with the caller's permissions). Default: none (a key AWS owns)."""

    def validate(self) -> None:
        if not self.guardrail.strip() or not self.version.strip():
            raise ValueError("existing_guardrail needs a guardrail id (or ARN) and a version (a number or DRAFT)")


class BedrockGuardrail(Construct):
    """A Bedrock guardrail with secure defaults, and its first published version.

    Defaults: the prompt-attack filter at HIGH on user messages, the harmful-content filters at HIGH on messages and
    answers, PII (emails, phones, card numbers, AWS keys, ...) masked, AWS secret keys and passwords blocked.

    Attributes
    ----------
    guardrail (the ``CfnGuardrail``), version (the ``CfnGuardrailVersion``), guardrail_id, guardrail_arn,
    guardrail_version (the published version's number, a token), encryption_key (or None), options
    """

    def __init__(self, scope: Construct, construct_id: str, *, options: GuardrailOptions | None = None) -> None:
        super().__init__(scope, construct_id)
        options = options or GuardrailOptions()
        options.validate()
        filters = [
            bedrock.CfnGuardrail.ContentFilterConfigProperty(
                type=kind, input_strength=options.content_filter_strength, output_strength=options.content_filter_strength
            )
            for kind in CONTENT_FILTERS
        ]
        # Bedrock applies the prompt-attack filter to user input only: its output strength must be NONE.
        filters.append(
            bedrock.CfnGuardrail.ContentFilterConfigProperty(
                type="PROMPT_ATTACK", input_strength=options.prompt_attack_strength, output_strength="NONE"
            )
        )
        always_blocked = {"AWS_SECRET_KEY", "PASSWORD"}
        pii = [
            bedrock.CfnGuardrail.PiiEntityConfigProperty(
                type=entity, action="BLOCK" if entity in always_blocked else options.pii_action
            )
            for entity in options.pii_entities
        ]
        self.guardrail = bedrock.CfnGuardrail(
            self,
            "Guardrail",
            name=Names.unique_resource_name(self, max_length=50, separator="-"),
            description=options.description,
            blocked_input_messaging=options.blocked_input_message,
            blocked_outputs_messaging=options.blocked_output_message,
            content_policy_config=bedrock.CfnGuardrail.ContentPolicyConfigProperty(filters_config=filters),
            sensitive_information_policy_config=(
                bedrock.CfnGuardrail.SensitiveInformationPolicyConfigProperty(pii_entities_config=pii) if pii else None
            ),
            kms_key_arn=options.encryption_key.key_arn if options.encryption_key is not None else None,
        )
        self.version = bedrock.CfnGuardrailVersion(
            self,
            "Version",
            guardrail_identifier=self.guardrail.attr_guardrail_id,
            description="Published by agentrail: the version the agent applies",
        )
        self.guardrail_id: str = self.guardrail.attr_guardrail_id
        self.guardrail_arn: str = self.guardrail.attr_guardrail_arn
        self.guardrail_version: str = self.version.attr_version
        self.encryption_key: kms.IKey | None = options.encryption_key
        self.options = options

    @classmethod
    def of(cls, scope: Construct, *, options: GuardrailOptions) -> BedrockGuardrail:
        """The guardrail of ``scope``'s stack with these ``options``: created once, applied by every agent function
        of the stack given the same options (a stack's functions run one agent: one guardrail, one version)."""
        stack = Stack.of(scope)
        shared = [child for child in stack.node.children if isinstance(child, cls)]
        for guardrail in shared:
            if guardrail.options == options:
                return guardrail
        return cls(stack, f"AgentrailGuardrail{len(shared) + 1 if shared else ''}", options=options)


def guardrail_arn(scope: Construct, guardrail: str) -> str:
    """The ARN of a guardrail named by id (in ``scope``'s stack's account and Region) or ARN."""
    if guardrail.startswith("arn:"):
        return guardrail
    return Stack.of(scope).format_arn(service="bedrock", resource="guardrail", resource_name=guardrail)


__all__ = [
    "CONTENT_FILTERS",
    "DEFAULT_PII_ENTITIES",
    "BedrockGuardrail",
    "ExistingGuardrail",
    "GuardrailOptions",
    "guardrail_arn",
]
