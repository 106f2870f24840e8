"""Connect tickets: short-lived, single-use credentials a browser's WebSocket ``$connect`` carries.

A browser cannot set headers on a WebSocket, and a bearer token in the query string lands in access logs. So an
authenticated REST call issues a ticket (:meth:`ConnectTickets.issue`), the client connects with it, and ``$connect``
redeems it (:meth:`ConnectTickets.redeem`). The table keeps only the ticket's SHA-256, never the ticket.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from pydantic import BaseModel

from agentrail_runtime.contract import (
    STREAM_OWNER_ATTRIBUTE,
    STREAM_SESSION_ATTRIBUTE,
    STREAM_TICKET_KEY,
    STREAM_TICKET_TABLE_ENV,
    STREAM_TTL_ATTRIBUTE,
)
from agentrail_runtime.streaming.ownership import OwnedTable
from agentrail_runtime.streaming.settings import StreamSettings, required

#: What ``secrets.token_urlsafe(32)`` gives (43 characters); anything else is refused before any DynamoDB call.
_TICKET = re.compile(r"^[A-Za-z0-9_-]{43}$")


class TicketRejected(Exception):
    """The ticket is unknown, already redeemed or expired. The three are one answer on purpose: a caller learns
    nothing about which tickets exist."""

    def __init__(self) -> None:
        super().__init__("connect ticket unknown, already used or expired")


class IssuedTicket(BaseModel):
    """What the REST call that issues a ticket answers."""

    #: The ticket itself: give it to the client once, never log it.
    ticket: str
    #: Seconds since the epoch after which the ticket is refused.
    expires_at: int


class TicketGrant(BaseModel):
    """What a redeemed ticket was issued for."""

    principal: str
    session_id: str | None = None


def ticket_hash(ticket: str) -> str:
    """The SHA-256 of ``ticket`` in hex: the table's partition key."""
    return hashlib.sha256(ticket.encode()).hexdigest()


class ConnectTickets(OwnedTable):
    """The connect-ticket table (DynamoDB): partition key ``ticket_hash`` (S), TTL on ``expires_at``, keys-only
    ``by_owner`` index on ``owner``.

    Parameters
    ----------
    table_name:
        The table.
    ttl_seconds:
        How long a ticket may be redeemed after it is issued. Default: 60.
    clock:
        Seconds since the epoch. Default: :func:`agentrail_runtime.clock.now`.
    dynamodb:
        A DynamoDB client. Default: one from :func:`agentrail_runtime.aws.client`, made on first use.
    """

    key_attributes = (STREAM_TICKET_KEY,)
    default_ttl_seconds = 60

    @classmethod
    def from_settings(cls, settings: StreamSettings) -> ConnectTickets:
        """The table ``AGENT_STREAM_TICKET_TABLE`` names; ``ValueError`` when it is unset."""
        return cls(required(settings.ticket_table, STREAM_TICKET_TABLE_ENV), ttl_seconds=settings.ticket_ttl_seconds)

    def issue(self, principal: str, *, session_id: str | None = None) -> IssuedTicket:
        """Issue a ticket for ``principal`` (and the session it will follow, if given): 256 random bits, stored as
        their hash with the principal and the expiry.

        Parameters
        ----------
        principal:
            The authenticated caller, as the API names it (``iam:<arn>``, ``cognito:<sub>``, ...).
        session_id:
            The session the connection will follow. Default: none (the client subscribes later).

        Returns
        -------
        IssuedTicket
            The ticket and its expiry.
        """
        ticket = secrets.token_urlsafe(32)
        issued = int(self._clock())
        expires_at = issued + self.ttl_seconds
        item = {
            STREAM_TICKET_KEY: {"S": ticket_hash(ticket)},
            STREAM_OWNER_ATTRIBUTE: {"S": principal},
            "issued_at": {"N": str(issued)},
            STREAM_TTL_ATTRIBUTE: {"N": str(expires_at)},
        }
        if session_id is not None:
            item[STREAM_SESSION_ATTRIBUTE] = {"S": session_id}
        self.dynamodb.put_item(
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(#key)",
            ExpressionAttributeNames={"#key": STREAM_TICKET_KEY},
        )
        return IssuedTicket(ticket=ticket, expires_at=expires_at)

    def redeem(self, ticket: str) -> TicketGrant:
        """Redeem ``ticket`` once: one conditional ``DeleteItem`` that passes only while the ticket exists and has not
        expired (DynamoDB's TTL deletes lazily, so the condition, not the TTL, enforces the expiry). Of two racing
        redemptions of one ticket, exactly one succeeds.

        Raises
        ------
        TicketRejected
            The ticket is malformed, unknown, already redeemed or expired.
        """
        if not isinstance(ticket, str) or not _TICKET.match(ticket):
            raise TicketRejected
        try:
            response = self.dynamodb.delete_item(
                TableName=self.table_name,
                Key={STREAM_TICKET_KEY: {"S": ticket_hash(ticket)}},
                ConditionExpression="attribute_exists(#key) AND #expires > :now",
                ExpressionAttributeNames={"#key": STREAM_TICKET_KEY, "#expires": STREAM_TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(int(self._clock()))}},
                ReturnValues="ALL_OLD",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            raise TicketRejected from None
        old = response.get("Attributes")
        if not old:  # nothing deleted by this call: never a grant
            raise TicketRejected
        session = old.get(STREAM_SESSION_ATTRIBUTE, {}).get("S")
        return TicketGrant(principal=old[STREAM_OWNER_ATTRIBUTE]["S"], session_id=session)


__all__ = ["ConnectTickets", "IssuedTicket", "TicketGrant", "TicketRejected", "ticket_hash"]
