"""Schedules, fired locally: EventBridge Scheduler schedules and scheduled EventBridge rules with Lambda targets.

moto keeps schedules and scheduled rules but never fires them. Here every
enabled ``AWS::Scheduler::Schedule`` and ``AWS::Events::Rule`` with a
``rate(N unit)`` expression gets a daemon thread that invokes each Lambda
target (function, version or alias ARN) as an ``Event`` invocation every
period: with the target's ``Input``, or, for a rule without one, the
``Scheduled Event`` EventBridge sends (``InputPath`` and ``InputTransformer``
apply to it as in the cloud). ``cron(...)`` and ``at(...)`` expressions are
not fired: local mode warns once per schedule.

A function error (or a throttle) is retried up to the target's
``RetryPolicy.MaximumRetryAttempts``, at most :data:`LOCAL_MAX_RETRIES` times
locally (AWS's default of 185 would keep a failing function busy for hours), and
no longer than ``MaximumEventAgeInSeconds``; then the event goes to the target's
``DeadLetterConfig`` queue, with the message attributes Scheduler puts on its
dead-letter events (``ERROR_CODE``, ``ERROR_MESSAGE``, ``RETRY_ATTEMPTS``,
``TARGET_ARN``, ``SCHEDULE_ARN`` and ``EXECUTION_ID``; a rule's carry ``RULE_ARN``
instead of the last two). The code is the function's ``errorType``.

Locally each target delivers one event at a time: a tick that comes while the
previous event is still being delivered (a slow function, retries) is skipped,
so a compressed period never piles up execution environments.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agentrail_local.account import ACCOUNT_ID, REGION
from agentrail_local.awslambda.definitions import InvocationResult, PayloadTooLarge, Throttled, UnknownFunction
from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.awslambda.moto_seam import target_input
from agentrail_local.console import Console

#: Overrides every schedule's period, in seconds (``LocalCloud(schedule_seconds=...)`` wins over it).
SCHEDULE_SECONDS_ENV = "AGENTRAIL_LOCAL_SCHEDULE_SECONDS"
#: Retries of one failed event at most, whatever the target's retry policy says.
LOCAL_MAX_RETRIES = 2
#: Scheduler's and EventBridge's defaults when a target has no retry policy.
DEFAULT_RETRY_ATTEMPTS = 185
DEFAULT_MAX_EVENT_AGE_SECONDS = 86400
#: Pause before a retry (never longer than the period); also bounds how long :meth:`ScheduleRunner.stop` waits.
RETRY_DELAY_SECONDS = 1.0
STOP_WAIT_SECONDS = 5.0
SCHEDULE = "AWS::Scheduler::Schedule"
RULE = "AWS::Events::Rule"

_RATE = re.compile(r"rate\(\s*(\d+)\s+([A-Za-z]+)\s*\)")
_UNIT_SECONDS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: str) -> float:
    """The period of a ``rate(N unit)`` expression, in seconds.

    Raises
    ------
    ValueError
        When the expression is not a rate, or its unit is not minute(s), hour(s) or day(s).
    """
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        raise ValueError(f"{expression!r} is not a rate(N unit) expression")
    count, unit = int(match[1]), match[2].lower()
    if unit not in _UNIT_SECONDS:
        raise ValueError(f"{expression!r}: rate unit {match[2]!r} is not supported; use minute(s), hour(s) or day(s)")
    if count < 1:
        raise ValueError(f"{expression!r}: the rate must be at least 1")
    return float(count * _UNIT_SECONDS[unit])


def schedule_period(seconds: float | None) -> float | None:
    """The period that replaces every schedule's own: ``seconds``, else ``$AGENTRAIL_LOCAL_SCHEDULE_SECONDS``, else none.

    Raises
    ------
    ValueError
        When the value is not a positive number of seconds.
    """
    if seconds is None:
        text = os.environ.get(SCHEDULE_SECONDS_ENV, "").strip()
        if not text:
            return None
        try:
            seconds = float(text)
        except ValueError:
            raise ValueError(f"{SCHEDULE_SECONDS_ENV}={text!r} is not a number of seconds") from None
    if not seconds > 0:
        raise ValueError(f"the schedule period must be a positive number of seconds, got {seconds}")
    return float(seconds)


@dataclass(frozen=True)
class ScheduledTarget:
    """One Lambda target of a schedule or scheduled rule, as local mode fires it."""

    stack: str
    logical_id: str
    kind: str  # SCHEDULE or RULE
    arn: str  # the schedule's or the rule's
    expression: str
    period: float
    function: str  # the target's ARN: a function, version or alias
    target: dict[str, Any]  # the target's resolved properties
    retries: int
    max_age: float
    dead_letter_arn: str | None

    def payload(self) -> bytes:
        """What one scheduled event gives the function: the target's ``Input``, else (a rule) the scheduled event."""
        if self.target.get("Input") is not None or self.kind == SCHEDULE:
            return str(self.target.get("Input") or "{}").encode()
        message = {
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": time.time(),
            "region": REGION,
            "resources": [self.arn],
            "detail": {},
        }
        return json.dumps(target_input(self.target, message)).encode()

    def as_dict(self) -> dict[str, Any]:
        """What the ready file lists: where it is declared, its expression, the period it runs at and its target."""
        return {
            "stack": self.stack,
            "logical_id": self.logical_id,
            "type": self.kind,
            "arn": self.arn,
            "expression": self.expression,
            "period_seconds": self.period,
            "target": self.function,
        }


def _is_lambda(arn: str) -> bool:
    parts = arn.split(":")
    return len(parts) >= 7 and parts[0] == "arn" and parts[2] == "lambda" and parts[5] == "function"


def _targets_of(resource: Any) -> list[dict[str, Any]]:
    if resource.type == SCHEDULE:
        return [dict(resource.properties.get("Target") or {})]
    return [dict(t) for t in resource.properties.get("Targets") or ()]


def scheduled_targets(deployments: Iterable[Any], *, period: float | None, warn: Console) -> list[ScheduledTarget]:
    """Every Lambda target of the enabled schedules and scheduled rules of ``deployments`` (``StackDeployment``s), each
    with its period (``period`` when given); ``warn`` about each schedule or target that cannot be fired locally."""
    found = []
    for deployment in deployments:
        for resource in deployment.resources.values():
            p = resource.properties
            if resource.type not in (SCHEDULE, RULE) or resource.placeholder or not p.get("ScheduleExpression"):
                continue
            if str(p.get("State") or "ENABLED").upper() != "ENABLED":
                continue
            where, expression = f"{deployment.stack_name}/{resource.logical_id}", str(p["ScheduleExpression"]).strip()
            if expression.startswith(("cron(", "at(")):
                warn(f"{where}: {expression} is not fired locally; local mode fires rate(...) schedules only")
                continue
            try:
                seconds = rate_seconds(expression)
            except ValueError as error:
                warn(f"{where}: not fired locally: {error}")
                continue
            for target in _targets_of(resource):
                arn = str(target.get("Arn", ""))
                if not _is_lambda(arn):
                    warn(f"{where}: target {arn or '?'} is not fired locally; local mode fires Lambda targets only")
                    continue
                policy = target.get("RetryPolicy") or {}
                found.append(
                    ScheduledTarget(
                        stack=deployment.stack_name,
                        logical_id=resource.logical_id,
                        kind=resource.type,
                        arn=str(resource.attributes.get("Arn", "")),
                        expression=expression,
                        period=period or seconds,
                        function=arn,
                        target=target,
                        retries=min(int(policy.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS)), LOCAL_MAX_RETRIES),
                        max_age=float(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_SECONDS)),
                        dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
                    )
                )
    return found


def _failure(result: InvocationResult) -> tuple[str, str]:
    """``(error code, message)`` of a function error, from the error document Lambda returns."""
    try:
        body = result.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return str(body.get("errorType") or result.function_error), str(body.get("errorMessage") or "")
    return str(result.function_error), result.payload.decode(errors="replace")


class ScheduleRunner:
    """Fires each :class:`ScheduledTarget` every period, from its own daemon thread, until :meth:`stop`.

    Parameters
    ----------
    targets:
        From :func:`scheduled_targets`.
    environments:
        Runs the functions.
    sqs:
        A boto3 SQS client pointed at moto: dead-letter queues receive the events that failed.
    console:
        Receives one line per event that failed for good. Default: none.
    """

    def __init__(
        self,
        targets: Iterable[ScheduledTarget],
        *,
        environments: ExecutionEnvironments,
        sqs: Any,
        console: Console | None = None,
    ) -> None:
        self.targets = tuple(targets)
        self._environments = environments
        self._sqs = sqs
        self._console = console
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(t,), name=f"schedule-{t.logical_id}", daemon=True) for t in self.targets
        ]

    def start(self) -> ScheduleRunner:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop firing; an event being delivered gets no further retry. Waits a bounded time for the threads."""
        self._stop.set()
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self, target: ScheduledTarget) -> None:
        due = time.monotonic() + target.period
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            try:
                self.fire(target)
            except Exception as error:  # one event's failure must not end the schedule
                self._say(f"schedule {target.logical_id}: {type(error).__name__}: {error}")
            due += target.period
            while due <= time.monotonic():  # ticks missed while delivering are skipped
                due += target.period

    def fire(self, target: ScheduledTarget) -> bool:
        """Deliver one scheduled event: invoke, retry a failure, then dead-letter it. True when the function took it."""
        payload, started = target.payload(), time.monotonic()
        attempt = 0
        while True:
            code, message = self._invoke(target, payload)
            if code is None or self._stop.is_set():
                return code is None
            age = time.monotonic() - started
            if attempt >= target.retries or age >= target.max_age:
                break
            attempt += 1
            if self._stop.wait(min(target.period, RETRY_DELAY_SECONDS)):
                return False
        self._dead_letter(target, payload, code, message, attempt)
        return False

    def _invoke(self, target: ScheduledTarget, payload: bytes) -> tuple[str | None, str]:
        try:
            result = self._environments.invoke(target.function, payload)
        except Throttled as error:
            return "TooManyRequestsException", str(error)
        except PayloadTooLarge as error:
            return "RequestTooLargeException", str(error)
        except UnknownFunction as error:
            return "ResourceNotFoundException", f"function not found: {error}"
        return (None, "") if result.ok else _failure(result)

    def _dead_letter(self, target: ScheduledTarget, payload: bytes, code: str, message: str, retries: int) -> None:
        what = f"schedule {target.logical_id}: event for {target.function} failed after {retries} retries ({code}: {message})"
        if not target.dead_letter_arn or self._stop.is_set():
            self._say(f"{what}; dropped")
            return
        source = (
            {"SCHEDULE_ARN": target.arn, "EXECUTION_ID": str(uuid.uuid4())}
            if target.kind == SCHEDULE
            else {"RULE_ARN": target.arn}
        )
        attributes = {
            "ERROR_CODE": code or "Unknown",
            "ERROR_MESSAGE": (message or code or "-")[:1000],
            "RETRY_ATTEMPTS": str(retries),
            "TARGET_ARN": target.function,
            **source,
        }
        url = self._sqs.get_queue_url(QueueName=target.dead_letter_arn.rsplit(":", 1)[-1])["QueueUrl"]
        self._sqs.send_message(
            QueueUrl=url,
            MessageBody=payload.decode(errors="replace"),
            MessageAttributes={
                name: {"DataType": "Number" if name == "RETRY_ATTEMPTS" else "String", "StringValue": value}
                for name, value in attributes.items()
            },
        )
        self._say(f"{what}; sent to {target.dead_letter_arn}")

    def _say(self, line: str) -> None:
        if self._console is not None:
            self._console(line)


def start_schedules(
    deployments: Iterable[Any],
    *,
    environments: ExecutionEnvironments,
    sqs: Any,
    period: float | None,
    console: Console | None,
    warn: Console,
) -> ScheduleRunner:
    """Start firing the schedules of ``deployments`` (``StackDeployment``s: the import would make a cycle); ``warn``
    about those that cannot run, and about targets that are not deployed functions."""
    targets = []
    for target in scheduled_targets(deployments, period=period, warn=warn):
        if environments.knows(target.function):
            targets.append(target)
        else:
            warn(f"{target.stack}/{target.logical_id}: target {target.function} is not a deployed function; not fired")
    return ScheduleRunner(targets, environments=environments, sqs=sqs, console=console).start()


__all__ = [
    "LOCAL_MAX_RETRIES",
    "SCHEDULE_SECONDS_ENV",
    "ScheduleRunner",
    "ScheduledTarget",
    "rate_seconds",
    "schedule_period",
    "scheduled_targets",
    "start_schedules",
]
