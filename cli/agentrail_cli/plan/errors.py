"""The one error of the planner's input: its message is one sentence that names what to fix."""

from __future__ import annotations

__all__ = ["PlanInputError"]


class PlanInputError(ValueError):
    """Bad requirements, prices or flags; ``str(error)`` is one sentence for the user."""
