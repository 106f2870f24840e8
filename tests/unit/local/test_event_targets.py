"""What an EventBridge rule's Lambda target receives in local mode: the event envelope, or the target's input settings."""

from __future__ import annotations

import json

from agentrail_local.awslambda.moto_seam import eventbridge_event, target_input

# moto's internal event message: epoch seconds and an ingestion time the service never shows its targets.
MESSAGE = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Task Finished",
    "source": "agentrail_runtime.tasks",
    "account": "123456789012",
    "time": 1795855336.25,
    "region": "us-east-1",
    "resources": [],
    "detail": {"task_id": "t-1", "status": "succeeded"},
    "ingestion-time": 1795855336.5,
}


def test_a_target_without_input_settings_receives_the_whole_event_with_an_iso_time() -> None:
    event = target_input({"Id": "Target0", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:notifier:live"}, MESSAGE)

    assert event == eventbridge_event(MESSAGE)
    assert event["time"] == "2026-11-28T08:42:16Z"
    assert "ingestion-time" not in event
    assert event["detail"] == {"task_id": "t-1", "status": "succeeded"}


def test_a_constant_input_replaces_the_event() -> None:
    assert target_input({"Input": json.dumps({"fixed": True})}, MESSAGE) == {"fixed": True}


def test_an_input_path_selects_part_of_the_event() -> None:
    assert target_input({"InputPath": "$.detail"}, MESSAGE) == {"task_id": "t-1", "status": "succeeded"}


def test_an_input_transformer_fills_its_template_from_the_event() -> None:
    transformer = {"InputPathsMap": {"task": "$.detail.task_id"}, "InputTemplate": '{"finished": "<task>"}'}

    assert target_input({"InputTransformer": transformer}, MESSAGE) == {"finished": "t-1"}
