"""Local Lambda: execution environments, their bootstrap, the seam through which moto invokes them, SQS event sources
and schedules.

This package's ``__init__`` imports nothing: ``bootstrap.py`` runs in the function's own
process, on the function's interpreter, and must load only the standard library.
"""

__all__ = ["bootstrap", "environments", "event_sources", "interpreters", "layer_packages", "moto_seam", "runtimes", "schedules"]
