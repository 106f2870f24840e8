"""Local mode fires EventBridge Scheduler schedules and scheduled rules at a compressed period, as the cloud would at theirs.

The assembly is written by hand (no CDK synth): ``Recorder``, inline code that logs each event it gets (and fails when
the event says so), published as version 1 behind the alias ``live``; a schedule on that alias, one in its own group,
a failing one with a dead-letter queue, a ``cron(...)`` one and a scheduled EventBridge rule, all fired every 0.2 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentrail_local.cloud import LocalCloud
from tests.integration.local.conftest import quiet_cloud, template_assembly

pytestmark = pytest.mark.slow

PERIOD = 0.2
RECORDER = """
import json

def handler(event, context):
    print("scheduled " + json.dumps({"event": event, "arn": context.invoked_function_arn}), flush=True)
    if isinstance(event, dict) and event.get("fail"):
        raise RuntimeError("the batch could not run")
    return {"ok": True}
"""
RECORDER_ARN = {"Fn::GetAtt": ["Recorder", "Arn"]}
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/scheduler"


def _schedule(expression: str, target: dict[str, Any], **extra: Any) -> dict[str, Any]:
    properties = {"ScheduleExpression": expression, "FlexibleTimeWindow": {"Mode": "OFF"}, "State": "ENABLED"}
    return {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {**properties, "Target": {"RoleArn": SCHEDULER_ROLE, **target}, **extra},
    }


TEMPLATE = {
    "Resources": {
        "RecorderRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                }
            },
        },
        "Recorder": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "index.handler",
                "Code": {"ZipFile": RECORDER},
                "Role": {"Fn::GetAtt": ["RecorderRole", "Arn"]},
                "Timeout": 10,
            },
        },
        "RecorderVersion": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Recorder"}}},
        "RecorderLive": {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "FunctionName": {"Ref": "Recorder"},
                "FunctionVersion": {"Fn::GetAtt": ["RecorderVersion", "Version"]},
                "Name": "live",
            },
        },
        "BatchDlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "scheduled-batch-dlq"}},
        "Nightly": {"Type": "AWS::Scheduler::ScheduleGroup", "Properties": {"Name": "nightly"}},
        "BatchLane": _schedule("rate(5 minutes)", {"Arn": {"Ref": "RecorderLive"}, "Input": json.dumps({"job": "batch"})}),
        "Grouped": _schedule("rate(1 hour)", {"Arn": RECORDER_ARN, "Input": json.dumps({"job": "grouped"})}, GroupName="nightly"),
        "Failing": _schedule(
            "rate(1 day)",
            {
                "Arn": RECORDER_ARN,
                "Input": json.dumps({"job": "failing", "fail": True}),
                "RetryPolicy": {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["BatchDlq", "Arn"]}},
            },
        ),
        "AtNight": _schedule("cron(0 1 * * ? *)", {"Arn": RECORDER_ARN, "Input": json.dumps({"job": "cron"})}),
        "Paused": _schedule("rate(1 minute)", {"Arn": RECORDER_ARN, "Input": json.dumps({"job": "paused"})}, State="DISABLED"),
        "PendingMetrics": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "ScheduleExpression": "rate(5 minutes)",
                "State": "ENABLED",
                "Targets": [{"Id": "Target0", "Arn": RECORDER_ARN}],
            },
        },
    }
}


def _assembly(root: Path) -> Path:
    return template_assembly(root, "Scheduled", TEMPLATE)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    root = tmp_path_factory.mktemp("scheduled")
    with quiet_cloud(_assembly(root / "cdk.out"), root / "state", schedule_seconds=PERIOD) as running:
        yield running


def _events(cloud: LocalCloud) -> list[dict[str, Any]]:
    """Every event ``Recorder`` logged so far, with the ARN it was invoked through."""
    log = cloud.function_log("Recorder")
    lines = log.read_text().splitlines() if log.is_file() else []
    return [json.loads(line.split("scheduled ", 1)[1]) for line in lines if "scheduled {" in line]


def _wait_for(cloud: LocalCloud, job: str, count: int, seconds: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [e for e in _events(cloud) if isinstance(e["event"], dict) and e["event"].get("job") == job]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{job} was not fired {count} times: {_events(cloud)}")


def _scheduled_events(cloud: LocalCloud, count: int, seconds: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [e for e in _events(cloud) if isinstance(e["event"], dict) and e["event"].get("detail-type") == "Scheduled Event"]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"the rule did not fire {count} times: {_events(cloud)}")


def test_the_schedule_invokes_its_alias_again_and_again_with_its_input(cloud: LocalCloud) -> None:
    fired = _wait_for(cloud, "batch", 3)

    assert {json.dumps(e["event"]) for e in fired} == {json.dumps({"job": "batch"})}
    assert {e["arn"].rsplit(":", 1)[-1] for e in fired} == {"live"}


def test_the_schedules_are_in_moto_and_in_the_ready_document(cloud: LocalCloud) -> None:
    scheduler = cloud.clients("scheduler") if cloud.clients else None
    assert scheduler is not None

    grouped = scheduler.get_schedule(Name=cloud.deployments[0].resource("Grouped").ref, GroupName="nightly")
    listed = {s["logical_id"]: s for s in cloud.ready_document()["schedules"]}

    assert grouped["ScheduleExpression"] == "rate(1 hour)" and grouped["GroupName"] == "nightly"
    assert set(listed) == {"BatchLane", "Grouped", "Failing", "PendingMetrics"}
    assert listed["BatchLane"]["period_seconds"] == PERIOD and listed["BatchLane"]["target"].endswith(":live")


def test_a_schedule_in_its_own_group_fires_too(cloud: LocalCloud) -> None:
    assert _wait_for(cloud, "grouped", 2)


def test_the_scheduled_rule_sends_the_scheduled_event_envelope(cloud: LocalCloud) -> None:
    rule_arn = cloud.deployments[0].resource("PendingMetrics").attributes["Arn"]

    event = _scheduled_events(cloud, 2)[0]["event"]

    assert event["source"] == "aws.events" and event["resources"] == [rule_arn] and event["detail"] == {}
    assert {"version", "id", "account", "time", "region"} <= set(event)


def test_a_failing_target_is_retried_then_dead_lettered_with_the_error(cloud: LocalCloud) -> None:
    sqs = cloud.clients("sqs") if cloud.clients else None
    assert sqs is not None
    url = sqs.get_queue_url(QueueName="scheduled-batch-dlq")["QueueUrl"]
    schedule_arn = cloud.deployments[0].resource("Failing").attributes["Arn"]

    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages", [])
    attempts = _wait_for(cloud, "failing", 2)

    assert messages, "no dead-letter event arrived"
    attributes = {name: value["StringValue"] for name, value in messages[0]["MessageAttributes"].items()}
    assert json.loads(messages[0]["Body"]) == {"job": "failing", "fail": True}
    assert attributes["ERROR_CODE"] == "RuntimeError" and attributes["ERROR_MESSAGE"] == "the batch could not run"
    assert attributes["RETRY_ATTEMPTS"] == "1" and attributes["SCHEDULE_ARN"] == schedule_arn
    assert attributes["TARGET_ARN"].endswith(":function:" + cloud.deployments[0].resource("Recorder").ref)
    assert len(attempts) >= 2  # the first try and its one retry


def test_cron_schedules_are_not_fired_and_say_so_and_disabled_ones_stay_quiet(cloud: LocalCloud) -> None:
    assert any("Scheduled/AtNight: cron(0 1 * * ? *) is not fired locally" in w for w in cloud.warnings)
    assert not any("Paused" in w for w in cloud.warnings)
    assert not any(e["event"].get("job") in ("cron", "paused") for e in _events(cloud) if isinstance(e["event"], dict))
