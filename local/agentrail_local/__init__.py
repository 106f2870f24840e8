"""Local mode: run a synthesized cloud assembly on one machine, against moto, without Docker.

Importing this package stays cheap: the execution environments' bootstrap
lives here and must not pull in moto or boto3.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CloudAssembly": "agentrail_local.cloudformation.assembly",
    "LocalCloud": "agentrail_local.cloud",
    "ApiEndpoint": "agentrail_local.cloud",
}

__all__ = ["ApiEndpoint", "CloudAssembly", "LocalCloud"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
