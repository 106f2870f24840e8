"""The connections table: who is connected, since when, and which session each connection follows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agentrail_runtime import aws
from agentrail_runtime.contract import (
    STREAM_CONNECTION_KEY,
    STREAM_CONNECTION_TABLE_ENV,
    STREAM_OWNER_ATTRIBUTE,
    STREAM_SESSION_ATTRIBUTE,
    STREAM_SESSION_INDEX,
    STREAM_TTL_ATTRIBUTE,
)
from agentrail_runtime.streaming.ownership import OwnedTable
from agentrail_runtime.streaming.settings import CONNECTION_MAX_SECONDS, CONNECTION_TTL_MARGIN_SECONDS, StreamSettings, required


class ConnectionNotFound(Exception):
    """No connection of that id belongs to that principal (it closed, expired, or is someone else's)."""


class Connection(BaseModel):
    """One open WebSocket connection."""

    connection_id: str
    #: The principal its connect ticket (or IAM signature) was issued to.
    principal: str
    connected_at: int
    expires_at: int
    #: The session whose events it receives; None until it follows one.
    session_id: str | None = None


class ConnectionStore(OwnedTable):
    """The connections table (DynamoDB): partition key ``connection_id`` (S), TTL on ``expires_at``, and two keys-only
    indexes: ``by_session`` on ``session_id`` (sparse: only connections that follow a session are in it), which the
    publisher reads to find a session's connections, and ``by_owner`` on ``owner``, which erasure reads.
    Erasing a principal's connections (:meth:`erase_owner`) leaves their sockets open until they close, but no event
    reaches them any more: the publisher finds connections through this table.

    A connection follows at most one session, set at connect (from its ticket) or later by :meth:`follow`; two
    sockets on one session are two items with the same ``session_id``.

    Parameters
    ----------
    table_name:
        The table.
    ttl_seconds:
        How long an item is kept after the connect: API Gateway closes a WebSocket after 2 hours, so a
        ``$disconnect`` that never ran (it is best effort) leaves an item the TTL removes. Default: 7800 (2 h 10 min).
    clock:
        Seconds since the epoch. Default: :func:`agentrail_runtime.clock.now`.
    dynamodb:
        A DynamoDB client. Default: one from :func:`agentrail_runtime.aws.client`, made on first use.
    """

    key_attributes = (STREAM_CONNECTION_KEY,)
    default_ttl_seconds = CONNECTION_MAX_SECONDS + CONNECTION_TTL_MARGIN_SECONDS

    @classmethod
    def check_ttl(cls, ttl_seconds: int) -> None:
        """Refuse a TTL shorter than API Gateway's 2-hour connection limit."""
        if ttl_seconds < CONNECTION_MAX_SECONDS:
            raise ValueError(
                f"ttl_seconds must cover API Gateway's 2-hour connection limit ({CONNECTION_MAX_SECONDS}), got {ttl_seconds}"
            )

    @classmethod
    def from_settings(cls, settings: StreamSettings) -> ConnectionStore:
        """The table ``AGENT_STREAM_CONNECTION_TABLE`` names; ``ValueError`` when it is unset."""
        table = required(settings.connection_table, STREAM_CONNECTION_TABLE_ENV)
        return cls(table, ttl_seconds=settings.connection_ttl_seconds)

    def put(self, connection_id: str, principal: str, *, session_id: str | None = None) -> Connection:
        """Record a connection at ``$connect`` (a repeated ``$connect`` of the same id overwrites it).

        Parameters
        ----------
        connection_id:
            API Gateway's ``requestContext.connectionId``.
        principal:
            Who connected (the redeemed ticket's principal, or the IAM caller).
        session_id:
            The session it follows from the start (the ticket's). Default: none.
        """
        connected = int(self._clock())
        connection = Connection(
            connection_id=connection_id,
            principal=principal,
            connected_at=connected,
            expires_at=connected + self.ttl_seconds,
            session_id=session_id,
        )
        item = {
            STREAM_CONNECTION_KEY: {"S": connection_id},
            STREAM_OWNER_ATTRIBUTE: {"S": principal},
            "connected_at": {"N": str(connected)},
            STREAM_TTL_ATTRIBUTE: {"N": str(connection.expires_at)},
        }
        if session_id is not None:
            item[STREAM_SESSION_ATTRIBUTE] = {"S": session_id}
        self.dynamodb.put_item(TableName=self.table_name, Item=item)
        return connection

    def get(self, connection_id: str) -> Connection | None:
        """The connection, or None when it is unknown or expired (the TTL deletes late; reads hide it at once)."""
        item = self.dynamodb.get_item(
            TableName=self.table_name, Key={STREAM_CONNECTION_KEY: {"S": connection_id}}, ConsistentRead=True
        ).get("Item")
        if item is None or int(item[STREAM_TTL_ATTRIBUTE]["N"]) <= int(self._clock()):
            return None
        return _connection(item)

    def follow(self, connection_id: str, session_id: str, *, principal: str) -> None:
        """Make the connection follow ``session_id`` (and no other), if the connection is ``principal``'s.
        Whether the principal may read that session is the caller's check (the session store knows its owner).

        Raises
        ------
        ConnectionNotFound
            The connection is gone, expired, or not ``principal``'s.
        """
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={STREAM_CONNECTION_KEY: {"S": connection_id}},
                UpdateExpression="SET #session = :session",
                ConditionExpression="#owner = :owner AND #expires > :now",
                ExpressionAttributeNames={
                    "#session": STREAM_SESSION_ATTRIBUTE,
                    "#owner": STREAM_OWNER_ATTRIBUTE,
                    "#expires": STREAM_TTL_ATTRIBUTE,
                },
                ExpressionAttributeValues={
                    ":session": {"S": session_id},
                    ":owner": {"S": principal},
                    ":now": {"N": str(int(self._clock()))},
                },
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            raise ConnectionNotFound(connection_id) from None

    def delete(self, connection_id: str) -> bool:
        """Forget the connection (``$disconnect``, or a post answered 410 Gone); False when it was already gone."""
        response = self.dynamodb.delete_item(
            TableName=self.table_name, Key={STREAM_CONNECTION_KEY: {"S": connection_id}}, ReturnValues="ALL_OLD"
        )
        return "Attributes" in response

    def following(self, session_id: str) -> list[str]:
        """The ids of the connections that follow ``session_id`` (a paged Query of the keys-only ``by_session``
        index, which is eventually consistent: a connection made a moment ago may be missing, and one closed a
        moment ago may be listed; the publisher deletes it at its 410)."""
        items = aws.query_index(self.dynamodb, self.table_name, STREAM_SESSION_INDEX, STREAM_SESSION_ATTRIBUTE, session_id)
        return [item[STREAM_CONNECTION_KEY]["S"] for item in items]


def _connection(item: dict[str, Any]) -> Connection:
    return Connection(
        connection_id=item[STREAM_CONNECTION_KEY]["S"],
        principal=item[STREAM_OWNER_ATTRIBUTE]["S"],
        connected_at=int(item["connected_at"]["N"]),
        expires_at=int(item[STREAM_TTL_ATTRIBUTE]["N"]),
        session_id=item.get(STREAM_SESSION_ATTRIBUTE, {}).get("S"),
    )


__all__ = ["Connection", "ConnectionNotFound", "ConnectionStore"]
