"""cdk-nag acknowledgements, always per resource and always with a reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge AwsSolutions ``rule`` (e.g. ``IAM5[Resource::*]``) on exactly ``construct``.

    Raises
    ------
    ValueError
        When the reason is too short to justify anything.
    """
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule} needs a real reason, not {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}::{PACK}-{rule}", reason=reason))
