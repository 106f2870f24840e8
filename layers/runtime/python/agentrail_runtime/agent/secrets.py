"""Secrets for tools: credentials of outside services, read from Secrets Manager, never shown to the model, the
logs or a record.

A tool asks its :class:`~agentrail_runtime.agent.context.ToolContext` for a secret by the name the construct granted
it under (``AgentFunctionOptions(tool_secrets={"crm": secret})`` writes ``AGENT_TOOL_SECRETS``), and gets a
``pydantic.SecretStr``: its ``str``, ``repr`` and JSON dump are ``**********``; ``get_secret_value()`` is the value,
for the one place that needs it (an ``Authorization`` header). The value is read through Powertools parameters,
cached per execution environment for ``max_age`` seconds (a rotation is picked up without a cold start).

Once fetched, a value is masked wherever it could leak: in every log line of the execution environment
(:func:`agentrail_runtime.observability.never_log`), and in every tool result and session state the agent loop
keeps (:func:`mask_secrets`), so a tool that returns or stores it by mistake hands the model and the stores
``**********`` instead.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import SecretStr

from agentrail_runtime.aws import ToolSecretSettings, read_secret
from agentrail_runtime.observability import LOG_MASK, logger, never_log, never_logged

#: Seconds a fetched secret is reused before Secrets Manager is asked again.
DEFAULT_MAX_AGE = 300


class SecretNotGranted(LookupError):
    """A tool asked for a secret its function was not granted: a deployment mistake, not one the model can fix."""


@cache
def granted_tool_secrets() -> dict[str, str]:
    """The secrets this function's tools may read (``AGENT_TOOL_SECRETS``): name -> secret ARN (or name), read once."""
    return ToolSecretSettings().tool_secrets


def read_tool_secret(name: str, *, max_age: int = DEFAULT_MAX_AGE) -> SecretStr:
    """The value of the tool secret ``name``, masked (see the module's docstring).

    Raises
    ------
    SecretNotGranted
        When ``name`` is not one of the function's ``tool_secrets``.
    """
    granted = granted_tool_secrets()
    if name not in granted:
        known = ", ".join(sorted(granted)) or "none"
        raise SecretNotGranted(
            f"no tool secret named {name!r} (granted: {known}): grant it with "
            f"AgentFunctionOptions(tool_secrets={{{name!r}: secret}})"
        )
    value = read_secret(granted[name], max_age=max_age)
    never_log(value)
    return SecretStr(value)


def mask_secrets(value: Any) -> tuple[Any, int]:
    """``value`` (JSON-compatible) with every fetched secret value replaced by ``**********`` in each string (keys
    included); and how many strings were masked."""
    fetched = never_logged()
    if not fetched:
        return value, 0
    masked = 0

    def walk(item: Any) -> Any:
        nonlocal masked
        if isinstance(item, SecretStr):
            masked += 1
            return LOG_MASK
        if isinstance(item, str):
            clean = item
            for secret in fetched:
                clean = clean.replace(secret, LOG_MASK)
            masked += clean != item
            return clean
        if isinstance(item, dict):
            return {walk(key): walk(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(inner) for inner in item]
        return item

    return walk(value), masked


def masked_for_the_model(tool: str, content: Any) -> Any:
    """A tool's result with the fetched secrets masked; logs (without the value) when a tool returned one."""
    clean, masked = mask_secrets(content)
    if masked:
        logger.warning("a tool returned a secret; it was masked", extra={"event": "secret_masked", "tool": tool})
    return clean


__all__ = [
    "DEFAULT_MAX_AGE",
    "SecretNotGranted",
    "granted_tool_secrets",
    "mask_secrets",
    "masked_for_the_model",
    "read_tool_secret",
]
