"""What the streaming tables share: every item carries its ``owner``, and erasure deletes by owner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from agentrail_runtime import aws
from agentrail_runtime.clock import now
from agentrail_runtime.contract import STREAM_OWNER_ATTRIBUTE, STREAM_OWNER_INDEX


class OwnedTable:
    """A streaming table (DynamoDB) whose items carry their ``owner`` and expire (TTL): its name, how long an item
    lives, the clock, and erasure by owner through the keys-only ``by_owner`` index. A subclass names its key
    attributes and its default TTL, and may refuse a TTL too short for it (:meth:`check_ttl`)."""

    dynamodb = aws.LazyClient("dynamodb")
    #: The attributes of an item's primary key (what the keys-only ``by_owner`` index projects besides the owner).
    key_attributes: ClassVar[tuple[str, ...]]
    #: Seconds an item lives when the caller names no ``ttl_seconds``.
    default_ttl_seconds: ClassVar[int]

    def __init__(
        self,
        table_name: str,
        *,
        ttl_seconds: int | None = None,
        clock: Callable[[], float] = now,
        dynamodb: Any | None = None,
    ) -> None:
        ttl_seconds = self.default_ttl_seconds if ttl_seconds is None else ttl_seconds
        self.check_ttl(ttl_seconds)
        self.table_name = table_name
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        if dynamodb is not None:
            self.dynamodb = dynamodb

    @classmethod
    def check_ttl(cls, ttl_seconds: int) -> None:
        """Raise ``ValueError`` for a TTL this table cannot work with. Default: under 1 second."""
        if ttl_seconds < 1:
            raise ValueError(f"ttl_seconds must be at least 1, got {ttl_seconds}")

    def owned_keys(self, principal: str) -> Iterator[dict[str, Any]]:
        """The keys of every item ``principal`` owns, expired ones not yet deleted included (the ``by_owner`` index)."""
        for item in aws.query_index(self.dynamodb, self.table_name, STREAM_OWNER_INDEX, STREAM_OWNER_ATTRIBUTE, principal):
            yield {name: item[name] for name in self.key_attributes}

    def erase_owner(self, principal: str) -> int:
        """Delete every item ``principal`` owns; how many were deleted (each delete is conditional on the owner, so a
        second erasure reports 0)."""
        keys = self.owned_keys(principal)
        return aws.delete_owned(self.dynamodb, self.table_name, keys, owner_attribute=STREAM_OWNER_ATTRIBUTE, owner=principal)


__all__ = ["OwnedTable"]
