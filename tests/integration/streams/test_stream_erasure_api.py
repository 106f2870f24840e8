"""``POST /erase`` of a streaming stack against moto: the caller's connect tickets, connections and stream events go
with its sessions; another principal's stay."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentrail_runtime import contract
from agentrail_runtime.api.sessions import create_sessions_app
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.service import AgentService
from agentrail_runtime.sessions import SessionAgent
from agentrail_runtime.sessions.settings import SessionSettings
from agentrail_runtime.streaming import StreamSettings
from tests.integration.conftest import OWNER
from tests.integration.streams.conftest import BOB, CONNECTIONS, EVENTS, SESSION_TABLE, TICKETS

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def app(agent_env, store, clock) -> Any:
    agents = AgentService(definition=demo_definition, settings=RuntimeSettings())
    return create_sessions_app(
        sessions=SessionAgent(store=store, agents=agents, clock=clock),
        settings=agents.settings,
        session_settings=SessionSettings(table=SESSION_TABLE),
        stream_settings=StreamSettings(ticket_table=TICKETS, connection_table=CONNECTIONS, event_table=EVENTS),
    )


def owners(aws: Any, table: str) -> list[str]:
    return sorted(item[contract.STREAM_OWNER_ATTRIBUTE]["S"] for item in aws.scan(table))


def test_erasing_the_caller_deletes_its_tickets_connections_and_stream_events_and_nobody_elses(
    app, aws, store, tickets, connections, log, load_event, call
):
    # given: a ticket, a connection and stream events of the caller, and the same of Bob
    for principal in (OWNER, BOB):
        session = store.create(owner=principal)
        tickets.issue(principal, session_id=session.session_id)
        connections.put(f"conn-{principal}", principal, session_id=session.session_id)
        log.writer(session.session_id, owner=principal).append([{"type": "token", "text": "hi"}])
    # when: the caller erases itself
    reply = call(app, load_event("sessions/erase.json") | {"body": json.dumps({})})
    # then: only Bob's streaming items are left
    assert reply.status == 200, reply.body
    assert owners(aws, TICKETS) == [BOB]
    assert owners(aws, CONNECTIONS) == [BOB]
    assert set(owners(aws, EVENTS)) == {BOB}
    assert connections.get(f"conn-{OWNER}") is None
