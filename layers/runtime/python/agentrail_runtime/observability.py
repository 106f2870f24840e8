"""The one Logger, Tracer and Metrics of a function, created once per execution environment.

Configuration comes from the standard Powertools environment variables that the
AgentFunction construct sets: ``POWERTOOLS_SERVICE_NAME``,
``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_LOG_LEVEL``.
"""

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

_SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "agentrail")

logger = Logger(service=_SERVICE, log_uncaught_exceptions=True)
tracer = Tracer(service=_SERVICE)
metrics = Metrics(service=_SERVICE, namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "Agentrail"))

Handler = Callable[[Any, Any], Any]


def observed(correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """Every handler's wrapping: the Lambda context (and correlation id) on each log line, keys of the last
    invocation cleared, an X-Ray segment without the response, metrics flushed with the cold-start metric."""

    def wrap(handler: Handler) -> Handler:
        measured = metrics.log_metrics(handler, capture_cold_start_metric=True)
        traced = tracer.capture_lambda_handler(measured, capture_response=False)
        return logger.inject_lambda_context(traced, correlation_id_path=correlation_id_path, clear_state=True)

    return wrap


def correlate(correlation_id: str | None, **keys: str) -> None:
    """Carry a correlation id (and keys such as ``task_id``) on every log line and on the trace of this invocation.

    Each agent of a multi-agent task calls this with the id its message carries, so one task can be followed
    across every function in the logs (``correlation_id``) and in X-Ray (annotations, searchable).
    """
    if keys:
        logger.append_keys(**keys)
    if correlation_id:
        logger.set_correlation_id(correlation_id)
        tracer.put_annotation(key="correlation_id", value=correlation_id)
    for key, value in keys.items():
        tracer.put_annotation(key=key, value=value)


__all__ = ["correlate", "logger", "metrics", "observed", "tracer"]
