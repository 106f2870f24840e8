"""The event log: a stream's events numbered one by one and kept briefly, as batches, for clients that reconnect.

**A stream is one session** (its id is the session id). A client that reconnects sends the one number it saw last,
``last_event_id``, and gets the rest, whichever turn they belong to, including a turn that started while it was away;
two sockets on one session see the same numbers. (A stream per turn would make the client track turns, and miss
a turn it never heard of.)

**Numbering.** Event ids are integers that only increase over the life of a stream, with no gap and no repeat. The
batches form a chain: a batch's sort key is its first event id, one more than the last id of the batch before it,
and each is written with a conditional put on that key, so two writers (two racing turns of one session) cannot
both take a number: the loser renumbers its batch after the winner's. When every batch of a stream has expired, the
next one starts a new generation at the current time in microseconds (about 1.8e15 in 2026, a safe integer in
JavaScript until 2255), so numbers stay above any a client may still hold.

**Items.** Partition key ``stream`` (S), sort key ``first_id`` (N), ``last_id``, ``events`` (the batch as a JSON
list), ``batch_id``, ``owner`` (the session's owner, for the keys-only ``by_owner`` index erasure reads) and
``expires_at`` (TTL; reads hide an expired batch at once, DynamoDB deletes it within days). Item 0 of a stream is
its generation marker.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import Any, NamedTuple

from pydantic import BaseModel

from agentrail_runtime.contract import (
    STREAM_EVENT_PARTITION_KEY,
    STREAM_EVENT_SORT_KEY,
    STREAM_EVENT_TABLE_ENV,
    STREAM_OWNER_ATTRIBUTE,
    STREAM_TTL_ATTRIBUTE,
)
from agentrail_runtime.streaming.ownership import OwnedTable
from agentrail_runtime.streaming.settings import StreamSettings, required

#: The largest batch (its events as JSON, in bytes) one item holds: DynamoDB's item limit is 400 KB.
MAX_BATCH_BYTES = 350_000
#: How many times one append renumbers its batch after other writers took its numbers before it gives up.
MAX_RENUMBERS = 8
_GENESIS = 0


class EventBatchTooLarge(ValueError):
    """A batch's events exceed :data:`MAX_BATCH_BYTES` as JSON: append them in smaller batches."""


class StreamContended(RuntimeError):
    """Other writers took the next numbers :data:`MAX_RENUMBERS` times in a row; nothing of the batch was written."""


class StreamEvent(BaseModel):
    """An event of a stream and its number."""

    event_id: int
    #: The event as the agent loop emitted it: a JSON object with a ``type`` (``token``, ``tool_call``, ``final``...).
    event: dict[str, Any]

    def wire(self) -> str:
        """The event as one WebSocket message: its fields and ``event_id`` (the number a client resumes after)."""
        return json.dumps(
            {"event_id": self.event_id, **{k: v for k, v in self.event.items() if k != "event_id"}}, separators=(",", ":")
        )


class _Batch(NamedTuple):
    first_id: int
    last_id: int
    expires_at: int
    batch_id: str
    events: str


class EventLog(OwnedTable):
    """The event log's table (DynamoDB): partition key ``stream`` (S), sort key ``first_id`` (N), TTL on
    ``expires_at``, keys-only ``by_owner`` index on ``owner``.

    Parameters
    ----------
    table_name:
        The table.
    ttl_seconds:
        How long a batch is kept after it is written (how late a client may reconnect and still catch up).
        Default: 3600.
    clock:
        Seconds since the epoch. Default: :func:`agentrail_runtime.clock.now`.
    dynamodb:
        A DynamoDB client. Default: one from :func:`agentrail_runtime.aws.client`, made on first use.
    """

    key_attributes = (STREAM_EVENT_PARTITION_KEY, STREAM_EVENT_SORT_KEY)
    default_ttl_seconds = 3600

    @classmethod
    def from_settings(cls, settings: StreamSettings) -> EventLog:
        """The table ``AGENT_STREAM_EVENT_TABLE`` names; ``ValueError`` when it is unset."""
        return cls(required(settings.event_table, STREAM_EVENT_TABLE_ENV), ttl_seconds=settings.event_ttl_seconds)

    def writer(self, stream: str, *, owner: str) -> StreamWriter:
        """A writer of ``stream`` (a session id) for one run; ``owner`` is the session's owner, whom erasure finds."""
        return StreamWriter(self, stream, owner)

    def after(self, stream: str, last_event_id: int = 0) -> Iterator[StreamEvent]:
        """Every event of ``stream`` numbered above ``last_event_id``, in order, across batches and pages (expired
        batches skipped), read page by page as the caller iterates. Whether the caller may read the stream (the
        session's owner) is the caller's check.

        Parameters
        ----------
        stream:
            The session id.
        last_event_id:
            The number of the last event the client has. Default: 0, every event kept.

        Returns
        -------
        Iterator[StreamEvent]
            The events. A client resuming (``last_event_id`` above 0) whose first event back is not
            ``last_event_id + 1`` has missed events that expired, and should reload the session instead.
        """
        current = int(self._clock())
        straddling = self._query(stream, "#sk <= :id", last_event_id, forward=False, limit=1)
        for batch in chain(straddling, self._query(stream, "#sk > :id", last_event_id, forward=True)):
            if batch.expires_at <= current or batch.last_id <= last_event_id:
                continue
            for offset, event in enumerate(json.loads(batch.events)):
                if batch.first_id + offset > last_event_id:
                    yield StreamEvent(event_id=batch.first_id + offset, event=event)

    def last_event_id(self, stream: str) -> int | None:
        """The number of the stream's last event kept; None when the stream has no live batch."""
        top = self._top(stream)
        if top is None or top.expires_at <= int(self._clock()) or top.first_id == _GENESIS:
            return None
        return top.last_id

    def _query(self, stream: str, condition: str, event_id: int, *, forward: bool, limit: int | None = None) -> Iterator[_Batch]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": f"#pk = :stream AND {condition}",
            "ExpressionAttributeNames": {"#pk": STREAM_EVENT_PARTITION_KEY, "#sk": STREAM_EVENT_SORT_KEY},
            "ExpressionAttributeValues": {":stream": {"S": stream}, ":id": {"N": str(event_id)}},
            "ScanIndexForward": forward,
            "ConsistentRead": True,
        }
        if limit is not None:
            kwargs["Limit"] = limit
        while True:
            page = self.dynamodb.query(**kwargs)
            for item in page.get("Items", []):
                yield _batch(item)
            if limit is not None or "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _top(self, stream: str) -> _Batch | None:
        """The stream's batch with the highest first id (its generation marker when it has no batch)."""
        return next(self._query(stream, "#sk >= :id", _GENESIS, forward=False, limit=1), None)

    def _get(self, stream: str, first_id: int) -> _Batch | None:
        item = self.dynamodb.get_item(TableName=self.table_name, Key=_key(stream, first_id), ConsistentRead=True).get("Item")
        return None if item is None else _batch(item)


class StreamWriter:
    """Appends batches of events to one stream, numbering them. Made by :meth:`EventLog.writer`; not thread-safe (one
    writer per run).

    An append is idempotent for a retry: after an append raised (a timeout whose write may have landed), calling it
    again with the same batch (same ``batch_id``; by default the writer's id and its count of appends) writes it
    at most once, with the same numbers.
    """

    def __init__(self, log: EventLog, stream: str, owner: str) -> None:
        self.log = log
        self.stream = stream
        self.owner = owner
        self.writer_id = secrets.token_hex(8)
        self.appended = 0
        #: The last batch this writer wrote or read at the top of the stream: where its next batch goes.
        self._head: _Batch | None = None

    def append(self, events: Iterable[Mapping[str, Any] | BaseModel], *, batch_id: str | None = None) -> list[StreamEvent]:
        """Append ``events`` as one batch (one DynamoDB item) and return them numbered.

        Parameters
        ----------
        events:
            JSON objects (or pydantic models) each with a ``type``.
        batch_id:
            What makes a retried append a no-op. Default: this writer's id and its number of appends so far, which
            a retry of a failed append repeats.

        Returns
        -------
        list[StreamEvent]
            The batch's events with their numbers (those of the first write, for a retry of a batch already written).

        Raises
        ------
        EventBatchTooLarge
            The events exceed :data:`MAX_BATCH_BYTES` as JSON.
        StreamContended
            Other writers kept taking the next numbers.
        """
        dumped = [event.model_dump(mode="json") if isinstance(event, BaseModel) else dict(event) for event in events]
        for event in dumped:
            if not isinstance(event.get("type"), str):
                raise ValueError(f"an event needs a string 'type', got {event!r:.200}")
        if not dumped:
            return []
        encoded = json.dumps(dumped, separators=(",", ":"))
        if len(encoded.encode()) > MAX_BATCH_BYTES:
            raise EventBatchTooLarge(f"{len(encoded.encode())} bytes of events in one batch, over {MAX_BATCH_BYTES}: split it")
        batch_id = batch_id or f"{self.writer_id}:{self.appended}"
        for _ in range(MAX_RENUMBERS):
            head = self._head if self._head is not None and self._live(self._head) else self._resolve_head()
            if head is None:
                continue  # a generation started by another writer: read the top again
            if head.batch_id == batch_id:  # a retry whose first write landed
                return self._done(head)
            first = head.last_id + 1
            batch = _Batch(
                first, first + len(dumped) - 1, max(self._now() + self.log.ttl_seconds, head.expires_at), batch_id, encoded
            )
            written = self._put(batch)
            if written is None:
                return self._done(batch)
            if written.batch_id == batch_id:  # the same batch, written by an earlier attempt
                return self._done(written)
            self._head = None  # another writer took these numbers: renumber after the new top
        raise StreamContended(f"stream {self.stream!r}: other writers took the next numbers {MAX_RENUMBERS} times")

    def _done(self, batch: _Batch) -> list[StreamEvent]:
        self._head = batch
        self.appended += 1
        return [StreamEvent(event_id=batch.first_id + i, event=e) for i, e in enumerate(json.loads(batch.events))]

    def _now(self) -> int:
        return int(self.log._clock())

    def _live(self, batch: _Batch) -> bool:
        return batch.expires_at > self._now()

    def _resolve_head(self) -> _Batch | None:
        """The batch the next one follows: the live top of the stream, or a new generation's marker (None when
        another writer started one first)."""
        top = self.log._top(self.stream)
        if top is not None and self._live(top):
            return top
        # Every batch has expired (one may be deleted while a lower one is not, so the top may be below numbers
        # already given out): a new generation starts above any, at the current microsecond.
        marker = self.log._get(self.stream, _GENESIS) if top is None or top.first_id != _GENESIS else top
        if marker is not None and self._live(marker) and (top is None or marker.last_id >= top.last_id):
            return marker  # a generation another writer started, whose first batch is not written yet
        base = max(int(self.log._clock() * 1_000_000), (top.last_id if top else 0) + 1, (marker.last_id if marker else 0) + 1)
        genesis = _Batch(_GENESIS, base - 1, self._now() + self.log.ttl_seconds, "", "[]")
        try:
            self._write(genesis, replacing=marker)
        except self.log.dynamodb.exceptions.ConditionalCheckFailedException:
            return None
        return genesis

    def _put(self, batch: _Batch) -> _Batch | None:
        """Write ``batch`` at its first id unless that key is taken; None when written, else the batch found there."""
        try:
            self._write(batch, replacing=None)
        except self.log.dynamodb.exceptions.ConditionalCheckFailedException as taken:
            found = taken.response.get("Item")
            if found:
                return _batch(found)
            return self.log._get(self.stream, batch.first_id) or _Batch(batch.first_id, batch.first_id, 0, "", "[]")
        return None

    def _write(self, batch: _Batch, *, replacing: _Batch | None) -> None:
        item = {
            **_key(self.stream, batch.first_id),
            "last_id": {"N": str(batch.last_id)},
            "events": {"S": batch.events},
            "batch_id": {"S": batch.batch_id},
            STREAM_OWNER_ATTRIBUTE: {"S": self.owner},
            STREAM_TTL_ATTRIBUTE: {"N": str(batch.expires_at)},
        }
        names = {"#sk": STREAM_EVENT_SORT_KEY}
        values: dict[str, Any] = {}
        condition = "attribute_not_exists(#sk)"
        if replacing is not None:  # an expired marker, replaced only as it was read (one winner among racing writers)
            condition += " OR (#expires = :expires AND #last = :last)"
            names |= {"#expires": STREAM_TTL_ATTRIBUTE, "#last": "last_id"}
            values = {":expires": {"N": str(replacing.expires_at)}, ":last": {"N": str(replacing.last_id)}}
        self.log.dynamodb.put_item(
            TableName=self.log.table_name,
            Item=item,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            **({"ExpressionAttributeValues": values} if values else {}),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )


def _key(stream: str, first_id: int) -> dict[str, Any]:
    return {STREAM_EVENT_PARTITION_KEY: {"S": stream}, STREAM_EVENT_SORT_KEY: {"N": str(first_id)}}


def _batch(item: dict[str, Any]) -> _Batch:
    return _Batch(
        first_id=int(item[STREAM_EVENT_SORT_KEY]["N"]),
        last_id=int(item["last_id"]["N"]),
        expires_at=int(item[STREAM_TTL_ATTRIBUTE]["N"]),
        batch_id=item.get("batch_id", {}).get("S", ""),
        events=item.get("events", {}).get("S", "[]"),
    )


__all__ = ["MAX_BATCH_BYTES", "MAX_RENUMBERS", "EventBatchTooLarge", "EventLog", "StreamContended", "StreamEvent", "StreamWriter"]
