"""What local mode knows of a deployed function, what an invocation returns, and Lambda's invocation errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Concurrent executions of the whole local account, shared by every function without reserved concurrency
#: (AWS's unreserved pool, 1,000 by default there). Each execution is a Python process: 32 fit a 2-core,
#: 8 GB laptop, and are far more than one developer's requests need at once.
DEFAULT_ACCOUNT_CONCURRENCY = 32
#: Lambda's synchronous payload limit, request and response.
MAX_PAYLOAD_BYTES = 6_291_556
LAYER_KIND_METADATA = "agentrail:layer"
#: Layers of this kind hold wheels for the Lambda platform (arm64 by default) that cannot load here:
#: they stay off PYTHONPATH, and a copy of the same pins built for this machine takes their place.
HOST_BUILT_LAYER_KINDS = frozenset({"dependencies"})


class Throttled(Exception):
    """The function's reserved concurrency, or the account's pool, is used up (Lambda's ``TooManyRequestsException``)."""


class PayloadTooLarge(Exception):
    """The request is over Lambda's 6 MB synchronous payload limit (``RequestEntityTooLargeException``)."""


class UnknownFunction(LookupError):
    """No deployed function, version or alias has this name or ARN."""


@dataclass(frozen=True)
class LayerSource:
    arn: str
    path: Path | None
    kind: str | None = None

    @property
    def python_dir(self) -> Path | None:
        return None if self.path is None else self.path / "python"


@dataclass(frozen=True)
class FunctionDefinition:
    """A deployed ``AWS::Lambda::Function``: what an execution environment needs to run it."""

    stack_name: str
    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    code_dir: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    memory_size: int = 128
    timeout_seconds: float = 3.0
    reserved_concurrency: int | None = None
    layers: tuple[LayerSource, ...] = ()
    log_group: str = ""
    application_log_level: str | None = None
    #: ``LoggingConfig.LogFormat``: ``JSON`` or ``Text``; None when the template names none (Lambda's default, Text).
    log_format: str | None = None
    #: ``Architectures[0]``: ``x86_64`` (Lambda's default) or ``arm64``.
    architecture: str = "x86_64"

    def python_path(self) -> list[str]:
        """The code folder, then each loadable layer's ``python/`` folder (Lambda's ``/var/task`` then ``/opt/python``)."""
        entries = [str(self.code_dir)]
        for layer in self.layers:
            if layer.kind in HOST_BUILT_LAYER_KINDS or layer.python_dir is None:
                continue
            if layer.python_dir.is_dir():
                entries.append(str(layer.python_dir))
        return entries


@dataclass(frozen=True)
class InvocationResult:
    """What an invocation returned: the payload bytes and, for errors, Lambda's ``FunctionError`` value."""

    request_id: str
    payload: bytes
    function_error: str | None = None
    duration_ms: float = 0.0
    #: The version that ran (Lambda's ``ExecutedVersion``): through a weighted alias, the one the routing chose.
    executed_version: str | None = None
    #: Wall time of the handler alone (no cold start, no wait for an environment); 0 when it did not run.
    handler_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.function_error is None

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


__all__ = [
    "DEFAULT_ACCOUNT_CONCURRENCY",
    "HOST_BUILT_LAYER_KINDS",
    "LAYER_KIND_METADATA",
    "MAX_PAYLOAD_BYTES",
    "FunctionDefinition",
    "InvocationResult",
    "LayerSource",
    "PayloadTooLarge",
    "Throttled",
    "UnknownFunction",
]
