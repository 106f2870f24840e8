"""Erasure end to end in local mode: two users keep sessions, tasks and feedback; ``agentrail erase`` removes one
user's data on every API that keeps data, and nothing of the other's; a user naming someone else gets 403."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.slow
ERASED, KEPT = "agentrail-local", "agentrail-other"


@pytest.fixture(scope="module")
def local(start_local_mode: Callable[..., Any]) -> Any:
    return start_local_mode("stateful,async")


def _data_of(local: Any, user: str, wait_for_task: Callable[..., dict[str, Any]]) -> dict[str, str]:
    """A session with a turn and feedback, and a finished task with feedback, created by ``user`` through the APIs."""
    with local.client("stateful", principal=user) as sessions:
        created = sessions.request("POST", "/sessions", json={})
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        turn = sessions.request("POST", f"/sessions/{session_id}/messages", json={"message": "What is 2 + 2?"})
        assert turn.status_code == 200, turn.text
        rated = sessions.request("POST", f"/sessions/{session_id}/feedback", json={"score": 4})
        assert rated.status_code == 201, rated.text
    with local.client("async", principal=user) as tasks:
        accepted = tasks.request("POST", "/tasks", json={"message": "What is 3 + 3?"})
        assert accepted.status_code == 202, accepted.text
        task_id = accepted.json()["task_id"]
        wait_for_task(tasks, task_id)
        rated = tasks.request("POST", f"/tasks/{task_id}/feedback", json={"thumbs": "up"})
        assert rated.status_code == 201, rated.text
    return {"session": session_id, "task": task_id}


def _status(local: Any, pattern: str, user: str, path: str) -> int:
    with local.client(pattern, principal=user) as api:
        return api.request("GET", path).status_code


def test_agentrail_erase_removes_a_users_data_and_nothing_else(local: Any, wait_for_task: Callable[..., dict[str, Any]]) -> None:
    # Given two users with a session, a task and feedback each
    erased, kept = _data_of(local, ERASED, wait_for_task), _data_of(local, KEPT, wait_for_task)
    kept_items = local.items_naming(local.principal(KEPT))
    assert local.items_naming(local.principal(ERASED))

    # When the first erases itself with the CLI
    result = local.run_cli("erase", "--as", ERASED, "--json")

    # Then both APIs report what they deleted
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert len(report["stacks"]) == 2
    total = report["total"]
    assert total["sessions"] == 1 and total["tasks"] == 1 and total["feedback"] == 2, total
    # and nothing of its data is left, through the APIs or in any table
    assert _status(local, "stateful", ERASED, f"/sessions/{erased['session']}") == 404
    assert _status(local, "async", ERASED, f"/tasks/{erased['task']}") == 404
    assert local.items_naming(local.principal(ERASED)) == []
    # while the other user's session, task and items are all still there
    assert _status(local, "stateful", KEPT, f"/sessions/{kept['session']}") == 200
    assert _status(local, "async", KEPT, f"/tasks/{kept['task']}") == 200
    assert local.items_naming(local.principal(KEPT)) == kept_items

    # And erasing again reports zeros
    again = local.run_cli("erase", "--as", ERASED, "--json")
    assert again.returncode == 0, again.stderr
    assert set(json.loads(again.stdout)["total"].values()) == {0}


def test_a_user_naming_another_principal_gets_403_erase_forbidden(local: Any) -> None:
    # Given a user who is no operator, when it asks to erase another user's data
    with local.client("async", principal=KEPT) as api:
        refused = api.request("POST", "/erase", json={"principal": local.principal(ERASED)})
    # then it is refused with the documented code
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "erase_forbidden"
