"""The WebSocket API's ``$connect`` authorizer: a Lambda ``REQUEST`` authorizer that redeems a connect ticket.

A browser cannot set headers on a WebSocket, and a bearer token in the query string lands in access logs; so the
client first asks the REST API (authenticated) for a short-lived, single-use ticket, and connects with
``?ticket=<ticket>``. The ticket is redeemed here, once: a second ``$connect`` with it is refused (403), as is an
unknown or expired one.
"""

from __future__ import annotations

from typing import Any

from agentrail_runtime.observability import logger
from agentrail_runtime.streaming import ConnectTickets, TicketRejected

#: The query string parameter that carries the ticket (the authorizer's identity source).
TICKET_PARAMETER = "ticket"


def policy(effect: str, principal: str, resource: str, context: dict[str, str] | None = None) -> dict[str, Any]:
    """An authorizer's answer: ``effect`` (``Allow`` or ``Deny``) on ``execute-api:Invoke`` of ``resource``."""
    answer: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if context:
        answer["context"] = context
    return answer


def authorize(event: dict[str, Any], tickets: ConnectTickets) -> dict[str, Any]:
    """Allow the connection whose ticket redeems (its principal and session go to ``requestContext.authorizer``),
    deny any other. The ticket is never logged."""
    resource = str(event.get("methodArn") or "*")
    ticket = (event.get("queryStringParameters") or {}).get(TICKET_PARAMETER)
    try:
        grant = tickets.redeem(str(ticket or ""))
    except TicketRejected:
        logger.info("connect refused", extra={"event": "stream_connect_refused"})
        return policy("Deny", "anonymous", resource)
    return policy("Allow", grant.principal, resource, {"principal": grant.principal, "session_id": grant.session_id or ""})


__all__ = ["TICKET_PARAMETER", "authorize", "policy"]
