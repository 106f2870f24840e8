"""The stateful pattern end to end: sessions over HTTP against ``agentrail local``, their items checked in moto."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentrail_cli.client import AgentApiClient

pytestmark = pytest.mark.slow
SECRET_MARKER = "e2e-secret-marker"


@pytest.fixture
def sessions(local: Any) -> Iterator[AgentApiClient]:
    with local.client("stateful") as api:
        yield api


def _new_session(sessions: AgentApiClient) -> str:
    created = sessions.request("POST", "/sessions", json={})
    assert created.status_code == 201, created.text
    return created.json()["session_id"]


def _say(sessions: AgentApiClient, session_id: str, message: str) -> httpx.Response:
    return sessions.request("POST", f"/sessions/{session_id}/messages", json={"message": message})


def test_the_agent_recalls_a_fact_from_an_earlier_turn(sessions: AgentApiClient) -> None:
    session_id = _new_session(sessions)
    told = _say(sessions, session_id, "My name is Ada")

    asked = _say(sessions, session_id, "What is my name?")

    assert told.status_code == asked.status_code == 200
    assert "Ada" in asked.json()["answer"]
    assert asked.json()["turn"] == 2
    history = sessions.request("GET", f"/sessions/{session_id}").json()["history"]
    assert [(t["number"], t["message"]) for t in history] == [(1, "My name is Ada"), (2, "What is my name?")]


def test_two_concurrent_turns_both_land_in_history_in_order_or_one_is_refused_with_retry_after(
    local: Any, sessions: AgentApiClient
) -> None:
    session_id = _new_session(sessions)
    messages = ["Calculate 2 + 2", "Calculate 3 + 3"]
    start = threading.Barrier(len(messages))
    answers: dict[str, httpx.Response] = {}

    def send(message: str) -> None:
        with local.client("stateful") as own:
            start.wait()
            answers[message] = _say(own, session_id, message)

    threads = [threading.Thread(target=send, args=(m,)) for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    accepted = sorted((r.json()["turn"], m) for m, r in answers.items() if r.status_code == 200)
    refused = [r for r in answers.values() if r.status_code != 200]
    assert len(accepted) >= 1 and len(accepted) + len(refused) == 2
    for response in refused:
        assert response.status_code == 409
        assert response.json()["error"] == "turn_in_progress"
        assert response.headers["Retry-After"] == "1"
    history = sessions.request("GET", f"/sessions/{session_id}").json()["history"]
    assert [(t["number"], t["message"]) for t in history] == accepted
    assert [n for n, _ in accepted] == list(range(1, len(accepted) + 1))


def test_an_expired_session_is_gone_for_reads_and_new_turns(local: Any, sessions: AgentApiClient) -> None:
    session_id = _new_session(sessions)
    assert _say(sessions, session_id, "My name is Ada").status_code == 200
    # DynamoDB TTL deletes late (and moto never): the API must hide an expired session at once.
    local.aws("dynamodb").update_item(
        TableName=local.output("stateful", "SessionTableName"),
        Key={"pk": {"S": session_id}, "sk": {"S": "~meta"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 60)}},
    )

    read = sessions.request("GET", f"/sessions/{session_id}")
    said = _say(sessions, session_id, "What is my name?")

    assert (read.status_code, said.status_code) == (404, 404)
    assert read.json()["error"] == said.json()["error"] == "session_not_found"


def test_a_session_is_invisible_to_another_caller(local: Any, sessions: AgentApiClient) -> None:
    session_id = _new_session(sessions)
    assert _say(sessions, session_id, "My name is Ada").status_code == 200

    with local.client("stateful", principal="agentrail-other") as other:
        read = other.request("GET", f"/sessions/{session_id}")
        said = _say(other, session_id, "What is my name?")
        erased = other.request("DELETE", f"/sessions/{session_id}")

    assert (read.status_code, said.status_code, erased.status_code) == (404, 404, 404)
    assert read.json()["error"] == "session_not_found"
    assert sessions.request("GET", f"/sessions/{session_id}").json()["turns"] == 1


def test_a_malformed_session_id_is_a_400_without_echo(sessions: AgentApiClient) -> None:
    response = _say(sessions, SECRET_MARKER, "hello")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert SECRET_MARKER not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize("message", ["", "   "], ids=["empty", "blank"])
def test_an_empty_message_is_a_400(sessions: AgentApiClient, message: str) -> None:
    session_id = _new_session(sessions)

    response = _say(sessions, session_id, message)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert sessions.request("GET", f"/sessions/{session_id}").json()["turns"] == 0


def test_a_message_over_the_size_limit_is_a_413_without_echo(sessions: AgentApiClient) -> None:
    session_id = _new_session(sessions)

    response = _say(sessions, session_id, "€" * 6000)

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert "€€€" not in response.text


def test_a_message_to_a_deleted_session_is_a_404(sessions: AgentApiClient) -> None:
    session_id = _new_session(sessions)
    erased = sessions.request("DELETE", f"/sessions/{session_id}")

    response = _say(sessions, session_id, "Are you still there?")

    assert erased.status_code == 204 and erased.content == b""
    assert response.status_code == 404
    assert response.json()["error"] == "session_not_found"
