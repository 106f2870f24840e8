"""The response cache's key and who may use the cache: normalized input, the agent version and the caller in the key;
tools declare ``cacheable``; an agent is cacheable only when all its tools are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.loop import AgentResult, AgentStatus
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.models.base import Usage
from agentrail_runtime.response_cache import ResponseCache, ResponseCacheRefused, cache_key, normalize_message


@tool(cacheable=True)
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool(cacheable=True, reads_caller=True)
def my_orders() -> list[str]:
    """The caller's orders."""
    return []


@tool(cacheable=True)
def my_account(context: ToolContext) -> str:
    """The caller's account."""
    return context.principal or ""


@tool(side_effects=True)
def send_email(to: str) -> str:
    """Send an email."""
    return "sent"


@tool
def today() -> str:
    """Today's date."""
    return "2026-12-07"


def key(message: str = "What is 2+2?", **overrides: str | None) -> str:
    inputs: dict[str, str | None] = {"agent_version": "v1", "model": "local", "message": message, **overrides}
    return cache_key(**inputs)  # type: ignore[arg-type]


# -- the key -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    ["what is 2+2?", "  What is 2+2?  ", "WHAT IS 2+2?", "What\tis\n\n2+2?", "What  is  2+2?", "\uff37hat is 2+2?"],
    ids=["lower", "padded", "upper", "tabs-and-newlines", "double-spaces", "full-width-letter"],
)
def test_messages_that_differ_only_in_case_spacing_or_compatibility_forms_share_a_key(variant: str) -> None:
    assert key(variant) == key("What is 2+2?")


def test_normalization_keeps_what_changes_the_question() -> None:
    assert normalize_message("  What IS\t2 + 2? ") == "what is 2 + 2?"
    assert key("What is 2+2?") != key("What is 2 + 2?")
    assert key("What is 2+2?") != key("What is 2+3?")


def test_the_key_changes_with_the_agent_version_the_model_and_the_principal() -> None:
    base = key()

    assert key(agent_version="v2") != base
    assert key(model="bedrock:anthropic.claude-3-haiku") != base
    assert key(principal="iam:arn:aws:iam::123456789012:role/a") != base
    assert key(principal="iam:arn:aws:iam::123456789012:role/a") != key(principal="iam:arn:aws:iam::123456789012:role/b")


def test_the_key_is_a_sha256_hex_digest_that_never_holds_the_message() -> None:
    digest = key("my card is 4111 1111 1111 1111")

    assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    assert key("my card is 4111 1111 1111 1111") == digest


def test_a_cache_not_per_caller_leaves_the_principal_out_of_the_key() -> None:
    shared = ResponseCache("t", per_caller=False, client=object())
    per_caller = ResponseCache("t", per_caller=True, client=object())
    alice = {"agent_version": "v1", "model": "local", "message": "hi", "principal": "iam:alice"}
    bob = {**alice, "principal": "iam:bob"}

    assert shared.key(**alice) == shared.key(**bob) == cache_key(agent_version="v1", model="local", message="hi")
    assert per_caller.key(**alice) != per_caller.key(**bob)


# -- tools and definitions ---------------------------------------------------------------------------------------


def test_a_tool_with_side_effects_cannot_be_cacheable_and_the_error_names_it() -> None:
    def charge(amount: int) -> str:
        """Charge the card."""
        return "charged"

    with pytest.raises(ValueError, match=r"^tool 'charge' cannot be both cacheable=True and side_effects=True: "):
        tool(charge, cacheable=True, side_effects=True)


def test_tools_are_not_cacheable_unless_declared_and_a_tool_context_means_the_tool_reads_the_caller() -> None:
    assert (add.cacheable, add.depends_on_caller) == (True, False)
    assert (today.cacheable, today.depends_on_caller) == (False, False)
    assert my_orders.depends_on_caller is True
    assert my_account.depends_on_caller is True


def test_an_agent_is_cacheable_only_when_every_tool_is_and_an_agent_without_tools_is() -> None:
    assert AgentDefinition(name="bare", system_prompt="Hi.").cacheable is True
    assert AgentDefinition(name="math", system_prompt="Hi.", tools=(add,)).cacheable is True
    assert AgentDefinition(name="mixed", system_prompt="Hi.", tools=(add, today)).cacheable is False


def test_the_reason_an_agent_is_not_cacheable_names_a_side_effecting_tool_first() -> None:
    mixed = AgentDefinition(name="mixed", system_prompt="Hi.", tools=(today, add, send_email))
    undeclared = AgentDefinition(name="dated", system_prompt="Hi.", tools=(today, add))

    assert mixed.not_cacheable_because == (
        "agent 'mixed' cannot use a response cache: its tool 'send_email' has side effects, and a cached answer would skip it"
    )
    assert undeclared.not_cacheable_because == (
        "agent 'dated' cannot use a response cache: its tool 'today' is not declared cacheable=True, and a cached "
        "answer would skip it"
    )


def test_the_key_holds_the_caller_only_when_a_tool_reads_the_caller() -> None:
    assert AgentDefinition(name="math", system_prompt="Hi.", tools=(add,)).cache_per_caller is False
    assert AgentDefinition(name="orders", system_prompt="Hi.", tools=(add, my_orders)).cache_per_caller is True
    assert AgentDefinition(name="account", system_prompt="Hi.", tools=(my_account,)).cache_per_caller is True


def test_a_cache_for_an_agent_that_is_not_cacheable_is_refused_in_one_sentence_naming_the_tool() -> None:
    agent = AgentDefinition(name="mailer", system_prompt="Hi.", tools=(add, send_email))

    with pytest.raises(ResponseCacheRefused, match=r"^agent 'mailer' cannot use a response cache: its tool 'send_email'"):
        ResponseCache.for_agent(agent, "table", client=object())


def test_a_cache_for_an_agent_whose_tool_reads_the_caller_is_per_caller() -> None:
    agent = AgentDefinition(name="orders", system_prompt="Hi.", tools=(my_orders,))

    assert ResponseCache.for_agent(agent, "table", client=object()).per_caller is True


# -- settings ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [59, 2_592_001])
def test_a_ttl_outside_one_minute_to_thirty_days_fails_the_settings(seconds: int) -> None:
    with pytest.raises(ValidationError, match="response_cache_ttl_seconds"):
        RuntimeSettings(response_cache_table="cache", response_cache_ttl_seconds=seconds)


def test_the_cache_is_off_by_default_with_a_one_hour_ttl() -> None:
    settings = RuntimeSettings()

    assert (settings.response_cache_table, settings.response_cache_ttl_seconds) == (None, 3600)


# -- the owner, and erasure --------------------------------------------------------------------------------------

ALICE = "iam:arn:aws:iam::123456789012:role/alice"
ANSWER = AgentResult(
    status=AgentStatus.COMPLETED,
    answer="4",
    model="local",
    steps=1,
    usage=Usage(),
    cost_usd=0.0,
    tool_calls=[],
    new_messages=[],
)


class ConditionalCheckFailedException(Exception):
    pass


class RecordingDynamoDB:
    """A DynamoDB client that records puts, lists ``indexed`` keys for any index query, and deletes a key only when
    ``owners`` names the condition's owner for it."""

    exceptions = type("Exceptions", (), {"ConditionalCheckFailedException": ConditionalCheckFailedException})

    def __init__(self, indexed: Sequence[str] = (), owners: dict[str, str] | None = None) -> None:
        self.puts: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.indexed = list(indexed)
        self.owners = dict(owners or {})

    def put_item(self, **request: Any) -> dict[str, Any]:
        self.puts.append(request["Item"])
        return {}

    def get_paginator(self, operation: str) -> Any:
        assert operation == "query"
        indexed = self.indexed

        class Pages:
            def paginate(self, **request: Any) -> list[dict[str, Any]]:
                assert (request["IndexName"], request["ExpressionAttributeNames"]) == ("by_owner", {"#key": "owner"})
                return [{"Items": [{"pk": {"S": key}} for key in indexed]}]

        return Pages()

    def delete_item(self, **request: Any) -> dict[str, Any]:
        key = request["Key"]["pk"]["S"]
        if self.owners.get(key) != request["ExpressionAttributeValues"][":owner"]["S"]:
            raise ConditionalCheckFailedException
        del self.owners[key]
        self.deleted.append(key)
        return {}


@pytest.mark.parametrize(("per_caller", "owner"), [(True, ALICE), (False, None)], ids=["per-caller", "shared"])
def test_an_answer_names_its_caller_as_owner_only_when_the_cache_is_per_caller(per_caller: bool, owner: str | None) -> None:
    client = RecordingDynamoDB()
    cache = ResponseCache("table", per_caller=per_caller, client=client, clock=lambda: 1000.0)

    assert cache.put("k", ANSWER, agent_version="v1", principal=ALICE)

    [item] = client.puts
    assert item.get("owner") == ({"S": owner} if owner else None)


def test_erasing_an_owner_deletes_each_listed_answer_that_is_still_its_own_and_counts_only_those() -> None:
    # Given the index lists three keys for alice: one hers, one gone already, one a stale entry now someone else's
    client = RecordingDynamoDB(indexed=["mine", "gone", "stale"], owners={"mine": ALICE, "stale": "iam:other"})
    cache = ResponseCache("table", per_caller=True, client=client)

    # when alice's answers are erased, twice (the index, lagging, still lists the same three keys the second time)
    first, second = cache.erase_owner(ALICE), cache.erase_owner(ALICE)

    # then only her own answer is deleted and counted, the other owner's stays, and the second erasure counts zero
    assert (first, second) == (1, 0)
    assert client.deleted == ["mine"]
    assert client.owners == {"stale": "iam:other"}
