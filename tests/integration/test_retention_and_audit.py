"""What the tables keep and for how long: task and approval records expire, the audit trail is never overwritten."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentrail_runtime.approvals import store as approval_store
from agentrail_runtime.approvals.models import ApprovalRecord, AuditEntry
from agentrail_runtime.approvals.store import ApprovalStore, AuditLog
from agentrail_runtime.tasks.models import TaskRecord
from agentrail_runtime.tasks.store import TaskStore
from tests.integration.conftest import create_table

NOW = 1_800_000_000
DAY = 86_400


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def test_a_task_that_never_finishes_expires_retention_after_it_was_created(dynamodb: Any) -> None:
    # Given a task store keeping records for 7 days,
    store = TaskStore(create_table(dynamodb, "tasks", "task_id"), retention_seconds=7 * DAY, client=dynamodb, clock=lambda: NOW)
    # when a task is created (and then gets stuck, never finishing),
    store.create(TaskRecord(task_id="t-1", owner="alice", message="hi", created_at=NOW, updated_at=NOW))
    # then its record already carries the TTL attribute, 7 days ahead.
    item = dynamodb.get_item(TableName="tasks", Key={"task_id": {"S": "t-1"}})["Item"]
    assert int(item["expires_at"]["N"]) == NOW + 7 * DAY


def test_an_approval_record_expires_thirty_days_after_its_decision_deadline(dynamodb: Any) -> None:
    # Given the approvals store with its default retention,
    store = ApprovalStore(create_table(dynamodb, "approvals", "approval_id"), client=dynamodb, clock=lambda: NOW)
    deadline = NOW + 3 * DAY
    # when an approval is requested,
    store.put_pending(
        ApprovalRecord(
            approval_id="a-1",
            task_id="t-1",
            tool="issue_refund",
            arguments={"usd": 250},
            arguments_hash="h",
            summary="refund",
            requester="alice",
            approver_group="approvers",
            requested_at=NOW,
            expires_at=deadline,
        ),
        "token",
    )
    # then its record carries the table's TTL attribute (purge_at), 30 days after the deadline; the deadline stays.
    item = dynamodb.get_item(TableName="approvals", Key={"approval_id": {"S": "a-1"}})["Item"]
    assert int(item["purge_at"]["N"]) == deadline + approval_store.RECORD_RETENTION_SECONDS == deadline + 30 * DAY
    assert int(item["expires_at"]["N"]) == deadline


def test_a_second_put_of_the_same_audit_entry_is_refused(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the audit log, with the clock and ids fixed so that two appends aim at the same entry key,
    audit = AuditLog(create_table(dynamodb, "audit", "approval_id", "entry"), retention_seconds=DAY, client=dynamodb)
    monkeypatch.setattr(approval_store.time, "time_ns", lambda: 1)
    monkeypatch.setattr(approval_store.uuid, "uuid4", lambda: type("Id", (), {"hex": "same"})())
    audit.append(AuditEntry(approval_id="a-1", at=NOW, event="approved", actor="bob"))
    # when the same entry is put again with other content,
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        audit.append(AuditEntry(approval_id="a-1", at=NOW, event="rejected", actor="mallory"))
    # then the put is refused (attribute_not_exists) and the first entry stands.
    assert [(e.event, e.actor) for e in audit.entries("a-1")] == [("approved", "bob")]
