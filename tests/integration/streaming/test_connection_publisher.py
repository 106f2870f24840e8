"""The publisher against a real HTTP server on 127.0.0.1 that answers as a WebSocket stage's ``@connections`` API
does (moto's never answers 410 Gone, nor keeps a client waiting), with the connections table on moto."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

from agentrail_runtime import contract
from agentrail_runtime.streaming import ConnectionPublisher, PublishReport, StreamEvent, StreamSettings
from tests.integration.streaming.conftest import ALICE

#: How the fake stage answers a post to a connection, by connection id; ``ok`` for any other.
GONE, HANG, FAIL = "gone", "hang", "fail"


@dataclass
class FakeStage:
    """What the server received (connection id, body), how it answers each connection, and its callback URL."""

    url: str = ""
    answers: dict[str, str] = field(default_factory=dict)
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def posts_to(self, connection_id: str) -> list[dict[str, Any]]:
        return [body for to, body in self.posts if to == connection_id]


@pytest.fixture
def stage() -> Iterator[FakeStage]:
    fake = FakeStage()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            assert self.path.startswith("/prod/@connections/"), self.path
            connection_id = unquote(self.path.rsplit("/", 1)[1])
            fake.posts.append((connection_id, json.loads(body)))
            answer = fake.answers.get(connection_id, "ok")
            if answer == HANG:  # a client too slow to read: API Gateway does not answer in time
                fake.release.wait(timeout=30)
                return
            if answer == GONE:  # as API Gateway answers for a connection that has closed
                self.reply(410, {"message": "Gone"}, error_type="GoneException")
            elif answer == FAIL:
                self.reply(500, {"message": "Internal server error"}, error_type="InternalServerErrorException")
            else:
                self.reply(200, None)

        def reply(self, status: int, body: dict[str, Any] | None, *, error_type: str | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/prod"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


def events(*texts: str, first: int = 101) -> list[StreamEvent]:
    return [StreamEvent(event_id=first + n, event={"type": "token", "text": text}) for n, text in enumerate(texts)]


def test_a_sessions_events_are_posted_in_order_one_message_each_to_every_connection_that_follows_it(stage, connections):
    # Given two sockets on one session and one on another
    connections.put("conn-1", ALICE, session_id="s-1")
    connections.put("conn-2", ALICE, session_id="s-1")
    connections.put("conn-3", ALICE, session_id="s-2")
    publisher = ConnectionPublisher(stage.url, connections)

    # When the session's events are published
    report = publisher.publish_to_session("s-1", events("Hel", "lo"))

    # Then each of its connections got both, numbered, in order; the other session's got none
    assert sorted(report.delivered) == ["conn-1", "conn-2"]
    expected = [{"event_id": 101, "type": "token", "text": "Hel"}, {"event_id": 102, "type": "token", "text": "lo"}]
    assert stage.posts_to("conn-1") == stage.posts_to("conn-2") == expected
    assert stage.posts_to("conn-3") == []


def test_a_gone_connection_is_deleted_from_the_table_and_skipped_while_the_others_get_the_events(stage, connections):
    # Given a session followed by a live connection and one that has closed without a $disconnect
    connections.put("conn-gone", ALICE, session_id="s-1")
    connections.put("conn-live", ALICE, session_id="s-1")
    stage.answers["conn-gone"] = GONE
    publisher = ConnectionPublisher(stage.url, connections)

    # When events are published to the session
    report = publisher.publish_to_session("s-1", events("a", "b", "c"))

    # Then the gone one got one attempt and was forgotten; the live one got everything
    assert report == PublishReport(delivered=["conn-live"], gone=["conn-gone"])
    assert len(stage.posts_to("conn-gone")) == 1
    assert connections.get("conn-gone") is None
    assert connections.following("s-1") == ["conn-live"]
    assert [post["text"] for post in stage.posts_to("conn-live")] == ["a", "b", "c"]


def test_a_connection_too_slow_to_read_is_skipped_after_one_attempt_and_kept(stage, connections, stdout_records):
    # Given a connection whose posts get no answer, and a publisher with a tiny timeout
    connections.put("conn-slow", ALICE, session_id="s-1")
    connections.put("conn-fast", ALICE, session_id="s-1")
    stage.answers["conn-slow"] = HANG
    publisher = ConnectionPublisher(stage.url, connections, timeout_seconds=0.2)

    # When events are published
    report = publisher.publish(["conn-slow", "conn-fast"], events("a", "b"))

    # Then the slow one failed once, without a retry and without the later events, and was logged; the run went on
    assert report == PublishReport(delivered=["conn-fast"], failed=["conn-slow"])
    assert len(stage.posts_to("conn-slow")) == 1
    assert connections.get("conn-slow") is not None  # it may read again: it catches up with last_event_id
    failures = [r for r in stdout_records() if r.get("event") == "stream_post_failed"]
    assert [(r["connection_id"], r["reason"]) for r in failures] == [("conn-slow", "ReadTimeoutError")]


def test_a_post_the_stage_fails_is_logged_and_not_retried(stage, connections, stdout_records):
    connections.put("conn-1", ALICE, session_id="s-1")
    stage.answers["conn-1"] = FAIL
    publisher = ConnectionPublisher(stage.url, connections)

    report = publisher.publish_to_session("s-1", events("a"))

    assert report == PublishReport(failed=["conn-1"])
    assert len(stage.posts_to("conn-1")) == 1
    assert connections.get("conn-1") is not None
    assert [r["reason"] for r in stdout_records() if r.get("event") == "stream_post_failed"] == ["InternalServerErrorException"]


def test_send_posts_one_message_to_one_connection_and_says_how_it_went(stage, connections):
    connections.put("conn-1", ALICE)
    connections.put("conn-2", ALICE)
    stage.answers["conn-2"] = GONE
    publisher = ConnectionPublisher(stage.url, connections)

    assert publisher.send("conn-1", '{"type":"error","code":"bad_frame"}') == "delivered"
    assert publisher.send("conn-2", "{}") == "gone"
    assert stage.posts_to("conn-1") == [{"type": "error", "code": "bad_frame"}]


def test_the_publisher_posts_to_the_callback_url_and_with_the_timeout_of_the_environment(stage, connections, env):
    # Given the environment the construct writes
    env.setenv(contract.STREAM_CONNECTIONS_URL_ENV, stage.url)
    env.setenv("AGENT_STREAM_POST_TIMEOUT_SECONDS", "0.5")
    connections.put("conn-1", ALICE, session_id="s-1")

    # When a publisher is made from the settings
    publisher = ConnectionPublisher.from_settings(StreamSettings(), connections)
    report = publisher.publish_to_session("s-1", events("a"))

    # Then it posts there, with one attempt and that timeout
    assert report.delivered == ["conn-1"]
    assert publisher.client.meta.config.read_timeout == publisher.client.meta.config.connect_timeout == 0.5
    assert publisher.client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}


def test_publishing_no_event_posts_nothing(stage, connections):
    connections.put("conn-1", ALICE, session_id="s-1")

    report = ConnectionPublisher(stage.url, connections).publish_to_session("s-1", [])

    assert report == PublishReport()
    assert stage.posts == []
