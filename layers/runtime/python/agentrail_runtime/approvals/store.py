"""Pending approvals (single-use decisions by conditional write) and an append-only audit trail."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from agentrail_runtime import aws, contract
from agentrail_runtime.approvals.models import ApprovalRecord, ApprovalStatus, AuditEntry
from agentrail_runtime.clock import Clock, now

STATUS_INDEX = contract.APPROVAL_STATUS_INDEX
#: Keys-only indexes that erasure reads: approvals by ``requester``, and audit entries by ``actor``.
REQUESTER_INDEX = contract.APPROVAL_REQUESTER_INDEX
ACTOR_INDEX = contract.AUDIT_ACTOR_INDEX


class ApprovalNotFound(Exception):
    """No such approval (or not visible to this caller)."""


class AlreadyDecided(Exception):
    """The approval is no longer pending."""

    def __init__(self, status: ApprovalStatus) -> None:
        super().__init__(f"approval is {status.value}")
        self.status = status


#: How long an approval record is kept after its decision deadline (TTL ``purge_at``); the audit trail keeps the history.
RECORD_RETENTION_SECONDS = 30 * 86_400


class ApprovalStore:
    """Approvals table: partition key ``approval_id``; GSI ``by_status`` (``status``, ``requested_at``); TTL ``purge_at``,
    ``retention_seconds`` after the decision deadline."""

    def __init__(
        self,
        table_name: str,
        *,
        retention_seconds: int = RECORD_RETENTION_SECONDS,
        client: Any = None,
        clock: Clock = now,
    ) -> None:
        self.table_name = table_name
        self.retention_seconds = retention_seconds
        self.client = client or aws.client("dynamodb")
        self._clock = clock

    def now(self) -> int:
        return int(self._clock())

    def put_pending(self, record: ApprovalRecord, task_token: str) -> ApprovalRecord:
        """Create the record, or refresh the token of the same pending approval (a retried request)."""
        item = {
            "approval_id": {"S": record.approval_id},
            "task_id": {"S": record.task_id},
            "tool": {"S": record.tool},
            "arguments_json": {"S": json.dumps(record.arguments, sort_keys=True)},
            "arguments_hash": {"S": record.arguments_hash},
            "summary": {"S": record.summary},
            "requester": {"S": record.requester},
            "approver_group": {"S": record.approver_group},
            "requested_at": {"N": str(record.requested_at)},
            "expires_at": {"N": str(record.expires_at)},
            "purge_at": {"N": str(record.expires_at + self.retention_seconds)},
            "status": {"S": ApprovalStatus.PENDING.value},
            "level": {"N": str(record.level)},
            "task_token": {"S": task_token},
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(approval_id) OR #status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":pending": {"S": ApprovalStatus.PENDING.value}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            current = self.get(record.approval_id)
            raise AlreadyDecided(current.status if current else ApprovalStatus.EXPIRED) from None
        return record

    def get(self, approval_id: str) -> ApprovalRecord | None:
        item = self.client.get_item(TableName=self.table_name, Key={"approval_id": {"S": approval_id}}, ConsistentRead=True).get(
            "Item"
        )
        return self._record(item) if item else None

    def get_many(self, approval_ids: Sequence[str]) -> list[ApprovalRecord]:
        """The approvals of ``approval_ids`` that exist, in that order (BatchGetItem)."""
        items = aws.batch_get(self.client, self.table_name, "approval_id", approval_ids)
        return [self._record(items[key]) for key in approval_ids if key in items]

    def list_by_status(
        self,
        status: ApprovalStatus,
        *,
        limit: int = 50,
        accept: Callable[[ApprovalRecord], bool] = lambda _: True,
        max_pages: int = 20,
    ) -> list[ApprovalRecord]:
        """Up to ``limit`` approvals in ``status`` that ``accept`` keeps, newest first, paging through the index."""
        found: list[ApprovalRecord] = []
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=STATUS_INDEX,
            KeyConditionExpression="#status = :status",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":status": {"S": status.value}},
            ScanIndexForward=False,
            PaginationConfig={"PageSize": 100, "MaxItems": 100 * max_pages},
        )
        for page in pages:
            for item in page.get("Items", []):
                record = self._record(item)
                if accept(record):
                    found.append(record)
                    if len(found) >= limit:
                        return found
        return found

    def pending_summary(self) -> tuple[int, int | None]:
        """How many approvals are pending, and when the oldest of them was requested (epoch seconds; ``None`` when
        none is): a ``COUNT`` query of the ``by_status`` index (paged) and a one-item query of it, oldest first."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":status": {"S": ApprovalStatus.PENDING.value}},
        }
        count = sum(page.get("Count", 0) for page in self.client.get_paginator("query").paginate(Select="COUNT", **query))
        oldest = self.client.query(ScanIndexForward=True, Limit=1, ProjectionExpression="requested_at", **query).get("Items", [])
        return count, (int(oldest[0]["requested_at"]["N"]) if oldest else None)

    def decide(self, approval_id: str, *, status: ApprovalStatus, actor: str, comment: str | None) -> ApprovalRecord:
        """Single use: only a pending approval can be decided. Raises :class:`AlreadyDecided` or :class:`ApprovalNotFound`."""
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":new": {"S": status.value},
            ":pending": {"S": ApprovalStatus.PENDING.value},
            ":actor": {"S": actor},
            ":now": {"N": str(self.now())},
        }
        update = "SET #status = :new, decided_by = :actor, decided_at = :now"
        if comment:
            update += ", #comment = :comment"
            names["#comment"] = "comment"
            values[":comment"] = {"S": comment}
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"approval_id": {"S": approval_id}},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(approval_id) AND #status = :pending",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            current = self.get(approval_id)
            if current is None:
                raise ApprovalNotFound from None
            raise AlreadyDecided(current.status) from None
        return self._record(response["Attributes"], with_token=True)

    def expire_decided(self, approval_id: str, *, decided: ApprovalStatus) -> None:
        """Mark a decision that never reached the workflow (it had stopped waiting) as ``expired``.

        Conditional on the record still holding ``decided``, so nothing else is ever overwritten.
        """
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table_name,
                Key={"approval_id": {"S": approval_id}},
                UpdateExpression="SET #status = :expired",
                ConditionExpression="#status = :decided",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":expired": {"S": ApprovalStatus.EXPIRED.value}, ":decided": {"S": decided.value}},
            )

    def revert_to_pending(self, decided: ApprovalRecord) -> bool:
        """Withdraw a decision the workflow never received, so it can be made again; False if the record moved on.

        Conditional on the record still holding exactly ``decided`` (status, decider and time), so a decision
        that came after it is never undone.
        """
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"approval_id": {"S": decided.approval_id}},
                UpdateExpression="SET #status = :pending REMOVE decided_by, decided_at, #comment",
                ConditionExpression="#status = :decided AND decided_by = :actor AND decided_at = :at",
                ExpressionAttributeNames={"#status": "status", "#comment": "comment"},
                ExpressionAttributeValues={
                    ":pending": {"S": ApprovalStatus.PENDING.value},
                    ":decided": {"S": decided.status.value},
                    ":actor": {"S": decided.decided_by or ""},
                    ":at": {"N": str(decided.decided_at)},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def requested_by(self, requester: str) -> Iterator[str]:
        """The ids of every approval ``requester`` asked for (a paged Query of the ``by_requester`` index)."""
        for item in aws.query_index(self.client, self.table_name, REQUESTER_INDEX, "requester", requester):
            yield item["approval_id"]["S"]

    def erase(self, approval_id: str, *, requester: str) -> bool:
        """Delete the record of an approval ``requester`` asked for; False when it was gone already."""
        response = self.client.delete_item(
            TableName=self.table_name,
            Key={"approval_id": {"S": approval_id}},
            ConditionExpression="attribute_not_exists(approval_id) OR requester = :requester",
            ExpressionAttributeValues={":requester": {"S": requester}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response

    def pseudonymize_decider(self, approval_id: str, decider: str, pseudonym: str) -> bool:
        """Replace ``decider`` by ``pseudonym`` as the approval's ``decided_by`` (a conditional UpdateItem of that
        attribute only); False when someone else decided it, or the record is gone."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"approval_id": {"S": approval_id}},
                UpdateExpression="SET decided_by = :pseudonym",
                ConditionExpression="decided_by = :decider",
                ExpressionAttributeValues={":decider": {"S": decider}, ":pseudonym": {"S": pseudonym}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _record(self, item: dict[str, Any], *, with_token: bool = False) -> ApprovalRecord:
        record = ApprovalRecord(
            approval_id=item["approval_id"]["S"],
            task_id=item["task_id"]["S"],
            tool=item["tool"]["S"],
            arguments=json.loads(item["arguments_json"]["S"]),
            arguments_hash=item["arguments_hash"]["S"],
            summary=item["summary"]["S"],
            requester=item["requester"]["S"],
            approver_group=item["approver_group"]["S"],
            requested_at=int(item["requested_at"]["N"]),
            expires_at=int(item["expires_at"]["N"]),
            status=ApprovalStatus(item["status"]["S"]),
            level=int(item.get("level", {"N": "0"})["N"]),
            decided_by=item.get("decided_by", {}).get("S"),
            decided_at=int(item["decided_at"]["N"]) if "decided_at" in item else None,
            comment=item.get("comment", {}).get("S"),
        )
        if with_token and "task_token" in item:
            record.task_token = item["task_token"]["S"]
        return record


class AuditLog:
    """Append-only: entries are only ever put with ``attribute_not_exists``; the framework's roles are
    granted PutItem and reads, never DeleteItem, and UpdateItem only for erasure (:meth:`pseudonymize`), which may
    change an entry's ``actor`` and nothing else. Entries expire after ``retention_seconds`` (TTL).
    """

    def __init__(self, table_name: str, *, retention_seconds: int, client: Any = None, clock: Clock = now) -> None:
        self.table_name = table_name
        self.retention_seconds = retention_seconds
        self.client = client or aws.client("dynamodb")
        self._clock = clock

    def append(self, entry: AuditEntry) -> None:
        item: dict[str, Any] = {
            "approval_id": {"S": entry.approval_id},
            # Nanoseconds keep the order of entries within one second (a request and its decision often share it).
            # They come from the real clock, not the runtime's: a frozen test clock must not shuffle that order.
            "entry": {"S": f"{entry.at:012d}#{time.time_ns():020d}#{uuid.uuid4().hex}"},  # noqa: TID251
            "at": {"N": str(entry.at)},
            "event": {"S": entry.event},
            "actor": {"S": entry.actor},
            "expires_at": {"N": str(entry.at + self.retention_seconds)},
        }
        for name in ("comment", "task_id", "arguments_hash"):
            value = getattr(entry, name)
            if value:
                item[name] = {"S": value}
        self.client.put_item(TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(approval_id)")

    def entries(self, approval_id: str) -> list[AuditEntry]:
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="approval_id = :id",
            ExpressionAttributeValues={":id": {"S": approval_id}},
        )
        return [
            AuditEntry(
                approval_id=item["approval_id"]["S"],
                at=int(item["at"]["N"]),
                event=item["event"]["S"],
                actor=item["actor"]["S"],
                comment=item.get("comment", {}).get("S"),
                task_id=item.get("task_id", {}).get("S"),
                arguments_hash=item.get("arguments_hash", {}).get("S"),
            )
            for item in response.get("Items", [])
        ]

    def approvals_of(self, actor: str) -> set[str]:
        """The ids of the approvals with an entry that names ``actor`` (the ``by_actor`` index): those it requested,
        and those it decided or tried to."""
        return {item["approval_id"]["S"] for item in aws.query_index(self.client, self.table_name, ACTOR_INDEX, "actor", actor)}

    def pseudonymize(self, actor: str, pseudonym: str) -> int:
        """Replace ``actor`` by ``pseudonym`` in every entry that names it (the ``by_actor`` index, then one
        conditional UpdateItem per entry that sets ``actor`` and nothing else). Returns how many entries changed;
        a second call finds none."""
        changed = 0
        for item in aws.query_index(self.client, self.table_name, ACTOR_INDEX, "actor", actor):
            with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
                self.client.update_item(
                    TableName=self.table_name,
                    Key={"approval_id": item["approval_id"], "entry": item["entry"]},
                    UpdateExpression="SET actor = :pseudonym",
                    ConditionExpression="actor = :actor",
                    ExpressionAttributeValues={":actor": {"S": actor}, ":pseudonym": {"S": pseudonym}},
                )
                changed += 1
        return changed

    def remember_signature(self, digest: str, *, ttl_seconds: int) -> bool:
        """Record a webhook signature once; False when it was seen before (a replay)."""
        now = int(self._clock())
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "approval_id": {"S": f"signature#{digest}"},
                    "entry": {"S": "seen"},
                    "at": {"N": str(now)},
                    "event": {"S": "signature"},
                    "actor": {"S": "webhook"},
                    "expires_at": {"N": str(now + ttl_seconds)},
                },
                ConditionExpression="attribute_not_exists(approval_id)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
