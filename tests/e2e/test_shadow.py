"""Shadow deployment in local mode (``-c shadow_percent=100``): the user's answer comes from ``live``, the worker
(an SQS poller, as in the cloud) replays the request on the candidate built from the working tree through the
``shadow`` alias, and ``agentrail shadow report`` then shows both answers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import LocalMode


@pytest.fixture(scope="module")
def shadowed(start_local_mode: Callable[..., LocalMode]) -> LocalMode:
    return start_local_mode("stateless,stateful", context={"shadow_percent": "100"})


def comparisons(local: LocalMode, *, at_least: int, seconds: float = 60.0, pattern: str = "stateless") -> list[dict[str, Any]]:
    table = local.output(pattern, "ShadowTableName")
    dynamodb = local.aws("dynamodb")
    deadline = time.monotonic() + seconds
    while True:
        items = dynamodb.scan(TableName=table)["Items"]
        if len(items) >= at_least or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def test_with_shadow_at_100_percent_the_user_answer_comes_from_live_and_the_report_later_shows_both(shadowed: LocalMode):
    # given local mode with every request sampled, when a user asks the stateless agent
    with shadowed.client("stateless") as client:
        response = client.request("POST", "/invoke", json={"message": "what is 12 * 7"})
    body = response.json()

    # then the user's answer comes from live, at once
    assert response.status_code == 200, body
    assert body["answer"].startswith("calculator returned 84")
    request_id = body["request_id"]

    # and the shadow worker later stores the comparison of that request, both answers side by side
    items = {item["request_id"]["S"]: item for item in comparisons(shadowed, at_least=1)}
    assert request_id in items, shadowed.console_output()[-3000:]
    stored = items[request_id]
    assert json.loads(stored["live"]["S"])["answer"] == body["answer"]
    assert json.loads(stored["candidate"]["S"])["answer"] == body["answer"]

    # and `agentrail shadow report` shows both answers, agreeing
    report = shadowed.run_cli("shadow", "report", "--json", "-")
    assert report.returncode == 0, report.stdout + report.stderr
    shown = json.loads(report.stdout)
    assert shown["passed"] is True
    [row] = [w for w in shown["worst"] if w["request_id"] == request_id]
    assert row["live_answer"] == row["candidate_answer"] == body["answer"]


def test_a_sampled_session_turn_is_replayed_on_the_candidate_with_its_history_and_the_session_keeps_its_turns(
    shadowed: LocalMode,
):
    # given a session with a first turn, when the user takes a second one (every turn is sampled)
    with shadowed.client("stateful") as client:
        session_id = client.request("POST", "/sessions", json={}).json()["session_id"]
        first = client.request("POST", f"/sessions/{session_id}/messages", json={"message": "what is 12 * 7"})
        second = client.request("POST", f"/sessions/{session_id}/messages", json={"message": "convert 10 km to mi"})
        assert first.status_code == second.status_code == 200, second.text

        # then the comparison of the second turn holds the live answer and the candidate's, which agree
        request_id = second.json()["request_id"]
        items = {i["request_id"]["S"]: i for i in comparisons(shadowed, at_least=2, pattern="stateful")}
        assert request_id in items, shadowed.console_output()[-3000:]
        assert items[request_id]["kind"]["S"] == "session_turn"
        assert json.loads(items[request_id]["candidate"]["S"])["answer"] == second.json()["answer"]

        # and the session still has exactly the user's two turns
        page = client.request("GET", f"/sessions/{session_id}").json()
        assert page["turns"] == 2
        assert [turn["answer"] for turn in page["history"]] == [first.json()["answer"], second.json()["answer"]]


def _compared(local: LocalMode, pattern: str, request_ids: set[str], *, seconds: float = 60.0) -> dict[str, dict[str, Any]]:
    """The comparisons of ``pattern``'s table, once every one of ``request_ids`` is there (or the time is up)."""
    table, dynamodb = local.output(pattern, "ShadowTableName"), local.aws("dynamodb")
    deadline = time.monotonic() + seconds
    while True:
        items = {i["request_id"]["S"]: i for p in dynamodb.get_paginator("scan").paginate(TableName=table) for i in p["Items"]}
        if request_ids <= items.keys() or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def test_agentrail_erase_deletes_a_users_shadow_comparisons_on_both_apis_and_nothing_of_another_users(shadowed: LocalMode):
    # given two users, each with a sampled stateless request and a sampled session turn, all compared
    erased, kept = "agentrail-other", "agentrail-local"
    requests: dict[str, dict[str, str]] = {}
    for user in (erased, kept):
        with shadowed.client("stateless", principal=user) as client:
            invoked = client.request("POST", "/invoke", json={"message": "what is 6 * 7"})
        with shadowed.client("stateful", principal=user) as client:
            session_id = client.request("POST", "/sessions", json={}).json()["session_id"]
            turn = client.request("POST", f"/sessions/{session_id}/messages", json={"message": "what is 6 * 7"})
        assert invoked.status_code == turn.status_code == 200, invoked.text + turn.text
        requests[user] = {"stateless": invoked.json()["request_id"], "stateful": turn.json()["request_id"]}
    for pattern in ("stateless", "stateful"):
        stored = _compared(shadowed, pattern, {requests[user][pattern] for user in (erased, kept)})
        assert {requests[erased][pattern], requests[kept][pattern]} <= stored.keys(), shadowed.console_output()[-3000:]
        assert stored[requests[erased][pattern]]["owner"]["S"] == shadowed.principal(erased)
    kept_items = shadowed.items_naming(shadowed.principal(kept))

    # when the first erases itself with the CLI (on every API local mode serves)
    result = shadowed.run_cli("erase", "--as", erased, "--json")

    # then both APIs deleted its comparison (and its session), nothing names it any more, the other user's comparisons
    # and items are all still there, and erasing again reports zeros
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert len(report["stacks"]) == 2
    assert (report["total"]["shadow_comparisons"], report["total"]["sessions"]) == (2, 1), report["total"]
    assert shadowed.items_naming(shadowed.principal(erased)) == []
    assert shadowed.items_naming(shadowed.principal(kept)) == kept_items
    for pattern in ("stateless", "stateful"):
        left = _compared(shadowed, pattern, set(), seconds=0)
        assert requests[erased][pattern] not in left and requests[kept][pattern] in left
    again = shadowed.run_cli("erase", "--as", erased, "--json")
    assert again.returncode == 0, again.stderr
    assert set(json.loads(again.stdout)["total"].values()) == {0}
