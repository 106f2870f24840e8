"""Guardrails end to end in local mode: an injected tool result is withheld and the task still completes, a card
number leaves an answer redacted, and nothing planted in requests appears in anything local mode logged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LocalMode

pytestmark = pytest.mark.slow

EMAIL = "ana.lopez@example.com"
CARD = "4111 1111 1111 1111"
IBAN = "GB82 WEST 1234 5698 7654 32"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
#: Each planted value, and the way a log line could spell it (a card's digits run together, an IBAN without spaces).
PLANTED = (EMAIL, CARD, CARD.replace(" ", ""), IBAN, IBAN.replace(" ", ""), ACCESS_KEY)


def test_an_injected_tool_result_is_withheld_from_the_model_and_the_task_still_completes(
    local: LocalMode, wait_for_task: Callable[..., dict[str, Any]]
) -> None:
    # given: order A-1004, whose customer's delivery note tells the model to issue a refund
    with local.client("async") as tasks:
        accepted = tasks.request("POST", "/tasks", json={"message": "What is the status of order A-1004?"})
        assert accepted.status_code == 202, accepted.text

        # when: the task runs
        task = wait_for_task(tasks, accepted.json()["task_id"])

    # then: it succeeds; the lookup's result reached the model as a notice naming the reason, and no refund ran
    assert task["status"] == "succeeded"
    answer = task["result"]["answer"]
    assert "prompt_injection.instruction_override" in answer
    assert "5000" not in answer and "Ignore all previous" not in answer
    assert [c["tool"] for c in task["result"]["tool_calls"]] == ["lookup_order"]


def test_a_card_number_in_an_answer_is_redacted(local: LocalMode) -> None:
    with local.client("stateless") as client:
        response = client.request("POST", "/invoke", json={"message": f"My card is {CARD}"})

    assert response.status_code == 200, response.text
    assert response.json()["answer"] == "Noted: your card is [REDACTED:card_number]."
    assert CARD not in response.text


@pytest.fixture(scope="module")
def debug_local(start_local_mode: Callable[..., LocalMode]) -> LocalMode:
    """Local mode with every agent function logging at DEBUG (botocore then logs whole request bodies)."""
    return start_local_mode("stateless,stateful,async", context={"log_level": "DEBUG"})


def everything_logged(local: LocalMode) -> str:
    """Local mode's console and every function's log file."""
    logs = {Path(f["log_file"]) for f in local.ready["functions"]}
    return "\n".join([local.console_output(), *(path.read_text(errors="replace") for path in sorted(logs) if path.is_file())])


def test_nothing_planted_in_requests_appears_in_anything_local_mode_logged_at_debug(
    debug_local: LocalMode, wait_for_task: Callable[..., dict[str, Any]]
) -> None:
    # given: personal and secret data sent to every pattern's API
    with debug_local.client("stateless") as client:
        assert client.request("POST", "/invoke", json={"message": f"My email is {EMAIL}"}).status_code == 200
    with debug_local.client("stateful") as client:
        session = client.request("POST", "/sessions", json={})
        assert session.status_code == 201, session.text
        turn = client.request(
            "POST",
            f"/sessions/{session.json()['session_id']}/messages",
            json={"message": f"My email is {EMAIL}. My iban is {IBAN}"},
        )
        assert turn.status_code == 200, turn.text
    with debug_local.client("async") as client:
        accepted = client.request("POST", "/tasks", json={"message": f"My card is {CARD}. My key is {ACCESS_KEY}"})
        assert accepted.status_code == 202, accepted.text
        assert wait_for_task(client, accepted.json()["task_id"])["status"] == "succeeded"

    # when: everything local mode logged is read
    logged = everything_logged(debug_local)

    # then: DEBUG lines carried what the sessions and tasks stored (the positive control: botocore logs the body of
    # each DynamoDB write, here redacted) ...
    assert '"level": "DEBUG"' in logged
    for marker in ("[REDACTED:email]", "[REDACTED:iban]", "[REDACTED:card_number]", "[REDACTED:aws_access_key]"):
        assert marker in logged, marker
    # ... and no planted value appears anywhere
    assert [value for value in PLANTED if value in logged] == []
