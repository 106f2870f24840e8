"""What a tool may receive besides its model-chosen arguments."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


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
    state:
        Mutable session state; empty for a stateless agent.
    """

    session_id: str | None = None
    principal: str | None = None
    correlation_id: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    _initial: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._initial = copy.deepcopy(self.state)

    @property
    def state_changed(self) -> bool:
        return self.state != self._initial
