"""PatternStack: what every pattern's stack carries, a description and the ``agentrail:pattern`` tag."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct


class PatternStack(Stack):
    """A stack of one agentrail pattern: described as ``agentrail: <summary>``, every resource tagged
    ``agentrail:pattern=<pattern>``.

    Parameters
    ----------
    pattern:
        The pattern's name (``cdk deploy -c patterns=<pattern>``).
    summary:
        What the stack deploys, in a few words.
    """

    def __init__(self, scope: Construct, construct_id: str, *, pattern: str, summary: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"agentrail: {summary}", **kwargs)
        Tags.of(self).add("agentrail:pattern", pattern)

    def add_outputs(self, **values: str) -> None:
        """One stack output per keyword, in order: ``add_outputs(ApiUrl=agent.url)``."""
        for name, value in values.items():
            CfnOutput(self, name, value=value)
