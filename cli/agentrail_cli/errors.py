"""Errors a command reports as one line and exit code 2 (dependency-free, so the parser never needs an extra)."""

from __future__ import annotations

__all__ = ["TargetError"]


class TargetError(Exception):
    """The target could not be found or lacks what the command needs; the message says what to pass."""
