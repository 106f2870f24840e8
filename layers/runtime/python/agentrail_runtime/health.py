"""Reachability checks behind ``GET /health``: the model provider and each AWS dependency."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from agentrail_runtime.config import DependencyCheck
from agentrail_runtime.contract import HealthCheckKind
from agentrail_runtime.models.base import ModelError, ModelProvider


class CheckResult(BaseModel):
    name: str
    ok: bool
    latency_ms: float
    detail: str | None = None


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    checks: list[CheckResult]


@dataclass(frozen=True)
class HealthCheck:
    name: str
    probe: Callable[[], Any]


def run_checks(checks: Sequence[HealthCheck]) -> HealthReport:
    """Run every probe; a failure is reported by its error class, never by a message that could leak data."""
    results = []
    for check in checks:
        started = time.perf_counter()
        ok, detail = True, None
        try:
            check.probe()
        except ModelError as error:
            ok, detail = False, str(error)
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code") if hasattr(error, "response") else None
            ok, detail = False, code or type(error).__name__
        results.append(
            CheckResult(name=check.name, ok=ok, latency_ms=round((time.perf_counter() - started) * 1000, 3), detail=detail)
        )
    return HealthReport(status="ok" if all(r.ok for r in results) else "degraded", checks=results)


def model_check(provider: ModelProvider) -> HealthCheck:
    return HealthCheck(name=f"model:{provider.name}", probe=provider.check)


def dependency_check(dependency: DependencyCheck, client_factory: Callable[[str], Any]) -> HealthCheck:
    """The cheapest read that proves ``dependency`` is reachable with the function's permissions."""
    kind, name = dependency.kind, dependency.name
    probes: dict[HealthCheckKind, Callable[[], Any]] = {
        "dynamodb": lambda: client_factory("dynamodb").describe_table(TableName=name),
        "sqs": lambda: client_factory("sqs").get_queue_attributes(QueueUrl=name, AttributeNames=["QueueArn"]),
        "s3": lambda: client_factory("s3").head_bucket(Bucket=name),
        "secretsmanager": lambda: client_factory("secretsmanager").describe_secret(SecretId=name),
        "stepfunctions": lambda: client_factory("stepfunctions").describe_state_machine(stateMachineArn=name),
        "events": lambda: client_factory("events").describe_event_bus(Name=name),
        "sns": lambda: client_factory("sns").get_topic_attributes(TopicArn=name),
    }
    return HealthCheck(name=f"{kind}:{name.rsplit('/', 1)[-1].rsplit(':', 1)[-1]}", probe=probes[kind])
