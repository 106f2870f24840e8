"""The stateless API's response cache on moto's DynamoDB: a repeated question is a hit with zero tokens, a hit never
crosses agent versions or callers (when a tool reads the caller), an expired answer is not served, a DynamoDB
failure leaves the request served uncached, and ``POST /erase`` deletes the answers keyed for its principal."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.api.stateless import create_stateless_app
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.response_cache import ResponseCacheRefused
from agentrail_runtime.service import AgentService

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

TABLE = "agentrail-response-cache"
TTL = 600
QUESTION = "Add 2 and 40"
CALLER_ARN = "arn:aws:sts::123456789012:assumed-role/agentrail-caller/agentrail-client"
OTHER_ARN = "arn:aws:sts::123456789012:assumed-role/agentrail-other/agentrail-client"
#: The two callers as the API names them (an assumed role's session is named as its role).
CALLER = "iam:arn:aws:iam::123456789012:role/agentrail-caller"
OTHER = "iam:arn:aws:iam::123456789012:role/agentrail-other"
#: How many times each tool really ran: a hit runs none.
RUNS: dict[str, int] = {}


@tool(cacheable=True, local_patterns=[r"add (?P<a>\d+) and (?P<b>\d+)"])
def add(a: int, b: int) -> int:
    """Add two numbers."""
    RUNS["add"] = RUNS.get("add", 0) + 1
    return a + b


@tool(cacheable=True, reads_caller=True, local_patterns=[r"\bmy orders\b"])
def my_orders() -> list[str]:
    """The caller's open orders."""
    RUNS["my_orders"] = RUNS.get("my_orders", 0) + 1
    return ["A-1001"]


@tool(side_effects=True, local_patterns=[r"\bemail (?P<to>\S+)"])
def send_email(to: str) -> str:
    """Send an email."""
    return "sent"


ADDER = AgentDefinition(name="adder", system_prompt="You add numbers.", tools=(add,))
ADDER_V2 = AgentDefinition(name="adder", system_prompt="You add numbers, carefully.", tools=(add,))
ORDERS = AgentDefinition(name="orders", system_prompt="You list orders.", tools=(my_orders,))
MAILER = AgentDefinition(name="mailer", system_prompt="You send mail.", tools=(add, send_email))


@pytest.fixture
def dynamodb(agent_env: pytest.MonkeyPatch) -> Iterator[Any]:
    RUNS.clear()
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(  # as the ResponseCache construct makes it: with the sparse keys-only index erasure reads
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_owner",
                    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def stateless_app(definition: AgentDefinition, *, table: str | None = TABLE) -> Any:
    """The agent's stateless app, built as its handler builds it from ``AGENT_RESPONSE_CACHE_*``."""
    settings = RuntimeSettings(response_cache_table=table, response_cache_ttl_seconds=TTL)
    return create_stateless_app(service=AgentService(definition=definition, settings=settings), settings=settings)


@pytest.fixture
def stateless(dynamodb: Any, load_event: Callable[[str], dict], lambda_context: Any) -> Callable[..., Callable[..., dict]]:
    """``stateless(definition)``: an ``ask(message, caller=...)`` that invokes that agent's stateless app, built as its
    handler builds it from ``AGENT_RESPONSE_CACHE_*`` (``table``: another table name), and returns the parsed body."""

    def build(definition: AgentDefinition, *, table: str | None = TABLE) -> Callable[..., dict]:
        app = stateless_app(definition, table=table)

        def ask(message: str = QUESTION, *, caller: str = CALLER_ARN) -> dict:
            event = copy.deepcopy(load_event("stateless/invoke.json"))
            event["body"] = json.dumps({"message": message})
            event["requestContext"]["identity"]["userArn"] = caller
            response = app.resolve(event, lambda_context)
            assert response["statusCode"] == 200, response["body"]
            return json.loads(response["body"])

        return ask

    return build


def test_a_repeated_question_is_a_hit_that_reports_zero_tokens_and_runs_no_tool(stateless, stdout_records) -> None:
    ask = stateless(ADDER)

    first = ask()
    second = ask("  add 2 AND 40 ")

    assert (first["cache"], first["status"]) == ("miss", "completed")
    assert first["usage"]["total_tokens"] > 0 and first["steps"] == 2
    assert second["cache"] == "hit"
    assert second["answer"] == first["answer"] and "42" in second["answer"]
    assert second["usage"] == dict.fromkeys(second["usage"], 0)
    assert (second["cost_usd"], second["steps"], second["tool_calls"]) == (0.0, 0, [])
    assert RUNS == {"add": 1}
    records = stdout_records()
    metrics = {
        name for r in records if "_aws" in r for d in r["_aws"]["CloudWatchMetrics"] for m in d["Metrics"] for name in [m["Name"]]
    }
    assert {"ResponseCache_miss", "ResponseCache_hit"} <= metrics
    [hit] = [r for r in records if r.get("event") == "response_cache_hit"]
    assert hit["saved_tokens"] == first["usage"]["total_tokens"]
    assert QUESTION not in json.dumps(records)


def test_a_hit_never_crosses_agent_versions_sharing_one_table(stateless, dynamodb) -> None:
    old, new = stateless(ADDER), stateless(ADDER_V2)

    assert old()["cache"] == "miss"
    assert old()["cache"] == "hit"
    answered_by_new = new()

    assert answered_by_new["cache"] == "miss"
    assert new()["cache"] == "hit"
    assert RUNS == {"add": 2}
    versions = sorted(item["agent_version"]["S"] for item in dynamodb.scan(TableName=TABLE)["Items"])
    assert len(versions) == 2 and versions[0] != versions[1]


def test_the_stored_item_holds_the_answer_and_its_ttl_but_never_the_question(stateless, dynamodb, clock) -> None:
    stateless(ADDER)()

    [item] = dynamodb.scan(TableName=TABLE)["Items"]
    assert int(item["expires_at"]["N"]) == int(clock.now) + TTL
    assert "42" in item["answer"]["S"]
    assert "Add 2 and 40".casefold() not in json.dumps(item).casefold()


def test_an_answer_past_its_ttl_is_not_served_even_before_dynamodb_deletes_it(stateless, clock) -> None:
    ask = stateless(ADDER)
    ask()
    clock.advance(TTL - 1)
    assert ask()["cache"] == "hit"

    clock.advance(1)
    again = ask()

    assert again["cache"] == "miss"
    assert RUNS == {"add": 2}


def test_a_tool_that_reads_the_caller_keys_answers_by_caller(stateless) -> None:
    ask = stateless(ORDERS)

    mine = ask("Show my orders")
    theirs = ask("Show my orders", caller=OTHER_ARN)
    mine_again = ask("show MY orders")

    assert (mine["cache"], theirs["cache"], mine_again["cache"]) == ("miss", "miss", "hit")
    assert RUNS == {"my_orders": 2}


def test_without_a_tool_that_reads_the_caller_callers_share_answers(stateless) -> None:
    ask = stateless(ADDER)

    ask()
    other = ask(caller=OTHER_ARN)

    assert other["cache"] == "hit"


def test_a_dynamodb_failure_on_read_and_write_leaves_the_request_served_uncached(stateless, stdout_records) -> None:
    ask = stateless(ADDER, table="agentrail-no-such-table")

    first, second = ask(), ask()

    assert (first["cache"], second["cache"]) == ("miss", "miss")
    assert first["status"] == second["status"] == "completed" and "42" in second["answer"]
    failures = [(r["operation"], r["error"]) for r in stdout_records() if r.get("event") == "response_cache_error"]
    assert failures == [("get", "ResourceNotFoundException"), ("put", "ResourceNotFoundException")] * 2


def test_a_run_that_did_not_complete_is_not_stored(stateless, dynamodb, agent_env) -> None:
    agent_env.setenv("AGENT_MAX_STEPS", "1")
    ask = stateless(ADDER)

    first = ask()
    second = ask()

    assert first["status"] == second["status"] == "max_steps_exceeded"
    assert (first["cache"], second["cache"]) == ("miss", "miss")
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


def test_a_cache_on_an_agent_with_a_side_effecting_tool_refuses_the_cold_start_naming_the_tool(dynamodb) -> None:
    settings = RuntimeSettings(response_cache_table=TABLE)

    with pytest.raises(ResponseCacheRefused, match=r"^agent 'mailer' cannot use a response cache: its tool 'send_email' has"):
        create_stateless_app(service=AgentService(definition=MAILER, settings=settings), settings=settings)


def test_without_a_cache_table_every_question_runs_and_the_response_says_nothing_of_a_cache(stateless, dynamodb) -> None:
    ask = stateless(MAILER, table=None)

    first, second = ask(), ask()

    assert first["cache"] is None and second["cache"] is None
    assert RUNS == {"add": 2}
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


@pytest.fixture
def erase(dynamodb: Any, load_event: Callable[[str], dict], lambda_context: Any) -> Callable[..., dict]:
    """``erase(definition, caller=...)``: ``POST /erase`` of the caller's own data on that agent's stateless app (with
    its response cache), and the parsed body."""

    def post(definition: AgentDefinition, *, caller: str = CALLER_ARN) -> dict:
        event = copy.deepcopy(load_event("stateless/erase.json"))
        event["requestContext"]["identity"]["userArn"] = caller
        response = stateless_app(definition).resolve(event, lambda_context)
        assert response["statusCode"] == 200, response["body"]
        return json.loads(response["body"])

    return post


def owners(dynamodb: Any) -> list[str | None]:
    """The ``owner`` of every item in the cache table (None for an answer that names nobody), sorted."""
    found = [item.get("owner", {}).get("S") for item in dynamodb.scan(TableName=TABLE)["Items"]]
    return sorted(found, key=lambda owner: owner or "")


def test_post_erase_deletes_the_callers_answers_keyed_per_caller_and_leaves_another_callers(stateless, erase, dynamodb) -> None:
    # Given an agent whose tool reads the caller, with one answer cached for each of two callers, each naming its owner
    ask = stateless(ORDERS)
    ask("Show my orders")
    ask("Show my orders", caller=OTHER_ARN)
    assert owners(dynamodb) == [CALLER, OTHER]

    # when the caller erases its own data, twice
    first, second = erase(ORDERS), erase(ORDERS)

    # then the first deletes its answer, the second finds nothing left,
    assert (first["counts"]["cached_answers"], second["counts"]["cached_answers"]) == (1, 0)
    # and only the other caller's answer stays: the caller is answered anew, the other still from the cache
    assert owners(dynamodb) == [OTHER]
    assert ask("Show my orders")["cache"] == "miss"
    assert ask("Show my orders", caller=OTHER_ARN)["cache"] == "hit"


def test_an_answer_callers_share_names_no_owner_and_erasure_leaves_it(stateless, erase, dynamodb) -> None:
    # Given an agent whose tools do not read the caller, with an answer cached for every caller
    ask = stateless(ADDER)
    ask()
    assert owners(dynamodb) == [None]

    # when the caller who asked first erases its data
    report = erase(ADDER)

    # then no cached answer was its own: the shared one stays and is still served to anyone
    assert report["counts"]["cached_answers"] == 0
    assert owners(dynamodb) == [None]
    assert ask(caller=OTHER_ARN)["cache"] == "hit"
