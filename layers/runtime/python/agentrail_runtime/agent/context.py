"""What a tool may receive besides its model-chosen arguments."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from agentrail_runtime.agent.secrets import DEFAULT_MAX_AGE, read_tool_secret


@dataclass
class ToolContext:
    """Injected into a tool that declares a parameter annotated ``ToolContext``.

    The parameter is hidden from the model. ``state`` is the session's state
    document (preferences, intermediate results); changes a tool makes are
    persisted with the turn, under optimistic locking.

    Attributes
    ----------
    session_id, principal, correlation_id:
        Who and what the run is for; ``None`` outside a session.
    task_id:
        The task the run belongs to; ``None`` outside a task.
    state:
        Mutable session state; empty for a stateless agent.
    tool_use_id:
        The model's id of the call being run; set by the loop while a tool runs.
    """

    session_id: str | None = None
    principal: str | None = None
    correlation_id: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    task_id: str | None = None
    tool_use_id: str | None = None
    _initial: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._initial = copy.deepcopy(self.state)

    @property
    def idempotency_key(self) -> str | None:
        """``<task id>#<tool-use id>`` (the session id outside a task) while a tool runs; ``None`` otherwise.

        The same call keeps its key across retries and redeliveries: pass it to an idempotent API (a payment
        provider's ``Idempotency-Key``) to resolve a call whose outcome is unknown.
        """
        if self.tool_use_id is None:
            return None
        owner = self.task_id or self.session_id
        return f"{owner}#{self.tool_use_id}" if owner else self.tool_use_id

    def secret(self, name: str, *, max_age: int = DEFAULT_MAX_AGE) -> SecretStr:
        """The tool secret ``name`` (one of the function's ``tool_secrets``), from Secrets Manager through Powertools
        parameters, cached for ``max_age`` seconds. Its ``str``, ``repr`` and JSON are ``**********``: pass
        ``.get_secret_value()`` only to the outside service. Once fetched, the value is masked in every log line,
        tool result and session state (see :mod:`agentrail_runtime.agent.secrets`).

        Raises
        ------
        SecretNotGranted
            When the function was not granted a secret of that name.
        """
        return read_tool_secret(name, max_age=max_age)

    @property
    def state_changed(self) -> bool:
        return self.state != self._initial
