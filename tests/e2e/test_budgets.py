"""Daily budgets end to end in local mode (``-c budget_tenant_daily_tokens=1650``): a tenant over its budget gets 429
with Retry-After, a task crossing its budget mid-run ends ``budget_exceeded`` with its tokens (a queued task, and a
hierarchical one whose supervisor cannot afford its next call), two requests racing for the last of a budget are
served once, and ``agentrail budgets`` shows the spend.

The demo agent answers "Calculate (12 + 30) * 2 and convert 10 km to mi" in three model calls. With 1,650 tokens a
day, its first call fits (about 600 input tokens plus the 1,024 output cap), and no second call does. The same holds
for the hierarchical supervisor's planning: a first call that calls its split tool, and a second that does not fit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from agentrail_runtime.budgets import counter_key, seconds_to_next_utc_midnight, utc_day
from agentrail_runtime.clock import now

pytestmark = pytest.mark.slow
LIMIT = 1_650
THREE_CALLS = "Calculate (12 + 30) * 2 and convert 10 km to mi"
RESEARCH = {"message": "Research Lambda; research flaky Step Functions; compare DynamoDB and SQS", "task_type": "research"}


@pytest.fixture(scope="module")
def local(start_local_mode: Callable[..., Any]) -> Any:
    return start_local_mode("stateless,async,hierarchical", context={"budget_tenant_daily_tokens": str(LIMIT)})


def _counter(local: Any, pattern: str, tenant: str) -> int:
    item = (
        local.aws("dynamodb")
        .get_item(
            TableName=local.output(pattern, "BudgetTableName"),
            Key={"pk": {"S": counter_key("tenant", tenant, utc_day(now()))}},
        )
        .get("Item", {})
    )
    return int(item.get("tokens", {}).get("N", "0"))


def test_a_tenant_over_its_daily_budget_gets_429_with_retry_after_to_the_next_utc_midnight(local: Any) -> None:
    with local.client("stateless", principal="agentrail-local") as api:
        # Given a tenant whose request spent its day's budget (the second model call did not fit),
        first = api.request("POST", "/invoke", json={"message": THREE_CALLS})
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "budget_exceeded"
        # when it asks again,
        refused = api.request("POST", "/invoke", json={"message": THREE_CALLS})
    # then it gets 429 with Retry-After, the seconds to the next UTC midnight, and a body naming the budget.
    assert refused.status_code == 429, refused.text
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < seconds_to_next_utc_midnight(now()) <= retry_after <= 86_400
    body = refused.json()
    assert body["error"] == "budget_exceeded"
    assert body["budget"]["per"] == "tenant" and body["budget"]["unit"] == "tokens" and body["budget"]["limit"] == LIMIT
    assert body["budget"]["day"] == utc_day(now())
    assert _counter(local, "stateless", local.principal("agentrail-local")) == first.json()["usage"]["total_tokens"]


def test_a_task_crossing_its_budget_mid_run_ends_budget_exceeded_with_its_tokens_reported(
    local: Any, wait_for_task: Callable[..., dict[str, Any]]
) -> None:
    with local.client("async", principal="agentrail-other") as tasks:
        # Given a task whose second model call would cross its tenant's daily budget,
        accepted = tasks.request("POST", "/tasks", json={"message": THREE_CALLS})
        assert accepted.status_code == 202, accepted.text
        # when the worker runs it,
        task = wait_for_task(tasks, accepted.json()["task_id"])
        # then it stops budget_exceeded before that call, with the tokens of the call it made,
        assert task["status"] == "budget_exceeded"
        assert task["error"]["code"] == "budget_exceeded"
        assert task["steps"] == 1
        assert task["usage"]["total_tokens"] == _counter(local, "async", local.principal("agentrail-other")) > 0
        # and the tenant's next task, whose first call no longer fits, ends the same way without calling the model.
        again = tasks.request("POST", "/tasks", json={"message": THREE_CALLS})
        assert again.status_code == 202, again.text
        next_task = wait_for_task(tasks, again.json()["task_id"])
    assert (next_task["status"], next_task["steps"], next_task["usage"]["total_tokens"]) == ("budget_exceeded", 0, 0)


def test_a_hierarchical_task_whose_supervisor_cannot_afford_its_next_call_ends_budget_exceeded_with_its_tokens(
    local: Any, wait_for_task: Callable[..., dict[str, Any]], wait_for_execution: Callable[..., dict[str, Any]]
) -> None:
    with local.client("hierarchical", principal="agentrail-other") as api:
        # Given a research task whose supervisor's second planning call would cross its tenant's daily budget,
        accepted = api.request("POST", "/tasks", json=RESEARCH)
        assert accepted.status_code == 202, accepted.text
        task_id = accepted.json()["task_id"]
        # when the supervisor/worker workflow runs it,
        task = wait_for_task(api, task_id, seconds=60)
    # then it stops before that call and ends budget_exceeded naming the budget, no worker having run,
    assert task["status"] == "budget_exceeded"
    assert task["error"]["code"] == "budget_exceeded" and "per tenant" in task["error"]["message"]
    assert set(task["spend"]) == {"supervisor"}
    # with the tokens of the call it made, which are what the tenant's counter holds,
    assert task["usage"]["total_tokens"] == _counter(local, "hierarchical", local.principal("agentrail-other")) > 0
    # and the workflow went from Plan to Synthesize and succeeded (the task's outcome is the task's, not a failure).
    sfn = local.aws("stepfunctions")
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if "Supervisor" in m["name"])
    (execution,) = [e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"] == task_id]
    assert wait_for_execution(sfn, execution["executionArn"])["status"] == "SUCCEEDED"


def test_two_racing_requests_for_the_last_budget_are_served_once_and_the_counter_is_what_was_spent(local: Any) -> None:
    replies: list[Any] = []
    start = threading.Barrier(2)

    def request() -> None:
        with local.client("stateless", principal="agentrail-approver") as api:
            start.wait()
            replies.append(api.request("POST", "/invoke", json={"message": THREE_CALLS}))

    # Given a tenant with room for one first model call, when two requests race for it,
    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then exactly one is served (and stopped before its second call), the other gets 429,
    assert sorted(reply.status_code for reply in replies) == [200, 429], [reply.text for reply in replies]
    served = next(reply.json() for reply in replies if reply.status_code == 200)
    assert served["steps"] == 1
    # and the tenant's counter is exactly what the served request spent: nothing reserved was lost or doubled.
    assert _counter(local, "stateless", local.principal("agentrail-approver")) == served["usage"]["total_tokens"]


def test_agentrail_budgets_shows_todays_spend_against_the_budgets(local: Any) -> None:
    # Given tenants that spent today (the tests above), when `agentrail budgets --json` asks local mode,
    result = local.run_cli("budgets", "--json", timeout=60)
    # then each tenant's spend is listed against the limit,
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    spent = {(row["name"], row["unit"]): (row["spent"], row["limit"]) for row in rows if row["per"] == "tenant"}
    tenant = local.principal("agentrail-local")
    assert spent[tenant, "tokens"] == (_counter(local, "stateless", tenant), LIMIT)
    # and the table form names the same.
    table = local.run_cli("budgets", timeout=60)
    assert table.returncode == 0, table.stderr
    assert "STACK" in table.stdout and tenant in table.stdout and f"{LIMIT:,}" in table.stdout
