"""Daily budgets against moto: the counters a reserve and a settle leave, their TTL, the API's 429 with Retry-After,
two requests racing for the last of a budget, and a task that a budget stops mid-run."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from agentrail_runtime.api.stateless import create_stateless_app
from agentrail_runtime.budgets import BudgetExceeded, DailyBudgets, counter_key, seconds_to_next_utc_midnight, utc_day
from agentrail_runtime.contract import BudgetLimit, budgets_to_env
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.metering.pricing import ModelPrice, PriceTable
from agentrail_runtime.models.base import Message, Usage
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.models.tokens import estimate_input_tokens
from tests.integration.conftest import create_table

TABLE = "agentrail-budget-counters"
TENANT = "iam:arn:aws:iam::123456789012:role/agentrail-caller"


@pytest.fixture
def dynamodb(agent_env) -> Any:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE, "pk", ttl="expires_at")
        yield client


def counter(client: Any, per: str, name: str, at: float) -> dict[str, Any]:
    item = client.get_item(TableName=TABLE, Key={"pk": {"S": counter_key(per, name, utc_day(at))}}).get("Item", {})
    return {key: next(iter(value.values())) for key, value in item.items()}


def test_a_reserve_then_a_settle_leave_each_counter_at_what_the_call_used_with_its_ttl(dynamodb, clock):
    prices = PriceTable({"bedrock:test-model": ModelPrice(input_per_million=1.0, output_per_million=4.0)})
    limits = [BudgetLimit("tenant", "usd", 1.0), BudgetLimit("agent", "tokens", 100_000)]
    budgets = DailyBudgets(TABLE, limits, prices=prices, client=dynamodb)
    guard = budgets.guard(tenant=TENANT, agent="demo")
    assert guard is not None

    reservation = guard.reserve("bedrock:test-model", 1_000, 500)
    reserved = counter(dynamodb, "tenant", TENANT, clock.now)
    guard.settle(reservation, Usage(input_tokens=900, output_tokens=100))

    assert reserved["tokens"] == "1500" and Decimal(reserved["usd"]) == Decimal("0.003")
    tenant, agent = counter(dynamodb, "tenant", TENANT, clock.now), counter(dynamodb, "agent", "demo", clock.now)
    assert tenant["tokens"] == agent["tokens"] == "1000"
    assert Decimal(tenant["usd"]) == Decimal(agent["usd"]) == Decimal("0.0013")
    midnight = int(clock.now) - int(clock.now) % 86_400
    assert int(tenant["expires_at"]) == midnight + 4 * 86_400
    assert (tenant["per"], tenant["name"], tenant["day"]) == ("tenant", TENANT, utc_day(clock.now))


def test_a_reserve_that_would_cross_the_limit_adds_nothing_and_names_the_budget(dynamodb, clock):
    budgets = DailyBudgets(TABLE, [BudgetLimit("tenant", "tokens", 2_000)], client=dynamodb)
    guard = budgets.guard(tenant=TENANT, agent="demo")
    assert guard is not None
    guard.settle(guard.reserve("local", 500, 500), Usage(input_tokens=500, output_tokens=700))

    with pytest.raises(BudgetExceeded) as refused:
        guard.reserve("local", 500, 500)

    assert counter(dynamodb, "tenant", TENANT, clock.now)["tokens"] == "1200"
    assert refused.value.refusal.model_dump(exclude={"day", "retry_after_seconds", "calls_before"}) == {
        "per": "tenant",
        "name": TENANT,
        "unit": "tokens",
        "limit": 2_000,
    }


@pytest.mark.parametrize(("spent_tokens", "spent_usd", "crossed"), [("100", "0.95", "usd"), ("1990", "0", "tokens")])
def test_a_refusal_names_the_limit_the_call_would_cross_when_a_counter_has_two(dynamodb, clock, spent_tokens, spent_usd, crossed):
    prices = PriceTable({"bedrock:test-model": ModelPrice(input_per_million=100.0, output_per_million=100.0)})
    budgets = DailyBudgets(
        TABLE, [BudgetLimit("tenant", "tokens", 2_000), BudgetLimit("tenant", "usd", 1.0)], prices=prices, client=dynamodb
    )
    key = {"S": counter_key("tenant", TENANT, utc_day(clock.now))}
    dynamodb.put_item(TableName=TABLE, Item={"pk": key, "tokens": {"N": spent_tokens}, "usd": {"N": spent_usd}})
    guard = budgets.guard(tenant=TENANT, agent="demo")
    assert guard is not None

    with pytest.raises(BudgetExceeded) as refused:
        guard.reserve("bedrock:test-model", 500, 500)  # 1,000 tokens, 0.1 USD

    assert refused.value.refusal.unit == crossed


def test_a_counter_of_yesterday_does_not_count_today(dynamodb, clock):
    budgets = DailyBudgets(TABLE, [BudgetLimit("agent", "tokens", 1_500)], client=dynamodb)
    guard = budgets.guard(tenant=None, agent="demo")
    assert guard is not None
    guard.settle(guard.reserve("local", 500, 500), Usage(input_tokens=500, output_tokens=500))

    clock.advance(seconds_to_next_utc_midnight(clock.now))

    guard.reserve("local", 500, 500)
    assert counter(dynamodb, "agent", "demo", clock.now)["tokens"] == "1000"


def stateless_app(agents_with: Any, *, limits: list[BudgetLimit], model: Any = None, max_output_tokens: int = 1024) -> Any:
    service = agents_with(
        model or LocalModel(), budgets=budgets_to_env(limits), budget_table=TABLE, max_output_tokens=max_output_tokens
    )
    return create_stateless_app(service=service, settings=service.settings)


@pytest.mark.parametrize("seconds_into_the_day", [86_399, 0])
def test_a_tenant_over_its_daily_budget_gets_429_with_retry_after_to_the_next_utc_midnight(
    dynamodb, clock, agents_with, load_event, call, seconds_into_the_day
):
    clock.now = clock.now - clock.now % 86_400 + seconds_into_the_day
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": counter_key("tenant", TENANT, utc_day(clock.now))}, "usd": {"N": "5.0"}})
    app = stateless_app(agents_with, limits=[BudgetLimit("tenant", "usd", 5.0)])

    reply = call(app, load_event("stateless/invoke.json"))

    assert reply.status == 429
    assert reply.headers["Retry-After"] == str(86_400 - seconds_into_the_day)
    assert reply.body["error"] == "budget_exceeded"
    assert reply.body["budget"] == {
        "per": "tenant",
        "unit": "usd",
        "limit": 5.0,
        "day": utc_day(clock.now),
        "retry_after_seconds": 86_400 - seconds_into_the_day,
    }


def test_a_request_a_budget_stops_after_its_first_call_answers_200_budget_exceeded_with_its_tokens(
    dynamodb, clock, agents_with, load_event, call
):
    event = load_event("stateless/invoke.json")
    prompt = Message.user("Calculate (12 + 30) * 2 and convert 10 km to mi")
    first = estimate_input_tokens(demo_definition.system_prompt, [prompt], [t.spec for t in demo_definition.tools])
    app = stateless_app(agents_with, limits=[BudgetLimit("tenant", "tokens", first + 1024 + 10)])

    reply = call(app, event)

    assert reply.status == 200
    assert reply.body["status"] == "budget_exceeded"
    assert reply.body["steps"] == 1 and reply.body["usage"]["total_tokens"] > 0
    assert counter(dynamodb, "tenant", TENANT, clock.now)["tokens"] == str(reply.body["usage"]["total_tokens"])


class WaitsForTheRival(LocalModel):
    """Holds the first call open until the rival request has its answer (or 20 s), so both reserve while one call
    is still in flight: without the condition both would run."""

    def __init__(self, rival_answered: threading.Event) -> None:
        self.rival_answered = rival_answered

    def converse(self, **kwargs: Any) -> Any:
        self.rival_answered.wait(timeout=20)
        return super().converse(**kwargs)


@pytest.fixture
def atomic_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each write to an item atomically; moto in process does not (a thread may switch between its
    condition check and its write under load), so its writes are serialized here, as DynamoDB's are per item."""
    lock = threading.Lock()
    for name in ("update_item", "transact_write_items", "get_item", "put_item"):
        original = getattr(DynamoDBBackend, name)

        def serialized(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialized)


def test_two_racing_requests_for_the_last_budget_exactly_one_runs_and_the_counter_is_what_it_spent(
    dynamodb, atomic_items, clock, agents_with, load_event, aimed_event, call
):
    message = "hello there"
    system, specs = demo_definition.system_prompt, [t.spec for t in demo_definition.tools]
    estimate = estimate_input_tokens(system, [Message.user(message)], specs)
    max_output = 1_000
    # One call's reservation fits; two at once do not; one after the other (the first settled) would.
    limit = (estimate + max_output) + estimate + max_output // 2
    answered = threading.Event()
    app = stateless_app(
        agents_with,
        limits=[BudgetLimit("tenant", "tokens", limit)],
        model=WaitsForTheRival(answered),
        max_output_tokens=max_output,
    )
    event = aimed_event(load_event("stateless/invoke.json"), body={"message": message})
    start = threading.Barrier(2)
    replies: list[Any] = []

    def request() -> None:
        start.wait()
        replies.append(call(app, event))
        answered.set()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(reply.status for reply in replies) == [200, 429]
    winner = next(reply for reply in replies if reply.status == 200)
    assert winner.body["status"] == "completed"
    assert counter(dynamodb, "tenant", TENANT, clock.now)["tokens"] == str(winner.body["usage"]["total_tokens"])


def test_a_charge_adds_what_a_batch_answer_spent_with_the_counters_ttl_and_the_next_reserve_sees_it(dynamodb, clock):
    limits = [BudgetLimit("tenant", "tokens", 2_000), BudgetLimit("agent", "usd", 1.0)]
    budgets = DailyBudgets(TABLE, limits, client=dynamodb)
    guard = budgets.guard(tenant=TENANT, agent="demo")
    assert guard is not None

    guard.charge(Usage(input_tokens=1_200, output_tokens=300), 0.25)  # nothing was reserved for it

    tenant, agent = counter(dynamodb, "tenant", TENANT, clock.now), counter(dynamodb, "agent", "demo", clock.now)
    assert tenant["tokens"] == agent["tokens"] == "1500"
    assert Decimal(tenant["usd"]) == Decimal(agent["usd"]) == Decimal("0.25")
    midnight = int(clock.now) - int(clock.now) % 86_400
    assert int(agent["expires_at"]) == midnight + 4 * 86_400
    assert (agent["per"], agent["name"], agent["day"]) == ("agent", "demo", utc_day(clock.now))
    with pytest.raises(BudgetExceeded) as refused:
        guard.reserve("local", 400, 200)
    assert (refused.value.refusal.per, refused.value.refusal.unit) == ("tenant", "tokens")
