"""``POST /sessions/{session_id}/stream-ticket`` of the sessions API against moto: a connect ticket for the caller's
own session, served only when the stack streams (a ticket table is set)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agentrail_runtime.api.sessions import create_sessions_app
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.service import AgentService
from agentrail_runtime.sessions import SessionAgent
from agentrail_runtime.sessions.settings import SessionSettings
from agentrail_runtime.streaming import StreamSettings
from tests.integration.conftest import OWNER
from tests.integration.streams.conftest import BOB, SESSION_TABLE, TICKETS

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

ROUTE = "/sessions/{session_id}/stream-ticket"


@pytest.fixture
def make_app(agent_env, store, clock):
    """The sessions API over the moto session table, with the given streaming settings."""

    def build(stream_settings: StreamSettings) -> Any:
        agents = AgentService(definition=demo_definition, settings=RuntimeSettings())
        sessions = SessionAgent(store=store, agents=agents, clock=clock)
        return create_sessions_app(
            sessions=sessions,
            settings=agents.settings,
            session_settings=SessionSettings(table=SESSION_TABLE),
            stream_settings=stream_settings,
        )

    return build


@pytest.fixture
def ticket_request(load_event):
    """``ticket_request(session_id)``: the shared send-message event (its IAM caller is ``OWNER``), aimed at the
    stream-ticket route without a body."""

    def build(session_id: str) -> dict[str, Any]:
        event = copy.deepcopy(load_event("sessions/send-message.json"))
        template = event["pathParameters"]["session_id"]
        path = event["path"].replace(template, session_id).replace("/messages", "/stream-ticket")
        event["path"] = path
        event["resource"] = event["requestContext"]["resourcePath"] = ROUTE
        event["requestContext"]["path"] = f"/v1{path}"
        event["pathParameters"] = {"session_id": session_id}
        event["body"] = None
        return event

    return build


def test_a_ticket_for_the_callers_own_session_is_issued_with_201_its_expiry_and_no_store(
    make_app, ticket_request, call, store, tickets, clock
):
    # given: the stack streams, and the caller owns a session
    app = make_app(StreamSettings(ticket_table=TICKETS))
    session = store.create(owner=OWNER)
    # when
    reply = call(app, ticket_request(session.session_id))
    # then: a ticket, valid for the settings' minute, that no cache may keep
    assert reply.status == 201, reply.body
    assert set(reply.body) == {"ticket", "expires_at"}
    assert reply.body["expires_at"] == int(clock()) + StreamSettings().ticket_ttl_seconds
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Content-Type"].startswith("application/json")
    # and it redeems, once, for the caller and the session
    grant = tickets.redeem(reply.body["ticket"])
    assert (grant.principal, grant.session_id) == (OWNER, session.session_id)


def test_a_ticket_for_another_principals_session_is_404_session_not_found_and_nothing_is_issued(
    make_app, ticket_request, call, store, aws
):
    # given: Bob's session
    app = make_app(StreamSettings(ticket_table=TICKETS))
    bobs = store.create(owner=BOB)
    # when: the caller asks for a ticket to it
    reply = call(app, ticket_request(bobs.session_id))
    # then
    assert (reply.status, reply.body["error"]) == (404, "session_not_found")
    assert "ticket" not in reply.raw
    assert aws.scan(TICKETS) == []


def test_a_ticket_for_an_unknown_session_is_404(make_app, ticket_request, call):
    app = make_app(StreamSettings(ticket_table=TICKETS))

    reply = call(app, ticket_request("0" * 32))

    assert (reply.status, reply.body["error"]) == (404, "session_not_found")


def test_the_openapi_document_lists_201_and_404_for_the_ticket_route(make_app):
    app = make_app(StreamSettings(ticket_table=TICKETS))

    responses = app.get_openapi_schema().paths[ROUTE].post.responses

    assert {201, 404} <= {int(status) for status in responses}


def test_without_a_ticket_table_the_route_is_not_served_and_not_documented(make_app, ticket_request, call, store):
    # given: a stack that does not stream
    app = make_app(StreamSettings())
    session = store.create(owner=OWNER)
    # when
    reply = call(app, ticket_request(session.session_id))
    # then: no such route
    assert (reply.status, reply.body["error"]) == (404, "not_found")
    assert ROUTE not in app.get_openapi_schema().paths
