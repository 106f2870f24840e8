"""The operator console's reads on the sessions API: GET /sessions and GET /sessions/{id}/turns/{number}/timeline."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agentrail_runtime import clock as runtime_clock
from tests.integration.sessions.conftest import MALLORY

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def get(load_event, call):
    """``get(app, path, query=None, caller=None)``: a GET through the API, from the shared get-session event."""

    def request(app: Any, path: str, *, query: dict[str, str] | None = None, caller: dict[str, str] | None = None) -> Any:
        event = copy.deepcopy(load_event("sessions/get-session.json"))
        event["path"] = event["requestContext"]["path"] = path
        event["pathParameters"] = None
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
        if caller is not None:
            event["requestContext"]["identity"]["userArn"] = caller["userArn"]
        return call(app, event)

    return request


def test_the_callers_sessions_are_listed_most_recently_updated_first_and_no_one_elses(app, create_session, send, get, clock):
    first = create_session(app)
    second = create_session(app)
    clock.advance(5)
    assert send(app, first, "What is 2 + 2?").status == 200  # the first is now the most recently updated
    create_session(app, caller=MALLORY)

    listed = get(app, "/sessions")

    assert listed.status == 200, listed.body
    assert [s["session_id"] for s in listed.body["sessions"]] == [first, second]
    assert listed.body["sessions"][0]["turns"] == 1
    assert "owner" not in listed.body["sessions"][0]
    assert [s["session_id"] for s in get(app, "/sessions", query={"limit": "1"}).body["sessions"]] == [first]
    mallorys = get(app, "/sessions", caller=MALLORY).body["sessions"]
    assert first not in [s["session_id"] for s in mallorys] and len(mallorys) == 1


def test_an_expired_session_is_not_listed(app, create_session, get, clock):
    session_id = create_session(app)
    expires_at = get(app, "/sessions").body["sessions"][0]["expires_at"]

    clock.advance(expires_at - runtime_clock.now() + 1)

    assert session_id not in [s["session_id"] for s in get(app, "/sessions").body["sessions"]]


@pytest.mark.parametrize("limit", ["0", "201", "-1", "many"])
def test_a_limit_out_of_range_is_400(app, get, limit):
    reply = get(app, "/sessions", query={"limit": limit})

    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert [d["field"] for d in reply.body["details"]] == ["query.limit"]


def test_a_turns_timeline_shows_its_model_steps_and_tool_calls_with_redacted_arguments(app, create_session, send, get):
    session_id = create_session(app)
    assert send(app, session_id, "Hello").status == 200
    answered = send(app, session_id, "What is the status of order A-1001? Mail me at jane.doe@example.com")
    assert answered.status == 200, answered.body

    reply = get(app, f"/sessions/{session_id}/turns/2/timeline")

    assert reply.status == 200, reply.body
    body = reply.body
    assert (body["session_id"], body["turn"]["number"], body["turn"]["status"]) == (session_id, 2, "completed")
    assert body["turn"]["message"] == "What is the status of order A-1001? Mail me at [REDACTED:email]"
    kinds = [e["kind"] for e in body["events"]]
    assert kinds[0] == "submitted" and kinds[-1] == "finished" and "model" in kinds
    assert "jane.doe@example.com" not in reply.raw and "[REDACTED:email]" in body["events"][0]["title"]
    calls = [e for e in body["events"] if e["kind"] == "tool_call"]
    assert [c["tool"] for c in calls] == [c["tool"] for c in answered.body["tool_calls"]]
    assert all(c["outcome"] == "success" and c["result"] is not None and c["call_id"] for c in calls)
    assert calls[0]["arguments"] == {"order_id": "A-1001"}


def test_a_turn_timeline_is_the_owners_only_and_a_missing_turn_is_404(app, create_session, send, get):
    session_id = create_session(app)
    assert send(app, session_id, "Hello").status == 200

    assert get(app, f"/sessions/{session_id}/turns/1/timeline", caller=MALLORY).body["error"] == "session_not_found"
    for number in ("2", "99"):
        missing = get(app, f"/sessions/{session_id}/turns/{number}/timeline")
        assert (missing.status, missing.body["error"]) == (404, "turn_not_found")
    for number in ("0", "x"):
        bad = get(app, f"/sessions/{session_id}/turns/{number}/timeline")
        assert (bad.status, bad.body["error"]) == (400, "invalid_request")
    unknown = get(app, f"/sessions/{'0' * 32}/turns/1/timeline")
    assert (unknown.status, unknown.body["error"]) == (404, "session_not_found")


def test_the_shared_console_events_reach_their_routes(app, create_session, send, load_event, aimed_event, call, aws):
    # events/sessions/list-sessions.json and turn-timeline.json, as `sam local invoke -e` sends them
    listed = call(app, load_event("sessions/list-sessions.json"))
    assert (listed.status, listed.body) == (200, {"sessions": []})
    session_id = create_session(
        app, caller={"userArn": load_event("sessions/list-sessions.json")["requestContext"]["identity"]["userArn"]}
    )
    shared = load_event("sessions/turn-timeline.json")
    before = call(app, aimed_event(shared, path_parameters={"session_id": session_id, "number": "1"}))
    assert (before.status, before.body["error"]) == (404, "turn_not_found")
    assert send(app, session_id, "Hello").status == 200

    after = call(app, aimed_event(shared, path_parameters={"session_id": session_id, "number": "1"}))

    assert after.status == 200, after.body
    assert after.body["turn"]["message"] == "Hello"
    assert [s["session_id"] for s in call(app, load_event("sessions/list-sessions.json")).body["sessions"]] == [session_id]
