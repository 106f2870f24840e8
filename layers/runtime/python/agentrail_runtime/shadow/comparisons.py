"""The comparison table: one item per sampled request, both answers side by side, expiring after its TTL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from agentrail_runtime import aws
from agentrail_runtime.clock import now
from agentrail_runtime.contract import (
    SHADOW_OWNER_ATTRIBUTE,
    SHADOW_OWNER_INDEX,
    SHADOW_PARTITION_KEY,
    SHADOW_TTL_ATTRIBUTE,
)
from agentrail_runtime.shadow.models import RunSummary, ShadowRequest


class Comparison(BaseModel):
    """A sampled request, the live answer and the candidate's."""

    request_id: str
    kind: str
    message: str
    #: Who sent the request (a session turn's session owner); None in a comparison stored before owners were kept.
    owner: str | None = None
    created_at: int
    expires_at: int
    live: RunSummary
    candidate: RunSummary


class ComparisonStore:
    """The comparison table (DynamoDB).

    Parameters
    ----------
    table_name:
        The table.
    retention_days:
        How long a comparison is kept (its ``expires_at`` TTL). Default: 14.
    store_redacted:
        Keep the message and both sides' answers and dry-run calls redacted (the agent's ``store_redacted``, as its
        sessions and tasks are). Default: False.
    clock:
        Seconds since the epoch. Default: :func:`agentrail_runtime.clock.now`.
    """

    dynamodb = aws.LazyClient("dynamodb")

    def __init__(
        self,
        table_name: str,
        *,
        retention_days: int = 14,
        store_redacted: bool = False,
        clock: Callable[[], float] = now,
        dynamodb: Any | None = None,
    ) -> None:
        if retention_days < 1:
            raise ValueError(f"retention_days must be at least 1, got {retention_days}")
        self.table_name = table_name
        self.retention_days = retention_days
        self.store_redacted = store_redacted
        self._clock = clock
        if dynamodb is not None:
            self.dynamodb = dynamodb

    def put_once(self, request: ShadowRequest, candidate: RunSummary) -> bool:
        """Store the comparison of ``request``; False (and nothing written) when its request id already has one: a
        redelivered message writes one comparison, whatever the order of the deliveries."""
        created = int(self._clock())
        if self.store_redacted:  # loaded only here: the worker of an agent that stores in clear never loads it
            from agentrail_runtime.redaction import redact
            from agentrail_runtime.redaction.models import redacted_json

            message, live, answered = redact(request.message), redacted_json(request.live), redacted_json(candidate)
        else:
            message, live, answered = request.message, request.live.model_dump_json(), candidate.model_dump_json()
        item = {
            SHADOW_PARTITION_KEY: {"S": request.request_id},
            "kind": {"S": request.kind},
            "message": {"S": message},
            "created_at": {"N": str(created)},
            SHADOW_TTL_ATTRIBUTE: {"N": str(created + self.retention_days * 86_400)},
            "live": {"S": live},
            "candidate": {"S": answered},
        }
        if request.owner is not None:  # what erasure finds the principal's comparisons by (the by_owner index)
            item[SHADOW_OWNER_ATTRIBUTE] = {"S": request.owner}
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": SHADOW_PARTITION_KEY},
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def scan(self, *, limit: int | None = None) -> Iterator[Comparison]:
        """Every comparison not yet expired (the TTL deletes expired items within days; reads hide them at once)."""
        current = int(self._clock())
        read = 0
        kwargs: dict[str, Any] = {"TableName": self.table_name}
        while True:
            page = self.dynamodb.scan(**kwargs)
            for item in page.get("Items", []):
                comparison = _comparison(item)
                if comparison.expires_at <= current:
                    continue
                yield comparison
                read += 1
                if limit is not None and read >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def owned(self, owner: str) -> Iterator[str]:
        """The request ids of every comparison of ``owner``'s requests, expired ones not yet deleted included (a paged
        Query of the keys-only ``by_owner`` index)."""
        for item in aws.query_index(self.dynamodb, self.table_name, SHADOW_OWNER_INDEX, SHADOW_OWNER_ATTRIBUTE, owner):
            yield item[SHADOW_PARTITION_KEY]["S"]

    def erase_owner(self, owner: str) -> int:
        """Delete every comparison of ``owner``'s requests; how many were deleted. Each delete is conditional on the
        owner (a request id listed by a stale index entry is never someone else's), and one already gone counts
        zero, so a second erasure reports 0."""
        keys = ({SHADOW_PARTITION_KEY: {"S": request_id}} for request_id in self.owned(owner))
        return aws.delete_owned(self.dynamodb, self.table_name, keys, owner_attribute=SHADOW_OWNER_ATTRIBUTE, owner=owner)


def _comparison(item: dict[str, Any]) -> Comparison:
    return Comparison(
        request_id=item[SHADOW_PARTITION_KEY]["S"],
        kind=item.get("kind", {}).get("S", "invoke"),
        message=item.get("message", {}).get("S", ""),
        owner=item.get(SHADOW_OWNER_ATTRIBUTE, {}).get("S"),
        created_at=int(item["created_at"]["N"]),
        expires_at=int(item[SHADOW_TTL_ATTRIBUTE]["N"]),
        live=RunSummary.model_validate_json(item["live"]["S"]),
        candidate=RunSummary.model_validate_json(item["candidate"]["S"]),
    )


__all__ = ["Comparison", "ComparisonStore"]
