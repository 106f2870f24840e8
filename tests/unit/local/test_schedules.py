"""Which schedules local mode fires, how often, and what a failing target's event becomes; no moto, no worker process."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from agentrail_local.awslambda.definitions import InvocationResult, Throttled
from agentrail_local.awslambda.schedules import (
    LOCAL_MAX_RETRIES,
    SCHEDULE_SECONDS_ENV,
    ScheduleRunner,
    rate_seconds,
    schedule_period,
    scheduled_targets,
)
from agentrail_local.cloudformation.resources.base import DeployedResource

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:Batch"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:batch-dlq"


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("rate( 3 Days )", 259200),
    ],
)
def test_rate_expressions_give_their_period_in_seconds(expression: str, seconds: float) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize(
    ("expression", "message"),
    [("rate(10 seconds)", "rate unit 'seconds' is not supported"), ("rate(0 minutes)", "at least 1"), ("every 5", "not a rate")],
)
def test_other_rates_are_refused_with_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rate_seconds(expression)


def test_the_period_override_comes_from_the_argument_else_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCHEDULE_SECONDS_ENV, "0.5")

    assert schedule_period(2) == 2.0
    assert schedule_period(None) == 0.5
    monkeypatch.delenv(SCHEDULE_SECONDS_ENV)
    assert schedule_period(None) is None


@pytest.mark.parametrize("value", ["soon", "0", "-1"])
def test_a_bad_period_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(SCHEDULE_SECONDS_ENV, value)

    with pytest.raises(ValueError, match="seconds"):
        schedule_period(None)


@dataclass
class _Deployment:
    stack_name: str
    resources: dict[str, DeployedResource] = field(default_factory=dict)


def _schedule(logical_id: str, expression: str, target: dict[str, Any], **extra: Any) -> DeployedResource:
    arn = f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{logical_id}"
    properties = {"ScheduleExpression": expression, "Target": target, **extra}
    return DeployedResource(logical_id, "AWS::Scheduler::Schedule", f"default|{logical_id}", logical_id, {"Arn": arn}, properties)


def _rule(logical_id: str, expression: str, targets: list[dict[str, Any]]) -> DeployedResource:
    arn = f"arn:aws:events:us-east-1:123456789012:rule/{logical_id}"
    properties = {"ScheduleExpression": expression, "Targets": targets}
    return DeployedResource(logical_id, "AWS::Events::Rule", logical_id, logical_id, {"Arn": arn}, properties)


def _targets(*resources: DeployedResource, period: float | None = None) -> tuple[list[Any], list[str]]:
    warnings: list[str] = []
    deployment = _Deployment("Batch", {r.logical_id: r for r in resources})
    return scheduled_targets([deployment], period=period, warn=warnings.append), warnings


def test_each_enabled_rate_schedule_and_rule_target_is_fired_at_its_rate_unless_overridden() -> None:
    found, warnings = _targets(
        _schedule("Lane", "rate(5 minutes)", {"Arn": f"{FUNCTION}:live", "Input": '{"job": "batch"}'}),
        _rule("Metrics", "rate(1 hour)", [{"Id": "a", "Arn": FUNCTION}, {"Id": "b", "Arn": FUNCTION}]),
        _schedule("Off", "rate(1 minute)", {"Arn": FUNCTION}, State="DISABLED"),
    )
    overridden, _ = _targets(_schedule("Lane", "rate(5 minutes)", {"Arn": FUNCTION}), period=0.2)

    assert [(t.logical_id, t.period, t.function) for t in found] == [
        ("Lane", 300, f"{FUNCTION}:live"),
        ("Metrics", 3600, FUNCTION),
        ("Metrics", 3600, FUNCTION),
    ]
    assert warnings == []
    assert [t.period for t in overridden] == [0.2]


def test_cron_at_unsupported_units_and_non_lambda_targets_are_skipped_with_a_warning() -> None:
    found, warnings = _targets(
        _schedule("Nightly", "cron(0 1 * * ? *)", {"Arn": FUNCTION}),
        _schedule("Once", "at(2030-01-01T00:00:00)", {"Arn": FUNCTION}),
        _schedule("Fast", "rate(30 seconds)", {"Arn": FUNCTION}),
        _schedule("ToQueue", "rate(1 hour)", {"Arn": QUEUE}),
    )

    assert found == []
    assert [w.split(":", 1)[0] for w in warnings] == ["Batch/Nightly", "Batch/Once", "Batch/Fast", "Batch/ToQueue"]
    assert "cron(0 1 * * ? *) is not fired locally" in warnings[0]
    assert "rate unit 'seconds' is not supported" in warnings[2]
    assert "Lambda targets only" in warnings[3]


def test_the_retries_are_capped_locally_whatever_the_policy_says() -> None:
    found, _ = _targets(
        _schedule("Default", "rate(1 hour)", {"Arn": FUNCTION}),
        _schedule("Once", "rate(1 hour)", {"Arn": FUNCTION, "RetryPolicy": {"MaximumRetryAttempts": 1}}),
        _schedule("Never", "rate(1 hour)", {"Arn": FUNCTION, "RetryPolicy": {"MaximumRetryAttempts": 0}}),
    )

    assert [t.retries for t in found] == [LOCAL_MAX_RETRIES, 1, 0]


def test_a_rule_without_input_sends_the_scheduled_event_and_a_schedule_its_input() -> None:
    (rule,), _ = _targets(_rule("Metrics", "rate(5 minutes)", [{"Id": "a", "Arn": FUNCTION}]))
    (schedule,), _ = _targets(_schedule("Lane", "rate(5 minutes)", {"Arn": FUNCTION, "Input": '{"job": "batch"}'}))

    event = json.loads(rule.payload())

    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/Metrics"] and event["detail"] == {}
    assert json.loads(schedule.payload()) == {"job": "batch"}


class _Environments:
    """Answers each invocation with an error (or a throttle) ``failures`` times, then succeeds."""

    def __init__(self, failures: int, *, throttle: bool = False) -> None:
        self.failures = failures
        self.throttle = throttle
        self.calls: list[bytes] = []

    def invoke(self, target: str, payload: bytes) -> InvocationResult:
        self.calls.append(payload)
        if len(self.calls) <= self.failures:
            if self.throttle:
                raise Throttled("Rate exceeded")
            error = {"errorType": "BatchFailed", "errorMessage": "no batch today"}
            return InvocationResult("r", json.dumps(error).encode(), "Unhandled")
        return InvocationResult("r", b'{"ok": true}')


class _Sqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:  # noqa: N803 (boto3's parameter names)
        return {"QueueUrl": f"http://moto/{QueueName}"}

    def send_message(self, **params: Any) -> None:
        self.sent.append(params)


def _runner(environments: _Environments, sqs: _Sqs) -> ScheduleRunner:
    return ScheduleRunner([], environments=environments, sqs=sqs)  # type: ignore[arg-type]


def _failing_target(**policy: Any) -> Any:
    target = {"Arn": FUNCTION, "Input": '{"job": "batch"}', "RetryPolicy": policy, "DeadLetterConfig": {"Arn": QUEUE}}
    (found,), _ = _targets(_schedule("Lane", "rate(1 minute)", target), period=0.01)
    return found


def test_a_target_that_fails_every_retry_lands_in_its_dead_letter_queue_with_the_error() -> None:
    environments, sqs = _Environments(failures=10), _Sqs()

    delivered = _runner(environments, sqs).fire(_failing_target(MaximumRetryAttempts=185))

    (message,) = sqs.sent
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert not delivered and len(environments.calls) == 1 + LOCAL_MAX_RETRIES
    assert message["QueueUrl"] == "http://moto/batch-dlq" and json.loads(message["MessageBody"]) == {"job": "batch"}
    assert attributes["ERROR_CODE"] == "BatchFailed" and attributes["ERROR_MESSAGE"] == "no batch today"
    assert attributes["RETRY_ATTEMPTS"] == str(LOCAL_MAX_RETRIES) and attributes["TARGET_ARN"] == FUNCTION
    assert attributes["SCHEDULE_ARN"].endswith("schedule/default/Lane") and attributes["EXECUTION_ID"]


def test_a_retry_that_succeeds_sends_nothing_to_the_dead_letter_queue() -> None:
    environments, sqs = _Environments(failures=1, throttle=True), _Sqs()

    delivered = _runner(environments, sqs).fire(_failing_target(MaximumRetryAttempts=2))

    assert delivered and len(environments.calls) == 2 and sqs.sent == []


def test_a_throttled_event_that_runs_out_of_retries_is_dead_lettered_as_throttled() -> None:
    environments, sqs = _Environments(failures=10, throttle=True), _Sqs()

    _runner(environments, sqs).fire(_failing_target(MaximumRetryAttempts=0))

    assert sqs.sent[0]["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "TooManyRequestsException"
    assert len(environments.calls) == 1


def test_stop_ends_the_runner_threads_without_waiting_a_period() -> None:
    (target,), _ = _targets(_schedule("Lane", "rate(1 day)", {"Arn": FUNCTION}))
    runner = ScheduleRunner([target], environments=_Environments(0), sqs=_Sqs()).start()  # type: ignore[arg-type]

    started = time.monotonic()
    runner.stop()

    assert time.monotonic() - started < 1
    assert not any(t.is_alive() for t in threading.enumerate() if t.name == "schedule-Lane")
