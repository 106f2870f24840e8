"""An approval still pending after ``reminder_after`` puts an "Approval Reminder" event on the task bus."""

from __future__ import annotations

import json

import boto3

BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-bus/agentrail-approval-tests"
ROLE_ARN = "arn:aws:iam::123456789012:role/reminders"
GROUP = "approval-reminders"


def reminder_settings() -> dict:
    return {
        "reminder_after_seconds": 3600,
        "scheduler_group": GROUP,
        "scheduler_role_arn": ROLE_ARN,
        "event_bus_arn": BUS_ARN,
    }


def test_a_pending_approval_schedules_a_one_time_reminder_on_the_task_bus(deployment):
    scheduler = boto3.client("scheduler", region_name="us-east-1")
    scheduler.create_schedule_group(Name=GROUP)
    approvals = deployment(**reminder_settings())

    paused = approvals.pause()

    schedule = scheduler.get_schedule(Name=f"approval-{paused.approval_id}", GroupName=GROUP)
    assert schedule["ScheduleExpression"].startswith("at(")
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == BUS_ARN
    assert schedule["Target"]["RoleArn"] == ROLE_ARN
    assert schedule["Target"]["EventBridgeParameters"]["DetailType"] == "Approval Reminder"
    assert json.loads(schedule["Target"]["Input"])["approval_id"] == paused.approval_id


def test_a_decision_cancels_the_pending_reminder(deployment, api_event):
    scheduler = boto3.client("scheduler", region_name="us-east-1")
    scheduler.create_schedule_group(Name=GROUP)
    approvals = deployment(**reminder_settings())
    paused = approvals.pause()

    reply = approvals.call(api_event("decide-approve", approval_id=paused.approval_id))

    assert reply.status == 200
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=GROUP)["Schedules"]]
    assert f"approval-{paused.approval_id}" not in names
