"""The stateful agent's streaming WebSocket API in local mode (``-c streaming=true``), with a real WebSocket client:
a connect ticket from the REST API, ``sendMessage`` answered at once, the run's events streamed in order, ``resume``
after a reconnect, refused connections, bad frames and two sockets on one session."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from agentrail_cli.client import AgentApiClient

pytestmark = pytest.mark.slow
#: Every wait on a socket is bounded.
WAIT = 60
TOOL_RUN = "Calculate 2 + 2 and convert 5 km to miles"


@pytest.fixture(scope="module")
def local(start_local_mode):
    return start_local_mode("stateful", context={"streaming": "true"})


@pytest.fixture(scope="module")
def sessions(local) -> AgentApiClient:
    return local.client("stateful")


@pytest.fixture(scope="module")
def stream_url(local) -> str:
    (api,) = [a for a in local.ready["websocket_apis"] if a["pattern"] == "stateful"]
    return api["url"]


def new_session(sessions: AgentApiClient) -> str:
    response = sessions.request("POST", "/sessions", json={})
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


def ticket(sessions: AgentApiClient, session_id: str) -> str:
    response = sessions.request("POST", f"/sessions/{session_id}/stream-ticket")
    assert response.status_code == 201, response.text
    assert response.headers.get("cache-control") == "no-store"
    return response.json()["ticket"]


@pytest.fixture
def connect(stream_url: str, sessions: AgentApiClient) -> Iterator[Callable[..., ClientConnection]]:
    opened: list[ClientConnection] = []

    def open_socket(session_id: str, *, with_ticket: str | None = None) -> ClientConnection:
        query = urlencode({"ticket": with_ticket or ticket(sessions, session_id)})
        socket = ws_connect(f"{stream_url}?{query}", open_timeout=WAIT)  # closed by the fixture
        opened.append(socket)
        return socket

    yield open_socket
    for socket in opened:
        socket.close()


def receive(socket: ClientConnection) -> dict[str, Any]:
    return json.loads(socket.recv(timeout=WAIT))


def until_final(socket: ClientConnection, *, after: int = 0) -> list[dict[str, Any]]:
    """Every frame up to the first ``final`` or ``error`` event, dropping events at or below ``after``."""
    frames = []
    while True:
        frame = receive(socket)
        if "event_id" in frame and frame["event_id"] <= after:
            continue
        frames.append(frame)
        if frame.get("type") in ("final", "error") and "event_id" in frame:
            return frames


def send(socket: ClientConnection, session_id: str, text: str, **extra: Any) -> None:
    socket.send(json.dumps({"action": "sendMessage", "session_id": session_id, "text": text, **extra}))


def test_a_multi_step_tool_run_streams_its_steps_tools_and_tokens_in_order_before_final(
    connect: Callable[..., ClientConnection], sessions: AgentApiClient
):
    # given: a session and a socket connected with its ticket
    session_id = new_session(sessions)
    socket = connect(session_id)

    # when: a message that needs two tools
    send(socket, session_id, TOOL_RUN)
    accepted = receive(socket)
    frames = until_final(socket)

    # then: accepted at once, then numbered events in the loop's order, final last, and the turn stored
    assert accepted["type"] == "accepted" and accepted["session_id"] == session_id
    types = [f["type"] for f in frames]
    assert types[0] == "step_started" and types[-1] == "final"
    assert types.index("tool_call") < types.index("tool_result") < types.index("token") < types.index("final")
    assert [f["name"] for f in frames if f["type"] == "tool_call"] == ["calculator", "convert_units"]
    ids = [f["event_id"] for f in frames]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert {f["message_id"] for f in frames} == {accepted["message_id"]}
    final = frames[-1]
    assert final["status"] == "completed" and final["usage"]["output_tokens"] > 0
    streamed = "".join(f["text"] for f in frames if f["type"] == "token" and f["step"] == final["steps"])
    assert streamed == final["answer"]
    history = sessions.request("GET", f"/sessions/{session_id}").json()["history"]
    assert [(t["message"], t["answer"]) for t in history] == [(TOOL_RUN, final["answer"])]


def test_a_reconnect_with_last_event_id_loses_nothing_and_duplicates_nothing(
    connect: Callable[..., ClientConnection], sessions: AgentApiClient
):
    # given: a run streamed to a first socket, which keeps only its first three events and goes away
    session_id = new_session(sessions)
    first = connect(session_id)
    send(first, session_id, TOOL_RUN)
    receive(first)
    everything = until_final(first)
    kept = everything[:3]
    first.close()

    # when: a new socket resumes after the last event it kept
    second = connect(session_id)
    second.send(json.dumps({"action": "resume", "session_id": session_id, "last_event_id": kept[-1]["event_id"]}))
    rest = []
    while (frame := receive(second))["type"] != "resumed":
        rest.append(frame)

    # then: the rest, exactly once each, in order; together, the whole run
    assert [f["event_id"] for f in kept + rest] == [f["event_id"] for f in everything]
    assert kept + rest == everything
    assert frame == {"type": "resumed", "session_id": session_id, "last_event_id": everything[-1]["event_id"], "gap": False}


def test_a_connection_without_a_valid_ticket_is_refused(stream_url: str, sessions: AgentApiClient):
    session_id = new_session(sessions)
    used = ticket(sessions, session_id)
    ws_connect(f"{stream_url}?ticket={used}", open_timeout=WAIT).close()

    # when / then: no ticket (401), a made-up one (403) and a used one (403) never open a socket
    for query, status in (("", 401), ("?ticket=" + "A" * 43, 403), (f"?ticket={used}", 403)):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(f"{stream_url}{query}", open_timeout=WAIT)
        assert refused.value.response.status_code == status


def test_a_ticket_for_another_principals_session_is_not_issued(local, sessions: AgentApiClient):
    session_id = new_session(sessions)
    other = local.client("stateful", principal="agentrail-other")

    response = other.request("POST", f"/sessions/{session_id}/stream-ticket")

    assert response.status_code == 404
    assert response.json()["error"] == "session_not_found"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "malformed_frame"),
        ('["a list"]', "malformed_frame"),
        ('{"action": "dance"}', "unknown_action"),
        ('{"action": "sendMessage", "session_id": "nope", "text": "hi"}', "invalid_frame"),
        ('{"action": "sendMessage", "session_id": "' + "0" * 32 + '", "text": "   "}', "invalid_frame"),
    ],
)
def test_a_bad_frame_gets_an_error_event_and_the_socket_stays_open(
    connect: Callable[..., ClientConnection], sessions: AgentApiClient, frame: str, code: str
):
    session_id = new_session(sessions)
    socket = connect(session_id)

    socket.send(frame)
    error = receive(socket)

    assert error["type"] == "error" and error["code"] == code
    assert "dance" not in json.dumps(error) and "nope" not in json.dumps(error)
    socket.send(json.dumps({"action": "resume", "session_id": session_id}))
    assert receive(socket)["type"] == "resumed"


def test_an_oversized_frame_closes_the_connection_with_1009(connect: Callable[..., ClientConnection], sessions: AgentApiClient):
    session_id = new_session(sessions)
    socket = connect(session_id)

    socket.send(json.dumps({"action": "sendMessage", "session_id": session_id, "text": "x" * 40_000}))

    with pytest.raises(ConnectionClosed):
        receive(socket)
    assert socket.close_code == 1009


def test_a_message_for_another_users_session_gets_an_error_event(
    local, connect: Callable[..., ClientConnection], sessions: AgentApiClient
):
    # given: my socket, and a session of another principal
    mine = new_session(sessions)
    theirs = new_session(local.client("stateful", principal="agentrail-other"))
    socket = connect(mine)

    # when: I send to their session, or ask for its events
    send(socket, theirs, "hello")
    sent = receive(socket)
    socket.send(json.dumps({"action": "resume", "session_id": theirs}))
    resumed = receive(socket)

    # then: as if it did not exist
    assert (sent["type"], sent["code"]) == ("error", "session_not_found")
    assert (resumed["type"], resumed["code"]) == ("error", "session_not_found")


def test_two_sockets_on_one_session_follow_its_reject_policy(connect: Callable[..., ClientConnection], sessions: AgentApiClient):
    # given: two sockets on one session
    session_id = new_session(sessions)
    first, second = connect(session_id), connect(session_id)

    # when: both send at once
    start = threading.Barrier(2)
    replies: dict[str, dict[str, Any]] = {}
    seen: dict[str, list[dict[str, Any]]] = {"first": [], "second": []}

    def say(name: str, socket: ClientConnection, text: str) -> None:
        start.wait(WAIT)
        send(socket, session_id, text)
        while "event_id" in (frame := receive(socket)):  # the session's events may come before the reply
            seen[name].append(frame)
        replies[name] = frame

    threads = [
        threading.Thread(target=say, args=("first", first, "Calculate 2 + 2")),
        threading.Thread(target=say, args=("second", second, "Calculate 3 + 3")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)

    # then: one is accepted, the other refused while the first holds the session; both sockets see the one turn
    outcomes = sorted(r["type"] for r in replies.values())
    assert outcomes in (["accepted", "error"], ["accepted", "accepted"])
    refused = [r for r in replies.values() if r["type"] == "error"]
    assert all(r["code"] == "turn_in_progress" for r in refused)
    finals = []
    for name, socket in (("first", first), ("second", second)):
        earlier = [f for f in seen[name] if f["type"] == "final"]
        finals.append(earlier[0] if earlier else until_final(socket)[-1])
    assert finals[0]["event_id"] == finals[1]["event_id"]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        history = sessions.request("GET", f"/sessions/{session_id}").json()["history"]
        if len(history) == outcomes.count("accepted"):
            break
        time.sleep(0.2)
    assert len(history) == outcomes.count("accepted")
