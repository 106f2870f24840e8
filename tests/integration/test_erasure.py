"""Erasure of one principal against moto: every store populated for two principals, one erased, the other untouched."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentrail_runtime.approvals.models import ApprovalRecord, ApprovalStatus, AuditEntry
from agentrail_runtime.approvals.store import ACTOR_INDEX, REQUESTER_INDEX, ApprovalStore, AuditLog
from agentrail_runtime.budgets import DailyBudgets, counter_key, utc_day
from agentrail_runtime.clock import Clock
from agentrail_runtime.erasure import ErasureCounts, ErasureSettings, PrincipalEraser, pseudonym
from agentrail_runtime.metering.feedback import Feedback
from agentrail_runtime.models.base import Message
from agentrail_runtime.sessions.dynamodb import OWNER_INDEX as SESSION_OWNER_INDEX
from agentrail_runtime.sessions.dynamodb import DynamoDBSessionStore
from agentrail_runtime.sessions.offload import S3TurnOffload
from agentrail_runtime.sessions.store import Turn
from agentrail_runtime.shadow.comparisons import ComparisonStore
from agentrail_runtime.shadow.models import RunSummary, ShadowRequest
from agentrail_runtime.tasks.models import TaskRecord, TaskResult, TaskStatus
from agentrail_runtime.tasks.store import OWNER_INDEX as TASK_OWNER_INDEX
from agentrail_runtime.tasks.store import PARENT_INDEX, TaskStore
from tests.integration.conftest import create_comparison_table, create_table

ALICE = "iam:arn:aws:iam::123456789012:user/alice"
BOB = "iam:arn:aws:iam::123456789012:user/bob"
SALT = "test-salt"


@dataclass
class Stores:
    dynamodb: Any
    s3: Any
    sessions: DynamoDBSessionStore
    tasks: TaskStore
    approvals: ApprovalStore
    audit: AuditLog
    shadow: ComparisonStore
    clock: Clock

    def eraser(self, *, client: Any = None) -> PrincipalEraser:
        return PrincipalEraser(
            sessions=self.sessions,
            tasks=self.tasks,
            approvals=self.approvals,
            audit=self.audit,
            budgets=DailyBudgets("budgets", (), client=client or self.dynamodb, clock=self.clock),
            shadow=self.shadow,
            salt=lambda: SALT,
            settings=ErasureSettings(),
        )

    def scan(self, table: str) -> list[dict[str, Any]]:
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=table)
        return [item for page in pages for item in page["Items"]]

    def objects(self, bucket: str) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture
def stores(clock: Clock) -> Iterator[Stores]:
    with mock_aws():
        dynamodb, s3 = boto3.client("dynamodb"), boto3.client("s3")
        create_table(dynamodb, "sessions", "pk", "sk", indexes={SESSION_OWNER_INDEX: "owner"})
        create_table(dynamodb, "tasks", "task_id", indexes={TASK_OWNER_INDEX: "owner", PARENT_INDEX: "parent"})
        create_table(dynamodb, "approvals", "approval_id", indexes={REQUESTER_INDEX: "requester"})
        create_table(dynamodb, "audit", "approval_id", "entry", indexes={ACTOR_INDEX: "actor"})
        create_table(dynamodb, "budgets", "pk")
        create_comparison_table(dynamodb, "shadow")
        for bucket in ("offload", "results"):
            s3.create_bucket(Bucket=bucket)
        yield Stores(
            dynamodb=dynamodb,
            s3=s3,
            # A tiny item limit: every turn goes to S3, so the offload bucket has objects to erase.
            sessions=DynamoDBSessionStore(
                "sessions", client=dynamodb, clock=clock, offload=S3TurnOffload("offload", client=s3), max_payload_bytes=10
            ),
            tasks=TaskStore("tasks", bucket="results", client=dynamodb, s3_client=s3, clock=clock),
            approvals=ApprovalStore("approvals", client=dynamodb, clock=clock),
            audit=AuditLog("audit", retention_seconds=86_400, client=dynamodb, clock=clock),
            shadow=ComparisonStore("shadow", dynamodb=dynamodb, clock=clock),
            clock=clock,
        )


def populate(stores: Stores, principal: str, *, approver: str) -> None:
    """A principal's data in every store: a session with two turns (one rated), a finished task with a large result,
    feedback, subtasks and a run checkpoint, an approval with its audit entries (decided by ``approver``), and
    today's budget counter, and the shadow comparison of one of its requests."""
    now = int(stores.clock())
    sessions = stores.sessions
    session = sessions.create(owner=principal, state={"city": "Lisbon"})
    for number in (1, 2):
        window = sessions.load_window(session.session_id, owner=principal)
        turn = Turn(
            number=number,
            created_at=now,
            messages=[Message.user(f"question {number}"), Message.assistant("answer")],
            answer="answer",
            status="completed",
            model="local:echo",
        )
        sessions.commit_turn(window, turn)
    sessions.give_feedback(session.session_id, owner=principal, turn=1, feedback=Feedback(score=5, given_at=now))

    task_id = uuid.uuid4().hex
    stores.tasks.create(TaskRecord(task_id=task_id, owner=principal, message="plan a trip", created_at=now, updated_at=now))
    stores.tasks.mark_running(task_id)
    stores.tasks.put_subtasks(task_id, ["flights", "hotels"])
    stores.tasks.save_run_checkpoint(task_id, "plan", "{}")
    large = TaskResult(answer="x" * 310_000, agent_status="completed", model="local:echo")
    stores.tasks.finish(task_id, status=TaskStatus.SUCCEEDED, result=large)
    stores.tasks.give_feedback(task_id, owner=principal, feedback=Feedback(thumbs="up", given_at=now))

    approval_id = uuid.uuid4().hex
    record = ApprovalRecord(
        approval_id=approval_id,
        task_id=task_id,
        tool="book_flight",
        arguments={"to": "LIS"},
        arguments_hash="h",
        summary="book a flight",
        requester=principal,
        approver_group="approvers",
        requested_at=now,
        expires_at=now + 3600,
    )
    stores.approvals.put_pending(record, "token")
    stores.audit.append(AuditEntry(approval_id=approval_id, at=now, event="requested", actor=principal, task_id=task_id))
    stores.audit.append(AuditEntry(approval_id=approval_id, at=now, event="approved", actor=approver, task_id=task_id))
    stores.approvals.decide(approval_id, status=ApprovalStatus.APPROVED, actor=approver, comment=None)

    live = RunSummary(answer="answer", status="completed", model="local", agent_version="v1")
    stores.shadow.put_once(ShadowRequest(request_id=uuid.uuid4().hex, message="hi", owner=principal, live=live), live)

    stores.dynamodb.put_item(
        TableName="budgets",
        Item={"pk": {"S": counter_key("tenant", principal, utc_day(now))}, "tokens": {"N": "100"}},
    )


def _canonical(item: dict[str, Any]) -> str:
    """An item as text, its attributes in name order (an update reorders them in moto's answers)."""
    return json.dumps(item, sort_keys=True)


def snapshot(stores: Stores) -> dict[str, Any]:
    tables = {
        name: sorted(map(_canonical, stores.scan(name)))
        for name in ("sessions", "tasks", "approvals", "audit", "budgets", "shadow")
    }
    return {**tables, "offload": stores.objects("offload"), "results": stores.objects("results")}


def mentions(stores: Stores, principal: str) -> list[str]:
    """Every item or object key anywhere that names ``principal``."""
    found = [
        f"{t}: {_canonical(item)}"
        for t in ("sessions", "tasks", "approvals", "audit", "budgets", "shadow")
        for item in stores.scan(t)
    ]
    return [line for line in found if principal in line]


def bob_after_erasing_alice(bob_mentions: list[str]) -> list[str]:
    """What names bob once alice is erased: what did before, but alice's approval (which bob decided) is gone, and
    alice's pseudonym decided bob's."""
    requested_by_alice = json.dumps({"requester": {"S": ALICE}})[1:-1]
    alias = pseudonym(ALICE, SALT)
    return sorted(line.replace(ALICE, alias) for line in bob_mentions if requested_by_alice not in line)


EXPECTED = ErasureCounts(
    sessions=1,
    session_items=3,  # two turns and the state document
    session_objects=2,  # both turns were offloaded
    tasks=1,
    subtasks=3,  # two subtasks and one run checkpoint
    task_objects=1,  # the large result
    feedback=2,  # one turn's and the task's
    approvals=1,
    audit_entries=2,  # alice requested one approval and decided bob's
    decisions=1,  # bob's approval, decided_by alice
    budget_counters=1,
    shadow_comparisons=1,
)


def test_erasing_a_principal_deletes_its_data_in_every_store_and_leaves_the_other_principals_untouched(stores):
    # Given alice and bob with data in every store, each the approver of the other's approval
    populate(stores, BOB, approver=ALICE)
    bob_only = snapshot(stores)
    populate(stores, ALICE, approver=BOB)
    bob_mentions = mentions(stores, BOB)

    # When alice is erased
    counts = stores.eraser().erase(ALICE)

    # Then every kind is counted, nothing names alice any more, and alice's audit entries carry her pseudonym
    assert counts == EXPECTED
    assert mentions(stores, ALICE) == []
    alias = pseudonym(ALICE, SALT)
    actors = sorted(item["actor"]["S"] for item in stores.scan("audit"))
    assert actors == sorted([BOB, BOB, alias, alias])
    # And bob's data is exactly what it was, but for the pseudonym in the entry alice made on bob's approval, and as
    # the decider of that approval
    assert sorted(mentions(stores, BOB)) == bob_after_erasing_alice(bob_mentions)
    after = snapshot(stores)
    for store in ("sessions", "tasks", "budgets", "shadow", "offload", "results"):
        assert after[store] == bob_only[store], store
    assert after["approvals"] == sorted(item.replace(ALICE, alias) for item in bob_only["approvals"])
    assert alias in str(after["approvals"])


def test_a_second_erasure_reports_zeros_and_changes_nothing(stores):
    # Given alice, already erased
    populate(stores, ALICE, approver=BOB)
    populate(stores, BOB, approver=ALICE)
    stores.eraser().erase(ALICE)
    before = snapshot(stores)

    # When she is erased again
    counts = stores.eraser().erase(ALICE)

    # Then nothing is left to count and nothing changed
    assert counts == ErasureCounts()
    assert snapshot(stores) == before


class FailingDeletes:
    """A DynamoDB client whose ``fail_at``-th DeleteItem fails as a throttle beyond botocore's retries would."""

    def __init__(self, client: Any, *, fail_at: int) -> None:
        self._client = client
        self.deletes = 0
        self.fail_at = fail_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def delete_item(self, **request: Any) -> Any:
        self.deletes += 1
        if self.deletes == self.fail_at:
            raise RuntimeError("injected failure")
        return self._client.delete_item(**request)


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4])
def test_an_erasure_that_fails_halfway_is_finished_by_running_it_again(stores, fail_at):
    # Given alice and bob, and a client whose n-th DeleteItem fails
    populate(stores, ALICE, approver=BOB)
    populate(stores, BOB, approver=ALICE)
    bob_mentions = mentions(stores, BOB)
    failing = FailingDeletes(stores.dynamodb, fail_at=fail_at)
    stores.tasks.client = failing
    stores.approvals.client = failing
    stores.sessions.client = failing

    # When the erasure fails halfway, then runs again with a working client
    with pytest.raises(RuntimeError, match="injected failure"):
        stores.eraser(client=failing).erase(ALICE)
    for store in (stores.tasks, stores.approvals, stores.sessions):
        store.client = stores.dynamodb
    second = stores.eraser().erase(ALICE)

    # Then alice is gone, bob is not, and a third run finds nothing left
    assert mentions(stores, ALICE) == []
    assert sorted(mentions(stores, BOB)) == bob_after_erasing_alice(bob_mentions)
    assert second != ErasureCounts()  # it finished what the failure left
    assert stores.eraser().erase(ALICE) == ErasureCounts()


class FailingFirstUpdate:
    """A DynamoDB client whose first UpdateItem fails (a throttle beyond botocore's retries), the rest go through."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **request: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise RuntimeError("injected failure")
        return self._client.update_item(**request)


@pytest.mark.parametrize("failing", ["approvals", "audit"])
def test_an_erasure_that_stops_between_the_decisions_and_the_audit_trail_is_finished_by_running_it_again(stores, failing):
    # Given bob's approval, decided by alice, and a first UpdateItem that fails on the approvals or on the audit trail
    populate(stores, BOB, approver=ALICE)
    store = stores.approvals if failing == "approvals" else stores.audit
    store.client = FailingFirstUpdate(stores.dynamodb)

    # When alice's erasure stops there, then runs again
    with pytest.raises(RuntimeError, match="injected failure"):
        stores.eraser().erase(ALICE)
    stores.eraser().erase(ALICE)

    # Then nothing names alice: bob's approval and her audit entry name her pseudonym
    assert mentions(stores, ALICE) == []
    assert str(stores.scan("approvals")).count(pseudonym(ALICE, SALT)) == 1
