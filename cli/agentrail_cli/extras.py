"""The optional parts of agentrail-aws, and one sentence for a command that needs a part that is not installed.

A plain ``pip install agentrail-aws`` brings the constructs and a CLI that starts. Local mode, the
operational commands and ``openapi`` need the ``local`` extra; ``app.py``'s checks need ``nag``.
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["DISTRIBUTION", "EXTRA_OF", "missing_extra", "version"]

DISTRIBUTION = "agentrail-aws"

#: Top-level module -> the extra of agentrail-aws that installs it.
EXTRA_OF = {
    "httpx": "local",
    "boto3": "local",
    "botocore": "local",
    "moto": "local",
    "jsonschema": "local",
    "yaml": "local",
    "watchfiles": "local",
    "pydantic": "local",
    "pydantic_settings": "local",
    "aws_lambda_powertools": "local",
    "aws_xray_sdk": "local",
    "cdk_nag": "nag",
}


def missing_extra(error: ModuleNotFoundError, command: str) -> str | None:
    """One sentence naming the extra that provides the missing module, or None when no extra does."""
    module = (error.name or "").partition(".")[0]
    extra = EXTRA_OF.get(module)
    if extra is None:
        return None
    return (
        f"agentrail {command} needs the '{extra}' extra of {DISTRIBUTION} ({module} is not installed): "
        f"pip install '{DISTRIBUTION}[{extra}]'"
    )


def version() -> str:
    """The installed distribution's version (``unknown`` when run from a source tree that was never installed)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
