"""Prompt caching: where cache points go, the local model's simulated cache, and the price of cached tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentrail_runtime.agent.loop import Agent
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.metering.pricing import DEFAULT_PRICES, ModelPrice, PriceTable
from agentrail_runtime.models.base import Message, ToolSpec, Usage
from agentrail_runtime.models.caching import (
    BEDROCK_CACHE_RULES,
    MAX_CACHE_POINTS,
    CacheRules,
    SimulatedPromptCache,
    cache_points,
    rules_for,
)
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.models.registry import ProviderFactory
from agentrail_runtime.models.tokens import estimate_input_tokens

#: About 1,500 tokens: past every Bedrock minimum but Claude Haiku 4.5's.
LONG_PROMPT = "You answer questions about the refund policy. " * 130
TOOL = ToolSpec(name="lookup", description="Look an order up. " * 40, input_schema={"type": "object", "properties": {}})
PRICES_JSON = Path(__file__).parents[2] / "cli" / "agentrail_cli" / "plan" / "data" / "prices.json"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def session(turns: int) -> list[Message]:
    """A session's history of ``turns`` turns, then a new request."""
    messages: list[Message] = []
    for turn in range(turns):
        messages += [Message.user(f"Question {turn} about order {turn}."), Message.assistant(f"Answer {turn}. " * 20)]
    return [*messages, Message.user("And the last order?")]


def test_a_model_without_prompt_caching_gets_no_cache_point() -> None:
    assert rules_for("anthropic.claude-3-haiku-20240307-v1:0") is None
    assert rules_for("meta.llama3-1-8b-instruct-v1:0") is None
    assert cache_points(None, system=LONG_PROMPT, messages=session(3), tools=[TOOL]) == []


def test_an_inference_profile_caches_as_its_model_does() -> None:
    assert rules_for("us.anthropic.claude-sonnet-4-20250514-v1:0") == BEDROCK_CACHE_RULES["anthropic.claude-sonnet-4"]
    assert rules_for("eu.amazon.nova-lite-v1:0") == BEDROCK_CACHE_RULES["amazon.nova-lite"]
    assert rules_for("anthropic.claude-3-5-haiku-20241022-v1:0").min_tokens == 2048


def test_claude_gets_points_after_the_tools_the_system_prompt_the_stable_history_and_the_last_message() -> None:
    messages = session(3)
    points = cache_points(
        rules_for("anthropic.claude-sonnet-4-20250514-v1:0"), system=LONG_PROMPT, messages=messages, tools=[TOOL]
    )

    assert [(p.field, p.index) for p in points] == [
        ("system", -1),
        ("messages", len(messages) - 2),
        ("messages", len(messages) - 1),
    ]
    # The tools alone (about 190 tokens) are under Claude's 1,024: no point there; the prefixes only grow.
    assert [p.prefix_tokens for p in points] == sorted(p.prefix_tokens for p in points)
    assert points[0].prefix_tokens >= 1024


def test_nova_takes_no_point_in_the_tools() -> None:
    big_tool = TOOL.model_copy(update={"description": "Look an order up. " * 400})
    rules = rules_for("amazon.nova-pro-v1:0")

    points = cache_points(rules, system=LONG_PROMPT, messages=[Message.user("hi")], tools=[big_tool])
    claude = cache_points(
        rules_for("anthropic.claude-3-7-sonnet-20250219-v1:0"),
        system=LONG_PROMPT,
        messages=[Message.user("hi")],
        tools=[big_tool],
    )

    assert "tools" not in {p.field for p in points}
    assert claude[0].field == "tools"


def test_a_prefix_under_the_minimum_gets_no_point() -> None:
    rules = CacheRules(min_tokens=100_000)

    assert cache_points(rules, system=LONG_PROMPT, messages=session(30), tools=[TOOL]) == []


def test_at_most_four_points_the_longest_prefixes_kept() -> None:
    rules = CacheRules(min_tokens=1)
    messages = session(5)

    points = cache_points(rules, system="Be brief.", messages=messages, tools=[TOOL])

    assert len(points) == MAX_CACHE_POINTS == 4
    assert points[-1].index == len(messages) - 1


def test_the_simulated_cache_writes_on_the_first_call_and_reads_on_the_next() -> None:
    clock = Clock()
    cache = SimulatedPromptCache(CacheRules(min_tokens=256), clock=clock)
    messages = [Message.user("What is the policy?")]
    total = estimate_input_tokens(LONG_PROMPT, messages, [TOOL])

    first = cache.account(total, system=LONG_PROMPT, messages=messages, tools=[TOOL])
    second = cache.account(total, system=LONG_PROMPT, messages=messages, tools=[TOOL])

    assert first.cache_read_tokens == 0 and first.cache_write_tokens > 0
    assert second.cache_read_tokens == first.cache_write_tokens and second.cache_write_tokens == 0
    assert first.all_input_tokens == second.all_input_tokens == total


def test_a_cached_prefix_expires_its_ttl_after_its_last_use() -> None:
    clock = Clock()
    cache = SimulatedPromptCache(CacheRules(min_tokens=256, ttl_seconds=300), clock=clock)
    messages = [Message.user("What is the policy?")]
    total = estimate_input_tokens(LONG_PROMPT, messages, [TOOL])
    cache.account(total, system=LONG_PROMPT, messages=messages, tools=[TOOL])

    clock.now += 299  # a hit renews the TTL
    assert cache.account(total, system=LONG_PROMPT, messages=messages, tools=[TOOL]).cache_read_tokens > 0
    clock.now += 299
    assert cache.account(total, system=LONG_PROMPT, messages=messages, tools=[TOOL]).cache_read_tokens > 0
    clock.now += 301
    expired = cache.account(total, system=LONG_PROMPT, messages=messages, tools=[TOOL])
    assert expired.cache_read_tokens == 0 and expired.cache_write_tokens > 0


def test_a_changed_system_prompt_misses_past_the_tools() -> None:
    cache = SimulatedPromptCache(CacheRules(min_tokens=64), clock=Clock())
    messages = [Message.user("hi")]
    cache.account(estimate_input_tokens(LONG_PROMPT, messages, [TOOL]), system=LONG_PROMPT, messages=messages, tools=[TOOL])

    changed = "Be terse. " + LONG_PROMPT
    usage = cache.account(estimate_input_tokens(changed, messages, [TOOL]), system=changed, messages=messages, tools=[TOOL])

    tools_only = cache_points(CacheRules(min_tokens=64), system="", messages=[], tools=[TOOL])[0].prefix_tokens
    assert usage.cache_read_tokens == tools_only


def test_a_multi_step_run_on_the_local_model_reads_what_its_first_step_wrote() -> None:
    @tool(local_patterns=[r"order (?P<order_id>\d+)"])
    def lookup(order_id: str) -> dict:
        """Look an order up by its id."""
        return {"order_id": order_id, "status": "shipped"}

    cached = Agent(model=LocalModel(prompt_cache=SimulatedPromptCache(clock=Clock())), tools=[lookup], system_prompt=LONG_PROMPT)
    plain = Agent(model=LocalModel(), tools=[lookup], system_prompt=LONG_PROMPT)

    with_cache = cached.run("Where is order 42?")
    without = plain.run("Where is order 42?")

    assert with_cache.steps == without.steps == 2
    assert with_cache.usage.cache_write_tokens > 0 and with_cache.usage.cache_read_tokens > 0
    assert with_cache.usage.total_tokens == without.usage.total_tokens  # the same tokens, split differently
    assert without.usage.cache_read_tokens == without.usage.cache_write_tokens == 0


def test_the_provider_factory_gives_the_local_model_its_simulated_cache_unless_caching_is_off() -> None:
    assert isinstance(ProviderFactory().get("local").prompt_cache, SimulatedPromptCache)  # type: ignore[attr-defined]
    assert ProviderFactory(prompt_caching=False).get("local").prompt_cache is None  # type: ignore[attr-defined]


def test_usage_adds_and_totals_every_kind_of_token() -> None:
    a = Usage(input_tokens=10, output_tokens=5, cache_read_tokens=100, cache_write_tokens=20)
    b = Usage(input_tokens=1, output_tokens=2, cache_read_tokens=3, cache_write_tokens=4)

    assert (a + b) == Usage(input_tokens=11, output_tokens=7, cache_read_tokens=103, cache_write_tokens=24)
    assert a.total_tokens == 135 and a.all_input_tokens == 130


def test_cached_tokens_are_priced_apart_and_as_input_when_the_price_has_no_cache_rates() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000, cache_write_tokens=1_000_000)
    priced = ModelPrice(input_per_million=3.0, output_per_million=15.0, cache_read_per_million=0.3, cache_write_per_million=3.75)
    plain = ModelPrice(input_per_million=3.0, output_per_million=15.0)

    assert priced.cost(usage) == pytest.approx(3.0 + 15.0 + 0.3 + 3.75)
    assert plain.cost(usage) == pytest.approx(3.0 * 3 + 15.0)
    assert PriceTable().cost("bedrock:us.anthropic.claude-sonnet-4-20250514-v1:0", usage) == pytest.approx(22.05)


def test_the_runtime_s_built_in_prices_match_the_planner_s_us_east_1_table() -> None:
    planner = json.loads(PRICES_JSON.read_text())["regions"]["us-east-1"]["models"]
    one_million = {"input": Usage(input_tokens=10**6), "output": Usage(output_tokens=10**6)}
    one_million |= {"cache_read": Usage(cache_read_tokens=10**6), "cache_write": Usage(cache_write_tokens=10**6)}

    compared = [spec for spec in DEFAULT_PRICES if spec in planner]
    for spec in compared:
        listed = planner[spec]
        for kind, usage in one_million.items():
            # Where the planner lists no cache rate, the model has no prompt cache: its tokens would be plain input.
            expected = listed.get(f"{kind}_per_million", listed["input_per_million"])
            assert DEFAULT_PRICES[spec].cost(usage) == pytest.approx(expected), (spec, kind)
    assert len(compared) >= 8


def test_every_model_that_caches_and_has_a_built_in_price_has_cache_prices_too() -> None:
    priced = {family: PriceTable().price_for(f"bedrock:{family}-v1:0") for family in BEDROCK_CACHE_RULES}
    known = {family: price for family, price in priced.items() if price is not None}

    assert set(known) >= {"amazon.nova-micro", "amazon.nova-lite", "amazon.nova-pro", "anthropic.claude-sonnet-4"}
    for family, price in known.items():
        assert price.cache_read_per_million is not None and price.cache_write_per_million is not None, family


def test_a_session_s_next_turn_reads_what_the_last_turn_cached_though_its_points_moved_on() -> None:
    clock = Clock()
    agent = Agent(model=LocalModel(prompt_cache=SimulatedPromptCache(clock=clock)), system_prompt=LONG_PROMPT)
    history: list[Message] = []
    reads, writes = [], []
    for turn in range(4):
        result = agent.run(f"My note is about the delivery window of chair number {turn}.", history=history)
        history += result.new_messages
        reads.append(result.usage.cache_read_tokens)
        writes.append(result.usage.cache_write_tokens)
        clock.now += 30

    # Each turn reads everything the turn before it sent (Bedrock looks back from a cache point for a prefix it holds).
    assert reads[0] == 0 and reads[1] < reads[2] < reads[3]
    assert reads[1] == writes[0]  # all the first turn wrote
    assert reads[2] == writes[0] + writes[1]
