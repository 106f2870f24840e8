"""Amazon Bedrock guardrails, which local mode skips with a notice: it has no Bedrock to apply them."""

from __future__ import annotations

from dataclasses import replace

from agentrail_local.cloudformation.resources.base import (
    DeployedResource,
    ResourceContext,
    placeholder,
    resource_handler,
    skip_with_notice,
)

_NO_BEDROCK = (
    "local mode has no Bedrock: the functions get an empty AGENT_BEDROCK_GUARDRAIL_ID, so neither Converse's "
    "guardrailConfig nor ApplyGuardrail is called"
)
skip_with_notice("AWS::Bedrock::Guardrail", "Bedrock guardrail", "Bedrock guardrails", _NO_BEDROCK)
skip_with_notice("AWS::Bedrock::GuardrailVersion", "Bedrock guardrail version", "Bedrock guardrail versions", _NO_BEDROCK)


@resource_handler("AWS::Bedrock::Guardrail", "AWS::Bedrock::GuardrailVersion")
def guardrail(context: ResourceContext) -> DeployedResource:
    """A placeholder whose id and version are empty: the runtime reads an empty guardrail id as no guardrail."""
    skipped = placeholder(context, reason=_NO_BEDROCK)
    attributes = {**skipped.attributes, "GuardrailId": "", "Version": "", "GuardrailArn": skipped.attributes["Arn"]}
    return replace(skipped, ref="", attributes=attributes)
