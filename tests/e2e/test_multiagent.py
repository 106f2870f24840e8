"""The multi-agent pattern end to end: router → specialists → orchestrator over SQS, each agent its own function."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentrail_cli.client import AgentApiClient

pytestmark = pytest.mark.slow
Waiter = Callable[..., dict[str, Any]]


@pytest.fixture
def team(local: Any) -> Iterator[AgentApiClient]:
    with local.client("multiagent") as api:
        yield api


def _run(team: AgentApiClient, message: str, wait_for_task: Waiter) -> tuple[dict[str, Any], str]:
    """The finished task and its correlation id (the API request id of the submission)."""
    submitted = team.request("POST", "/tasks", json={"message": message})
    assert submitted.status_code == 202, submitted.text
    return wait_for_task(team, submitted.json()["task_id"]), submitted.headers["x-amzn-RequestId"]


def test_a_billing_question_is_routed_to_the_billing_specialist_and_answered(team: AgentApiClient, wait_for_task: Waiter) -> None:
    task, _ = _run(team, "Why was I charged twice on invoice INV-1001?", wait_for_task)

    assert task["status"] == "succeeded"
    data = task["result"]["data"]
    assert (data["answered_by"], data["trail"], data["hops"]) == ("billing", ["router", "billing"], 1)
    assert "INV-1001" in task["result"]["answer"] and "duplicate charge refunded" in task["result"]["answer"]
    assert set(task["spend"]) == {"router", "billing"}


def test_a_routing_loop_is_stopped_by_the_hop_limit(team: AgentApiClient, wait_for_task: Waiter) -> None:
    task, _ = _run(team, "Who is the account owner paying the invoices?", wait_for_task)

    assert task["status"] == "failed"
    assert task["error"]["code"] == "routing_loop"
    trail = task["result"]["data"]["trail"]
    assert trail[0] == "router" and len(trail) == task["result"]["data"]["hops"] + 1
    assert set(trail[1:]) == {"account", "billing"}
    assert task["result"]["answer"] is None


def test_an_unclassifiable_request_gets_the_routers_fallback_answer(team: AgentApiClient, wait_for_task: Waiter) -> None:
    task, _ = _run(team, "Hello there", wait_for_task)

    assert task["status"] == "succeeded"
    assert task["result"]["data"] == {"answered_by": "router", "trail": ["router"], "hops": 0}
    assert "could not tell which specialist" in task["result"]["answer"]
    assert set(task["spend"]) == {"router"}


def test_spend_per_agent_adds_up_to_the_task_total(team: AgentApiClient, wait_for_task: Waiter) -> None:
    task, _ = _run(team, "Who is the account owner paying the invoices?", wait_for_task)

    spend = task["spend"].values()
    assert sum(s["usage"]["input_tokens"] for s in spend) == task["usage"]["input_tokens"]
    assert sum(s["usage"]["output_tokens"] for s in spend) == task["usage"]["output_tokens"]
    assert sum(s["calls"] for s in spend) == len(task["result"]["data"]["trail"])
    assert sum(s["cost_usd"] for s in spend) == pytest.approx(task["cost_usd"])


def test_one_correlation_id_follows_the_task_through_router_specialist_and_orchestrator(
    local: Any, team: AgentApiClient, wait_for_task: Waiter, log_records: Callable[[Path], list[dict[str, Any]]]
) -> None:
    task, correlation_id = _run(team, "Why was I charged twice on invoice INV-1001?", wait_for_task)

    roles = {
        "api": "TeamTasksAgentFunction",
        "router": "TeamTasksWorkerFunction",
        "billing": "TeamSpecialistBillingFunction",
        "orchestrator": "TeamOrchestratorFunction",
    }
    tagged = {
        role: [r for r in log_records(local.function_log(prefix)) if r.get("correlation_id") == correlation_id]
        for role, prefix in roles.items()
    }

    assert task["status"] == "succeeded"
    assert all(tagged.values()), {role: len(records) for role, records in tagged.items()}
    for role in ("router", "billing", "orchestrator"):
        assert {r.get("task_id") for r in tagged[role]} == {task["task_id"]}, role
    assert any(r.get("event") == "reasoning_step" for r in tagged["billing"])
