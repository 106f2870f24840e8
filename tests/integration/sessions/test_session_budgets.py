"""A session turn under the daily budgets: refused with 429 before its first model call, and nothing committed."""

from __future__ import annotations

from typing import Any

from agentrail_runtime.budgets import counter_key, seconds_to_next_utc_midnight, utc_day
from agentrail_runtime.contract import BudgetLimit, budgets_to_env
from agentrail_runtime.models.local import LocalModel

COUNTERS = "agentrail-budget-counters"


def test_a_turn_of_a_tenant_over_its_daily_budget_gets_429_with_retry_after_and_commits_nothing(
    aws, make_store, make_agent, make_app, create_session, send, api_event, call, owner, clock
) -> None:
    aws.dynamodb.create_table(
        TableName=COUNTERS,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    budgets = budgets_to_env([BudgetLimit("tenant", "tokens", 10_000)])
    app = make_app(make_agent(make_store(), model=LocalModel(), budgets=budgets, budget_table=COUNTERS))
    session_id = create_session(app)
    # Given a tenant that has spent its day's tokens,
    aws.dynamodb.put_item(
        TableName=COUNTERS,
        Item={"pk": {"S": counter_key("tenant", owner, utc_day(clock.now))}, "tokens": {"N": "10000"}},
    )

    # when it sends a message,
    reply: Any = send(app, session_id, "What is 6 * 7?")

    # then it gets 429 until the next UTC midnight, naming the budget,
    assert reply.status == 429
    assert reply.headers["Retry-After"] == str(seconds_to_next_utc_midnight(clock.now))
    assert (reply.body["error"], reply.body["budget"]["per"], reply.body["budget"]["unit"]) == (
        "budget_exceeded",
        "tenant",
        "tokens",
    )
    # and the session has no turn.
    session = call(app, api_event("get-session", session_id=session_id))
    assert session.status == 200 and session.body["turns"] == 0
