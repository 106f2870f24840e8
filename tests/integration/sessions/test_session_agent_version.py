"""The agent version on what a session stores and answers: each turn item, and ``X-Agent-Version``."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def test_each_turn_item_records_the_version_of_the_agent_that_answered_it(aws, session_handler, api_event, call):
    module = session_handler("sessions")
    version = module.app.agent_version
    session_id = call(module.handler, api_event("create-session")).body["session_id"]

    for message in ("My name is Ada", "What is my name?"):
        call(module.handler, api_event("send-message", session_id=session_id, body={"message": message}))

    turns = [item for item in aws.items(session_id) if item["sk"]["S"].startswith("turn#")]
    assert re.fullmatch(r"[0-9a-f]{12}", version)
    assert [item["agent_version"]["S"] for item in turns] == [version, version]


def test_every_sessions_route_answers_with_x_agent_version_errors_included(aws, session_handler, api_event, call):
    module = session_handler("sessions")

    created = call(module.handler, api_event("create-session"))
    sent = call(module.handler, api_event("send-message", session_id=created.body["session_id"], body={"message": "hi"}))
    missing = call(module.handler, api_event("get-session"))  # the event's own id: no such session here

    assert (created.status, sent.status, missing.status) == (201, 200, 404)
    assert {r.headers["X-Agent-Version"] for r in (created, sent, missing)} == {module.app.agent_version}
