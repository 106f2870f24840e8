"""PatternStack: what every pattern's stack carries, a description and the ``agentrail:pattern`` tag."""

from __future__ import annotations

from typing import Any, Literal

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from agentrail_constructs.security import SecurityBaseline, SecurityBaselineOptions

#: ``security=`` of a PatternStack (``cdk -c security=...``).
SECURITY_PROFILES = ("standard", "hardened")


class PatternStack(Stack):
    """A stack of one agentrail pattern: described as ``agentrail: <summary>``, every resource tagged
    ``agentrail:pattern=<pattern>``.

    Parameters
    ----------
    pattern:
        The pattern's name (``cdk deploy -c patterns=<pattern>``).
    summary:
        What the stack deploys, in a few words.
    security:
        ``standard``: encryption with AWS managed keys, functions outside any VPC, nothing billed while idle.
        ``hardened``: a :class:`SecurityBaseline` first (one customer managed key, private subnets with VPC endpoints,
        restricted egress, S3 access logs), which every construct of the stack then uses. Default: ``standard``.
    security_options:
        Options of the SecurityBaseline (``hardened`` only). Default: ``SecurityBaselineOptions()``.

    Attributes
    ----------
    security, baseline (None unless hardened)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pattern: str,
        summary: str,
        security: Literal["standard", "hardened"] = "standard",
        security_options: SecurityBaselineOptions | None = None,
        **kwargs: Any,
    ) -> None:
        if security not in SECURITY_PROFILES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_PROFILES)}, got {security!r}")
        if security_options is not None and security != "hardened":
            raise ValueError("security_options configure the hardened profile: pass security='hardened' too")
        profile = " (hardened)" if security == "hardened" else ""
        super().__init__(scope, construct_id, description=f"agentrail: {summary}{profile}", **kwargs)
        Tags.of(self).add("agentrail:pattern", pattern)
        self.security = security
        self.baseline: SecurityBaseline | None = None
        if security == "hardened":
            self.baseline = SecurityBaseline(self, "Security", options=security_options)

    def add_outputs(self, **values: str) -> None:
        """One stack output per keyword, in order: ``add_outputs(ApiUrl=agent.url)``."""
        for name, value in values.items():
            CfnOutput(self, name, value=value)
