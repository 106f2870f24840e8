"""The stateful agent's streaming WebSocket API in local mode (``-c streaming=true``), with a real WebSocket client:
a connect ticket from the REST API, ``sendMessage`` answered at once, the run's events streamed in order, ``resume``
after a reconnect, refused connections, bad frames and two sockets on one session."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
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
    # given: two sockets on one session, the first's message accepted and its turn running (its tool waits)
    session_id = new_session(sessions)
    first, second = connect(session_id), connect(session_id)
    send(first, session_id, "Wait 5 seconds")
    accepted = receive(first)

    # when: the second socket sends while that turn runs, and then again once it is over
    send(second, session_id, "Calculate 3 + 3")
    seen_by_second = []
    while "event_id" in (refused := receive(second)):
        seen_by_second.append(refused)
    finals = [until_final(first)[-1], ([f for f in seen_by_second if f["type"] == "final"] or until_final(second))[-1]]
    send(second, session_id, "Calculate 3 + 3")
    retried = receive(second)
    until_final(second, after=finals[1]["event_id"])

    # then: refused as REST answers 409, while both sockets saw the first turn end; the retry is taken
    assert accepted["type"] == "accepted"
    assert (refused["type"], refused["code"]) == ("error", "turn_in_progress")
    assert finals[0] == finals[1] and finals[0]["message_id"] == accepted["message_id"]
    assert retried["type"] == "accepted"
    history = sessions.request("GET", f"/sessions/{session_id}").json()["history"]
    assert [t["message"] for t in history] == ["Wait 5 seconds", "Calculate 3 + 3"]


def test_a_run_longer_than_the_29_second_integration_timeout_streams_to_its_end(
    connect: Callable[..., ClientConnection], sessions: AgentApiClient
):
    # given: a message whose tool waits past API Gateway's 29-second integration timeout
    session_id = new_session(sessions)
    socket = connect(session_id)
    started = time.monotonic()

    # when
    send(socket, session_id, "Wait 31 seconds, then calculate 2 + 2")
    accepted = receive(socket)
    frames = until_final(socket)

    # then: accepted at once, the wait's outcome streamed, and the final answer after more than 29 seconds, stored
    assert accepted["type"] == "accepted"
    assert [f["name"] for f in frames if f["type"] == "tool_result"] == ["wait", "calculator"]
    assert frames[-1]["status"] == "completed"
    assert time.monotonic() - started > 31
    history = sessions.request("GET", f"/sessions/{session_id}").json()["history"]
    assert history[-1]["answer"] == frames[-1]["answer"]


def test_the_stack_output_stream_url_is_the_local_websocket_url(local, stream_url: str):
    assert local.output("stateful", "StreamUrl") == stream_url


def test_agentrail_chat_prints_the_tool_calls_and_the_answer_as_they_stream(local, sessions: AgentApiClient):
    # when: one message through the terminal client, as a user runs it against local mode
    run = local.run_cli("chat", TOOL_RUN)

    # then: a new session, the tool calls on their own lines, the stored answer, then usage and cost
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    session_id = lines[0].removeprefix("session ")
    history = sessions.request("GET", f"/sessions/{session_id}").json()["history"]
    assert [t["message"] for t in history] == [TOOL_RUN]
    assert lines[1].startswith("→ calculator(") and lines[2].startswith("← calculator: ")
    assert lines[3].startswith("→ convert_units(") and lines[4].startswith("← convert_units: ")
    assert lines[5] == history[0]["answer"]
    assert lines[6].startswith("[completed: 3 steps, ") and lines[6].endswith("]")


def test_agentrail_chat_continues_a_session_and_fails_clearly_on_another_principals(local, sessions: AgentApiClient):
    session_id = new_session(sessions)

    mine = local.run_cli("chat", "--session", session_id, "My name is Ada", "What is my name?")
    theirs = local.run_cli("chat", "--session", session_id, "--as", "agentrail-other", "hello")

    assert mine.returncode == 0, mine.stderr
    history = sessions.request("GET", f"/sessions/{session_id}").json()["history"]
    assert [t["message"] for t in history] == ["My name is Ada", "What is my name?"]
    assert "Ada" in history[1]["answer"] and history[1]["answer"] in mine.stdout
    assert theirs.returncode == 2
    assert "stream-ticket answered 404" in theirs.stderr and "Traceback" not in theirs.stderr


# -- enqueue, and IAM-signed connections (servers) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def iam_local(start_local_mode):
    return start_local_mode("stateful", context={"streaming": "true", "streaming_auth": "iam", "session_concurrency": "enqueue"})


def signed(url: str, local: Any, principal: str = "agentrail-local") -> ClientConnection:
    """A ``$connect`` signed with SigV4 as the local user ``principal``, as a server's AWS SDK signs it."""
    user = next(p for p in local.ready["principals"] if p["name"] == principal)
    http_url = url.replace("ws://", "http://", 1)
    request = AWSRequest(method="GET", url=http_url, headers={"Host": http_url.split("/")[2]})
    credentials = Credentials(user["access_key_id"], user["secret_access_key"])
    SigV4Auth(credentials, "execute-api", local.ready["region"]).add_auth(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
    return ws_connect(url, additional_headers=headers, open_timeout=WAIT)


def test_an_iam_connect_takes_a_signature_and_refuses_an_unsigned_one(iam_local):
    url = iam_local.output("stateful", "StreamUrl")
    session_id = new_session(iam_local.client("stateful"))

    with pytest.raises(InvalidStatus) as unsigned:
        ws_connect(url, open_timeout=WAIT)
    with signed(url, iam_local) as mine, signed(url, iam_local, "agentrail-other") as theirs:
        mine.send(json.dumps({"action": "resume", "session_id": session_id}))
        theirs.send(json.dumps({"action": "resume", "session_id": session_id}))
        answers = receive(mine), receive(theirs)

    assert unsigned.value.response.status_code == 403
    assert answers[0]["type"] == "resumed"
    assert (answers[1]["type"], answers[1]["code"]) == ("error", "session_not_found")


def test_two_sockets_on_one_session_follow_its_enqueue_policy(iam_local):
    # given: two signed sockets following one session
    url = iam_local.output("stateful", "StreamUrl")
    sessions = iam_local.client("stateful")
    session_id = new_session(sessions)
    with signed(url, iam_local) as first, signed(url, iam_local) as second:
        for socket in (first, second):
            socket.send(json.dumps({"action": "resume", "session_id": session_id}))
            assert receive(socket)["type"] == "resumed"

        # when: the first sends a message whose turn takes a while, the second one more meanwhile
        seen: dict[str, list[dict[str, Any]]] = {"first": [], "second": []}
        send(first, session_id, "Wait 3 seconds", message_id="slow")
        while "event_id" in (frame := receive(first)):  # its accepted, maybe after its first events
            seen["first"].append(frame)
        seen["first"].append(frame)
        send(second, session_id, "Calculate 3 + 3", message_id="quick")
        for name, socket in (("first", first), ("second", second)):
            while len([f for f in seen[name] if f.get("type") == "final"]) < 2:
                frame = receive(socket)
                seen[name].append(frame)

    # then: both accepted (the second while the first ran) and answered one after the other, in order; both sockets
    # saw the same events
    replies = [f for frames in seen.values() for f in frames if "event_id" not in f]
    assert sorted(r["type"] for r in replies) == ["accepted", "accepted"]
    streamed = [[f for f in frames if "event_id" in f] for frames in seen.values()]
    assert streamed[0] == streamed[1]
    assert [f["message_id"] for f in streamed[0] if f["type"] == "final"] == ["slow", "quick"]
    history = sessions.request("GET", f"/sessions/{session_id}").json()["history"]
    assert [t["message"] for t in history] == ["Wait 3 seconds", "Calculate 3 + 3"]
