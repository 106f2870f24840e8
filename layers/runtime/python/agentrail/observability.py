"""The one Logger, Tracer and Metrics of a function, created once per execution environment.

Configuration comes from the standard Powertools environment variables that the
AgentFunction construct sets: ``POWERTOOLS_SERVICE_NAME``,
``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_LOG_LEVEL``.
"""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

_SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "agentrail")

logger = Logger(service=_SERVICE, log_uncaught_exceptions=True)
tracer = Tracer(service=_SERVICE)
metrics = Metrics(service=_SERVICE, namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "Agentrail"))

__all__ = ["logger", "metrics", "tracer"]
