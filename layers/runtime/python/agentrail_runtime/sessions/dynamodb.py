"""DynamoDB session store: one item per turn, one Query per turn's read, one transaction per turn.

(``read_page``, behind ``GET /sessions/{id}``, makes two Queries: metadata and state, then a page of turns;
turns offloaded to S3 add one GetObject each.)

Item layout (partition key ``pk`` = session id, sort key ``sk``)::

    ~turn      optional in-flight turn: the checkpoint of a turn that reached a tool with side effects and is
               not committed yet (one message at a time); the commit that appends the turn removes it
    ~summary   optional extractive summary of turns that left the window
    ~state     versioned state document (JSON in ``data``)
    ~meta      owner, turn count (the version), timestamps, sliding TTL ``expires_at``
    turn#0000000001 ...   one item per turn (JSON payload, or a pointer to S3)

``~`` sorts after ``t``, so a descending Query with ``Limit = window + 4``
returns the in-flight turn, summary, state, metadata and the newest turns in one call. Only
``~meta`` carries the TTL attribute: a session expires as a whole, reads treat
an expired ``~meta`` as absent at once (TTL deletion can lag by days), and the
clean-up consumer of the table's stream purges the other items when DynamoDB
deletes ``~meta``.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from collections.abc import Iterator
from itertools import islice
from typing import Any

from agentrail_runtime import aws, contract
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.metering.feedback import Feedback, FeedbackGiven
from agentrail_runtime.sessions.offload import S3TurnOffload
from agentrail_runtime.sessions.settings import SessionSettings
from agentrail_runtime.sessions.store import (
    ErasedSession,
    InFlightTurn,
    SessionInfo,
    SessionNotFound,
    SessionPage,
    SessionStore,
    StateConflict,
    StateDocument,
    TruncationStrategy,
    Turn,
    TurnConflict,
    TurnNotFound,
    TurnTooLarge,
    Window,
    forget_compact_history,
    summarize_turns,
)

META, STATE, SUMMARY, IN_FLIGHT, TURN_PREFIX = "~meta", "~state", "~summary", "~turn", "turn#"
#: How many of an owner's sessions :meth:`DynamoDBSessionStore.recent_sessions` reads at most.
MAX_LISTED_SESSIONS = 1_000
#: Items above the turns: ~turn, ~summary, ~state, ~meta.
HEAD_ITEMS = 4
TTL_ATTRIBUTE = "expires_at"
#: The table's sparse index of sessions by owner (partition key ``owner``, keys only): only ``~meta`` carries ``owner``.
OWNER_INDEX = contract.SESSION_OWNER_INDEX
# DynamoDB's item limit is 400 KB; keys, attribute names and metadata need headroom.
MAX_PAYLOAD_BYTES = 350_000
#: What :class:`ParsedTurns` holds at most, per store: turns, and characters of their payloads.
PARSED_TURNS_PER_WINDOW = 8
PARSED_TURN_CHARS = 1_000_000


def turn_key(number: int) -> str:
    return f"{TURN_PREFIX}{number:010d}"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class DynamoDBSessionStore(SessionStore):
    """Parameters
    ----------
    table_name:
        The SessionTable.
    ttl_seconds:
        Sliding expiry, refreshed by every write. Default: 24 hours.
    window_turns, window_tokens:
        The history window: at most this many turns, and at most this many estimated tokens. Defaults: 20, 8,000.
    strategy:
        ``truncate`` drops turns beyond the window; ``summary`` also keeps an extractive summary of them.
    offload:
        Where turns over the item limit go; without it they are refused (:class:`TurnTooLarge`).
    client, clock:
        Injected for tests.
    """

    def __init__(
        self,
        table_name: str,
        *,
        ttl_seconds: int = 86_400,
        window_turns: int = 20,
        window_tokens: int = 8_000,
        strategy: TruncationStrategy = "truncate",
        offload: S3TurnOffload | None = None,
        client: Any = None,
        clock: Clock = now,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        self.table_name = table_name
        self.ttl_seconds = ttl_seconds
        self.window_turns = window_turns
        self.window_tokens = window_tokens
        self.strategy = strategy
        self.offload = offload
        self.client = client or aws.client("dynamodb")
        self._clock = clock
        self.max_payload_bytes = max_payload_bytes
        self._table: Any = None  # the resource API, for batch_writer's re-sends of unprocessed deletes
        self.parsed = ParsedTurns(max_turns=PARSED_TURNS_PER_WINDOW * window_turns, max_chars=PARSED_TURN_CHARS)

    @classmethod
    def from_settings(cls, settings: SessionSettings) -> DynamoDBSessionStore:
        """The store a function's environment describes (``AGENT_SESSION_*``)."""
        return cls(
            settings.table,
            ttl_seconds=settings.ttl_seconds,
            window_turns=settings.window_turns,
            window_tokens=settings.window_tokens,
            strategy=settings.truncation,
            offload=S3TurnOffload(settings.offload_bucket) if settings.offload_bucket else None,
        )

    def _now(self) -> int:
        return int(self._clock())

    # -- sessions -------------------------------------------------------------------

    def create(self, *, owner: str, state: dict[str, Any] | None = None) -> SessionInfo:
        now = self._now()
        info = SessionInfo(
            session_id=uuid.uuid4().hex, owner=owner, created_at=now, updated_at=now, expires_at=now + self.ttl_seconds, turns=0
        )
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": self._meta_item(info),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        if state:
            items.append({"Put": {"TableName": self.table_name, "Item": self._state_item(info.session_id, 1, state, now)}})
        self.client.transact_write_items(TransactItems=items)
        return info

    def get_session(self, session_id: str, *, owner: str) -> SessionInfo:
        """The session's metadata (one consistent GetItem). Raises :class:`SessionNotFound`."""
        response = self.client.get_item(
            TableName=self.table_name, Key={"pk": _s(session_id), "sk": _s(META)}, ConsistentRead=True
        )
        return self._visible(response.get("Item"), owner)

    def _visible(self, item: dict[str, Any] | None, owner: str) -> SessionInfo:
        if item is None:
            raise SessionNotFound
        info = self._info(item)
        if info.owner != owner or info.expires_at <= self._now():
            raise SessionNotFound
        return info

    # -- turns ----------------------------------------------------------------------

    def load_window(self, session_id: str, *, owner: str) -> Window:
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(session_id)},
            ScanIndexForward=False,
            Limit=self.window_turns + HEAD_ITEMS,
            ConsistentRead=True,
        )
        meta = state = summary = in_flight = None
        turn_items: list[dict[str, Any]] = []
        for item in response.get("Items", []):
            sk = item["sk"]["S"]
            if sk == IN_FLIGHT:
                in_flight = item
            elif sk == META:
                meta = item
            elif sk == STATE:
                state = item
            elif sk == SUMMARY:
                summary = item
            elif sk.startswith(TURN_PREFIX):
                turn_items.append(item)
        info = self._visible(meta, owner)
        kept: list[Turn] = []
        budget = self.window_tokens
        # Newest first; the Query's Limit leaves room for head items a session may not have: turns past the window
        # are not parsed.
        candidates = [self._turn(item) for item in turn_items[: self.window_turns]]
        for turn in candidates:
            if turn.tokens > budget:
                break
            budget -= turn.tokens
            kept.append(turn)
        older = candidates[len(kept) :]
        kept.reverse()
        older.reverse()
        return Window(
            session=info,
            state=self._state(state),
            summary=summary["text"]["S"] if summary and self.strategy == "summary" else None,
            summary_through=int(summary["through"]["N"]) if summary else 0,
            turns=kept,
            truncated=len(kept) < info.turns,
            older=older,
            in_flight=self._in_flight(in_flight) if in_flight else None,
        )

    def save_in_flight(self, window: Window, in_flight: InFlightTurn, *, claim: bool) -> None:
        session_id = window.session.session_id
        item: dict[str, Any] = {
            "pk": _s(session_id),
            "sk": _s(IN_FLIGHT),
            "message_id": _s(in_flight.message_id),
            "updated_at": _n(in_flight.updated_at),
            "lease_until": _n(in_flight.lease_until),
        }
        if len(in_flight.checkpoint.encode()) > self.max_payload_bytes:
            if self.offload is None:
                raise TurnTooLarge
            key = self.offload.put(f"{self.offload.prefix}{session_id}/in-flight.json", in_flight.checkpoint)
            item["checkpoint_s3_key"] = _s(key)
        else:
            item["checkpoint"] = _s(in_flight.checkpoint)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)" if claim else "message_id = :mine",
                **({} if claim else {"ExpressionAttributeValues": {":mine": _s(in_flight.message_id)}}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise TurnConflict from None

    def release_in_flight(self, session_id: str, message_id: str) -> bool:
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": _s(session_id), "sk": _s(IN_FLIGHT)},
                ConditionExpression="message_id = :mine",
                ExpressionAttributeValues={":mine": _s(message_id)},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _in_flight(self, item: dict[str, Any]) -> InFlightTurn:
        if "checkpoint" in item:
            checkpoint = item["checkpoint"]["S"]
        elif self.offload is not None:
            checkpoint = self.offload.get(item["checkpoint_s3_key"]["S"])
        else:
            raise RuntimeError("an in-flight turn is stored in S3 but this store has no offload bucket configured")
        return InFlightTurn(
            message_id=item["message_id"]["S"],
            checkpoint=checkpoint,
            updated_at=int(item["updated_at"]["N"]),
            lease_until=int(item["lease_until"]["N"]),
        )

    def commit_turn(
        self, window: Window, turn: Turn, *, state: dict[str, Any] | None = None, release: str | None = None
    ) -> SessionInfo:
        session = window.session
        if turn.number != session.turns + 1:
            raise ValueError(f"turn {turn.number} does not follow turn {session.turns}")
        now = self._now()
        expires_at = now + self.ttl_seconds
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": self._turn_item(session.session_id, turn),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"pk": _s(session.session_id), "sk": _s(META)},
                    "UpdateExpression": "SET turns = :next, updated_at = :now, #ttl = :expires",
                    "ConditionExpression": "turns = :prev AND #owner = :owner AND #ttl > :now",
                    "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE, "#owner": "owner"},
                    "ExpressionAttributeValues": {
                        ":next": _n(turn.number),
                        ":prev": _n(session.turns),
                        ":now": _n(now),
                        ":expires": _n(expires_at),
                        ":owner": _s(session.owner),
                    },
                }
            },
        ]
        if state is not None and state != window.state.data:
            items.append(self._state_put(session.session_id, window.state.version, state, now))
        if release is not None:
            items.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": {"pk": _s(session.session_id), "sk": _s(IN_FLIGHT)},
                        "ConditionExpression": "message_id = :mine",
                        "ExpressionAttributeValues": {":mine": _s(release)},
                    }
                }
            )
        if self.strategy == "summary":
            following = [*window.turns, turn]
            # Turns the token budget already left out are leaving the window too, not only the count overflow.
            leaving = [*window.older, *following[: max(0, len(following) - self.window_turns)]]
            dropped = [t for t in leaving if t.number > window.summary_through]
            if dropped:
                text = summarize_turns(window.summary, dropped)
                items.append(
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": {
                                "pk": _s(session.session_id),
                                "sk": _s(SUMMARY),
                                "text": _s(text),
                                "through": _n(dropped[-1].number),
                            },
                        }
                    }
                )
        self._transact(items, session.session_id, session.owner, conflict=TurnConflict)
        return session.model_copy(update={"turns": turn.number, "updated_at": now, "expires_at": expires_at})

    def read_page(self, session_id: str, *, owner: str, limit: int, cursor: str | None) -> SessionPage:
        after = decode_cursor(cursor) if cursor else 0
        described = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :tilde)",
            ExpressionAttributeValues={":pk": _s(session_id), ":tilde": _s("~")},
            ConsistentRead=True,
        )
        by_key = {item["sk"]["S"]: item for item in described.get("Items", [])}
        info = self._visible(by_key.get(META), owner)
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":pk": _s(session_id),
                ":first": _s(turn_key(after + 1)),
                ":last": _s(turn_key(10**10 - 1)),
            },
            Limit=limit,
            ConsistentRead=True,
        )
        turns = [self._turn(item) for item in response.get("Items", [])]
        more = "LastEvaluatedKey" in response and turns and turns[-1].number < info.turns
        return SessionPage(
            session=info,
            state=self._state(by_key.get(STATE)),
            turns=turns,
            next_cursor=encode_cursor(turns[-1].number) if more else None,
        )

    # -- state ----------------------------------------------------------------------

    def update_state(self, session_id: str, *, owner: str, data: dict[str, Any], expected_version: int) -> StateDocument:
        now = self._now()
        items = [
            self._touch_meta(session_id, owner, now),
            self._state_put(session_id, expected_version, data, now),
        ]
        self._transact(items, session_id, owner, conflict=StateConflict)
        return StateDocument(version=expected_version + 1, data=data)

    def read_turn(self, session_id: str, *, owner: str, number: int) -> Turn:
        """One consistent GetItem of ``~meta`` (the owner), then one of the turn's item (its payload from S3 when it
        was offloaded)."""
        info = self.get_session(session_id, owner=owner)
        item = None
        if 1 <= number <= info.turns:
            key = {"pk": _s(session_id), "sk": _s(turn_key(number))}
            item = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            raise TurnNotFound
        return self._turn(item)

    # -- feedback -------------------------------------------------------------------

    def give_feedback(self, session_id: str, *, owner: str, turn: int | None, feedback: Feedback) -> int:
        """One consistent GetItem (the owner is on ``~meta``, and never changes), then one conditional UpdateItem of
        the turn's item (attribute ``feedback``; the turn's payload is left as it is)."""
        info = self.get_session(session_id, owner=owner)
        number = info.turns if turn is None else turn
        if not 1 <= number <= info.turns:
            raise TurnNotFound
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": _s(session_id), "sk": _s(turn_key(number))},
                UpdateExpression="SET feedback = :feedback",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(feedback)",
                ExpressionAttributeValues={":feedback": _s(feedback.model_dump_json(exclude_none=True))},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            item = self.client.get_item(
                TableName=self.table_name, Key={"pk": _s(session_id), "sk": _s(turn_key(number))}, ConsistentRead=True
            ).get("Item")
            if item is None:  # erased meanwhile
                raise SessionNotFound from None
            raise FeedbackGiven from None
        return number

    # -- erasure --------------------------------------------------------------------

    def delete(self, session_id: str, *, owner: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": _s(session_id), "sk": _s(META)},
                ConditionExpression="#owner = :owner AND #ttl > :now",
                ExpressionAttributeNames={"#owner": "owner", "#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":owner": _s(owner), ":now": _n(self._now())},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise SessionNotFound from None
        self.purge(session_id)

    def purge(self, session_id: str) -> int:
        items, _, _ = self._delete_items(session_id)
        return items

    def recent_sessions(self, owner: str, *, limit: int) -> list[SessionInfo]:
        """The metadata of ``owner``'s sessions (the ``by_owner`` index, then BatchGetItem), the live ones, most
        recently updated first; of the first :data:`MAX_LISTED_SESSIONS` the index names."""
        ids = list(islice(self.owned_sessions(owner), MAX_LISTED_SESSIONS))
        found = aws.batch_get(self.client, self.table_name, "pk", ids, sort_key={"sk": _s(META)})
        now = self._now()
        live = [info for info in map(self._info, found.values()) if info.owner == owner and info.expires_at > now]
        return sorted(live, key=lambda info: (info.updated_at, info.session_id), reverse=True)[:limit]

    def owned_sessions(self, owner: str) -> Iterator[str]:
        """A paged Query of the ``by_owner`` index."""
        for item in aws.query_index(self.client, self.table_name, OWNER_INDEX, "owner", owner):
            yield item["pk"]["S"]

    def erase_session(self, session_id: str, *, owner: str) -> ErasedSession:
        """Every item of the session, its offloaded objects, then its metadata (conditional on ``owner``)."""
        items, feedback, objects = self._delete_items(session_id)
        response = self.client.delete_item(
            TableName=self.table_name,
            Key={"pk": _s(session_id), "sk": _s(META)},
            ConditionExpression="attribute_not_exists(pk) OR #owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": _s(owner)},
            ReturnValues="ALL_OLD",
        )
        return ErasedSession(sessions=int("Attributes" in response), items=items, feedback=feedback, objects=objects)

    def _delete_items(self, session_id: str) -> tuple[int, int, int]:
        """Delete every item of the session but ``~meta`` (a live session is never purged here: its deleter removes
        ``~meta`` first, erasure last), and its offloaded turns. Returns (items, of them with feedback, objects)."""
        if self._table is None:
            self._table = aws.resource("dynamodb").Table(self.table_name)
        items = feedback = 0
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(session_id)},
            "ProjectionExpression": "pk, sk, feedback",
        }
        with self._table.batch_writer() as batch:  # batch_writer re-sends unprocessed items itself
            for page in self.client.get_paginator("query").paginate(**request):
                for item in page.get("Items", []):
                    if item["sk"]["S"] == META:
                        continue
                    batch.delete_item(Key={"pk": session_id, "sk": item["sk"]["S"]})
                    items += 1
                    feedback += "feedback" in item
        objects = self.offload.delete_session(session_id) if self.offload is not None else 0
        self.parsed.forget(session_id)
        forget_compact_history()
        return items, feedback, objects

    # -- item mapping -----------------------------------------------------------------

    def _meta_item(self, info: SessionInfo) -> dict[str, Any]:
        return {
            "pk": _s(info.session_id),
            "sk": _s(META),
            "owner": _s(info.owner),
            "created_at": _n(info.created_at),
            "updated_at": _n(info.updated_at),
            TTL_ATTRIBUTE: _n(info.expires_at),
            "turns": _n(info.turns),
        }

    def _info(self, item: dict[str, Any]) -> SessionInfo:
        return SessionInfo(
            session_id=item["pk"]["S"],
            owner=item["owner"]["S"],
            created_at=int(item["created_at"]["N"]),
            updated_at=int(item["updated_at"]["N"]),
            expires_at=int(item[TTL_ATTRIBUTE]["N"]),
            turns=int(item["turns"]["N"]),
        )

    def _state_item(self, session_id: str, version: int, data: dict[str, Any], now: int) -> dict[str, Any]:
        return {
            "pk": _s(session_id),
            "sk": _s(STATE),
            "version": _n(version),
            "data": _s(json.dumps(data, sort_keys=True)),
            "updated_at": _n(now),
        }

    def _state_put(self, session_id: str, expected_version: int, data: dict[str, Any], now: int) -> dict[str, Any]:
        condition = "attribute_not_exists(pk)" if expected_version == 0 else "version = :expected"
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": self._state_item(session_id, expected_version + 1, data, now),
            "ConditionExpression": condition,
        }
        if expected_version:
            put["ExpressionAttributeValues"] = {":expected": _n(expected_version)}
        return {"Put": put}

    def _touch_meta(self, session_id: str, owner: str, now: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": _s(session_id), "sk": _s(META)},
                "UpdateExpression": "SET updated_at = :now, #ttl = :expires",
                "ConditionExpression": "#owner = :owner AND #ttl > :now",
                "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE, "#owner": "owner"},
                "ExpressionAttributeValues": {":now": _n(now), ":expires": _n(now + self.ttl_seconds), ":owner": _s(owner)},
            }
        }

    def _state(self, item: dict[str, Any] | None) -> StateDocument:
        if item is None:
            return StateDocument()
        return StateDocument(version=int(item["version"]["N"]), data=json.loads(item["data"]["S"]))

    def _turn_item(self, session_id: str, turn: Turn) -> dict[str, Any]:
        payload = turn.model_dump_json(exclude={"number", "created_at", "message_id", "tokens", "feedback", "agent_version"})
        item: dict[str, Any] = {
            "pk": _s(session_id),
            "sk": _s(turn_key(turn.number)),
            "created_at": _n(turn.created_at),
            "tokens": _n(turn.tokens),
        }
        if turn.message_id:
            item["message_id"] = _s(turn.message_id)
        if turn.agent_version:
            item["agent_version"] = _s(turn.agent_version)
        if len(payload.encode()) > self.max_payload_bytes:
            if self.offload is None:
                raise TurnTooLarge
            item["payload_s3_key"] = _s(self.offload.put_turn(session_id, turn.number, payload))
        else:
            item["payload"] = _s(payload)
        return item

    def _turn(self, item: dict[str, Any]) -> Turn:
        if "payload" in item:
            payload = item["payload"]["S"]
        elif self.offload is not None:
            payload = self.offload.get(item["payload_s3_key"]["S"])
        else:
            raise RuntimeError("a turn is stored in S3 but this store has no offload bucket configured")
        feedback = item.get("feedback", {}).get("S")
        message_id = item.get("message_id", {}).get("S")
        agent_version = item.get("agent_version", {}).get("S")
        # Everything the turn is built from: the same key, the same turn.
        key = (
            item["pk"]["S"],
            item["sk"]["S"],
            item["created_at"]["N"],
            item["tokens"]["N"],
            message_id,
            agent_version,
            feedback,
            payload,
        )
        turn = self.parsed.get(key)
        if turn is None:
            turn = _parse_turn(
                payload,
                number=int(item["sk"]["S"].removeprefix(TURN_PREFIX)),
                created_at=int(item["created_at"]["N"]),
                message_id=message_id,
                tokens=int(item["tokens"]["N"]),
                feedback=json.loads(feedback) if feedback is not None else None,
                agent_version=agent_version,
            )
            self.parsed.put(key, turn, len(payload))
        return turn

    def _transact(self, items: list[dict[str, Any]], session_id: str, owner: str, *, conflict: type[Exception]) -> None:
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException:
            # Tell "someone else wrote first" from "the session is gone": one extra read, failure path only.
            self.get_session(session_id, owner=owner)
            raise conflict from None


def _parse_turn(payload: str, **attributes: Any) -> Turn:
    """The turn of one item: its JSON ``payload`` and the ``attributes`` the item keeps beside it (they win over a key
    of the same name in the payload).

    Validated from JSON in one pass (pydantic's parser, no intermediate dicts): the attributes are spliced into the
    payload's object as its last keys, and the last of two equal keys wins.
    """
    body = payload.rstrip()
    if not body.endswith("}"):
        raise ValueError("a stored turn's payload is not a JSON object")
    head = body[:-1].rstrip()
    # A value never ends in "{": only the empty object's head does.
    return Turn.model_validate_json(head + ("" if head.endswith("{") else ",") + json.dumps(attributes)[1:])


class ParsedTurns:
    """The turns a process parsed from their items, by everything each was built from (a bounded memo, oldest out
    first, thread-safe).

    A warm function reads much the same window turn after turn, and a stored turn never changes but for its
    ``feedback`` attribute, which is part of the key: a turn read again is the same (frozen) object, not parsed
    again. A session's deletion or erasure through the store forgets its turns here too.

    Parameters
    ----------
    max_turns, max_chars:
        At most this many turns, and payloads of this many characters in all.
    """

    def __init__(self, *, max_turns: int, max_chars: int) -> None:
        self.max_turns = max_turns
        self.max_chars = max_chars
        self._turns: dict[tuple[str | None, ...], tuple[Turn, int]] = {}
        self._chars = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._turns)

    def get(self, key: tuple[str | None, ...]) -> Turn | None:
        found = self._turns.get(key)
        return found[0] if found is not None else None

    def put(self, key: tuple[str | None, ...], turn: Turn, chars: int) -> None:
        if chars > self.max_chars:
            return
        with self._lock:
            if key in self._turns:
                return
            self._turns[key] = (turn, chars)
            self._chars += chars
            while len(self._turns) > self.max_turns or self._chars > self.max_chars:
                self._chars -= self._turns.pop(next(iter(self._turns)))[1]

    def forget(self, session_id: str) -> None:
        """Drop every turn of ``session_id``."""
        with self._lock:
            for key in [key for key in self._turns if key[0] == session_id]:
                self._chars -= self._turns.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            self._turns.clear()
            self._chars = 0


def encode_cursor(turn_number: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": turn_number}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Raises ValueError for anything but a cursor this store issued."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = value["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ValueError("malformed cursor") from None
    if not isinstance(after, int) or after < 0:
        raise ValueError("malformed cursor")
    return after
