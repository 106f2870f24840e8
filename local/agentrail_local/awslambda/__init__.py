"""Local Lambda: execution environments, their bootstrap, the seam through which moto invokes them, and SQS event sources.

This package's ``__init__`` imports nothing: ``python -m agentrail_local.awslambda.bootstrap``
runs in the function's own process and must load only the standard library.
"""

__all__ = ["bootstrap", "environments", "event_sources", "moto_seam"]
