"""Prompt caching: where a request's cache points go, and the local model's simulated cache.

An agent re-sends the same tool definitions and system prompt on every model call, and each step of a run re-sends
the whole transcript so far. A *cache point* marks the end of a prefix the provider may keep for a few minutes: a
later request with the same prefix reads it at a fraction of the input price (Bedrock reports these tokens as
``cacheReadInputTokens``), and the request that stores it pays the write price (``cacheWriteInputTokens``).

:func:`cache_points` places at most :data:`MAX_CACHE_POINTS` of them, in the order a prompt's prefix is read (tools,
then the system prompt, then the messages):

1. after the tool definitions (for models whose cache accepts tools);
2. after the system prompt;
3. after the stable part of the history: the message before the latest user request (a session's earlier turns);
4. after the last message, so that the run's next step reads everything this one sent.

A point is placed only where its prefix holds at least the model's minimum (:attr:`CacheRules.min_tokens`): Bedrock
ignores a shorter one, and the accounting would then claim a write that never happened. Models without prompt
caching (:func:`rules_for` gives ``None``) get no point at all.

:class:`SimulatedPromptCache` gives the local model the same accounting, deterministically: it keeps each prefix it
was asked to cache, with the clock's time, for :attr:`CacheRules.ttl_seconds` after its last use. Its figures are
*simulated*: the local model has no real cache, and its token counts are estimates (:mod:`models.tokens`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from agentrail_runtime.clock import Clock, now
from agentrail_runtime.contract import INFERENCE_PROFILE_PREFIXES
from agentrail_runtime.models.base import Message, ToolSpec, Usage
from agentrail_runtime.models.tokens import by_identity, count_tokens
from agentrail_runtime.models.tokens import tools_json as specs_json

#: Bedrock accepts at most this many cache points in one request.
MAX_CACHE_POINTS = 4

CacheField = Literal["tools", "system", "messages"]


@dataclass(frozen=True)
class CacheRules:
    """How a model caches prompts.

    Attributes
    ----------
    min_tokens:
        The shortest prefix a cache point may end (Bedrock's minimum tokens per cache checkpoint).
    fields:
        Where the model accepts cache points.
    ttl_seconds:
        How long a cached prefix lives after its last use (Bedrock's default TTL is five minutes).
    """

    min_tokens: int
    fields: frozenset[CacheField] = frozenset({"tools", "system", "messages"})
    ttl_seconds: int = 300


_CLAUDE: frozenset[CacheField] = frozenset({"tools", "system", "messages"})
_NOVA: frozenset[CacheField] = frozenset({"system", "messages"})

#: Bedrock's prompt-caching limits per model family (longest matching prefix of the model id wins), as the Bedrock
#: user guide's "Supported models, Regions, and limits" lists them.
BEDROCK_CACHE_RULES: Mapping[str, CacheRules] = {
    "anthropic.claude-3-7-sonnet": CacheRules(min_tokens=1024, fields=_CLAUDE),
    "anthropic.claude-3-5-haiku": CacheRules(min_tokens=2048, fields=_CLAUDE),
    "anthropic.claude-sonnet-4": CacheRules(min_tokens=1024, fields=_CLAUDE),
    "anthropic.claude-opus-4": CacheRules(min_tokens=1024, fields=_CLAUDE),
    "anthropic.claude-haiku-4-5": CacheRules(min_tokens=4096, fields=_CLAUDE),
    "amazon.nova-micro": CacheRules(min_tokens=1000, fields=_NOVA),
    "amazon.nova-lite": CacheRules(min_tokens=1000, fields=_NOVA),
    "amazon.nova-pro": CacheRules(min_tokens=1000, fields=_NOVA),
    "amazon.nova-premier": CacheRules(min_tokens=1000, fields=_NOVA),
}
_RULE_KEYS = sorted(BEDROCK_CACHE_RULES, key=len, reverse=True)

#: What the local model simulates: every field, and a minimum low enough that the demo agent's tools and prompt
#: (about 575 tokens) are cached, so local mode shows the effect.
LOCAL_CACHE_RULES = CacheRules(min_tokens=512)


def foundation_model_id(model_id: str) -> str:
    """``model_id`` without an inference profile's geography prefix (``us.amazon.nova-lite-v1:0`` ->
    ``amazon.nova-lite-v1:0``): what price and cache tables are keyed by."""
    for prefix in INFERENCE_PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            return model_id[len(prefix) :]
    return model_id


def rules_for(model_id: str) -> CacheRules | None:
    """The prompt-caching rules of a Bedrock model id (a foundation model or an inference profile); ``None`` when the
    model does not cache prompts."""
    base = foundation_model_id(model_id)
    return next((BEDROCK_CACHE_RULES[key] for key in _RULE_KEYS if base.startswith(key)), None)


@dataclass(frozen=True)
class CachePoint:
    """Where one cache point goes and how long the prefix it ends is.

    ``field`` is where Bedrock takes it; for ``messages``, ``index`` is the message it is appended to.
    """

    field: CacheField
    prefix_tokens: int
    index: int = -1


@dataclass(frozen=True)
class _Prompt:
    """A request serialized once: its tools' and each message's JSON (what the token estimates and the simulated
    cache's prefix digests read)."""

    tools_json: str
    system: str
    messages_json: tuple[str, ...]

    @classmethod
    def of(cls, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> _Prompt:
        return cls(specs_json(tools) if tools else "", system, tuple(map(_message_json, messages)))


@by_identity(256)
def _message_json(message: Message) -> str:
    return message.model_dump_json()


def _latest_request(messages: Sequence[Message]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user" and messages[index].text:
            return index
    return None


def _candidates(rules: CacheRules, prompt: _Prompt, messages: Sequence[Message]) -> tuple[list[CachePoint], list[int]]:
    """Every place a cache point could go (before the minimum is applied), and the prefix tokens at the end of each
    message."""
    candidates: list[CachePoint] = []
    prefix = 0
    if prompt.tools_json and "tools" in rules.fields:
        prefix += count_tokens(prompt.tools_json)
        candidates.append(CachePoint("tools", prefix))
    if prompt.system and "system" in rules.fields:
        prefix += count_tokens(prompt.system)
        candidates.append(CachePoint("system", prefix))
    ends: list[int] = []
    if "messages" in rules.fields and messages:
        request = _latest_request(messages)
        stable = request - 1 if request is not None else -1
        for index, message_json in enumerate(prompt.messages_json):
            prefix += count_tokens(message_json)
            ends.append(prefix)
            if index == stable or index == len(messages) - 1:
                candidates.append(CachePoint("messages", prefix, index))
    return candidates, ends


def _eligible(rules: CacheRules, candidates: list[CachePoint]) -> list[CachePoint]:
    return [point for point in candidates if point.prefix_tokens >= rules.min_tokens][-MAX_CACHE_POINTS:]


def cache_points(
    rules: CacheRules | None, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
) -> list[CachePoint]:
    """The cache points of one request under ``rules`` (none when ``rules`` is ``None``), in prefix order."""
    if rules is None:
        return []
    candidates, _ = _candidates(rules, _Prompt.of(system=system, messages=messages, tools=tools), messages)
    return _eligible(rules, candidates)


@lru_cache(maxsize=64)
def _stable_prefix(tools_json: str, system: str) -> tuple[str, str, Any]:
    """The digests of the prefix an agent sends with every call (its tools, then its system prompt), and the running
    SHA-256 after them (copy it before an update): the same for each call of a run, and of every run of the agent."""
    running = hashlib.sha256(tools_json.encode())
    tools_key = running.hexdigest()
    running.update(b"\x00" + system.encode())
    return tools_key, running.hexdigest(), running


def _prefix_keys(prompt: _Prompt, points: Sequence[CachePoint]) -> dict[CachePoint, str]:
    """A digest of the prefix each of ``points`` ends (everything sent before it), in one pass over the prompt: a
    running SHA-256, copied at each point."""
    wanted_messages = {p.index: p for p in points if p.field == "messages"}
    keys: dict[CachePoint, str] = {}
    tools_key, system_key, after_system = _stable_prefix(prompt.tools_json, prompt.system)
    for point in points:
        if point.field == "tools":
            keys[point] = tools_key
        elif point.field == "system":
            keys[point] = system_key
    running = after_system.copy()
    last = max(wanted_messages, default=-1)
    for index, message_json in enumerate(prompt.messages_json[: last + 1]):
        running.update(b"\x00" + message_json.encode())
        if index in wanted_messages:
            keys[wanted_messages[index]] = running.copy().hexdigest()
    return keys


#: How many messages before a cache point Bedrock looks back for a prefix it holds (Claude's lookback is about 20
#: content blocks): a session's next turn reads what the last one cached, though its points moved on.
LOOKBACK_MESSAGES = 20


class SimulatedPromptCache:
    """The local model's prompt cache: which prefixes were stored, and until when (thread-safe).

    It splits a request's input the way Bedrock reports it: tokens read from the longest cached prefix (at one of
    the request's cache points, or up to :data:`LOOKBACK_MESSAGES` messages before one), tokens written by the
    request's later cache points, and the rest as plain input. A hit renews the prefix's TTL. The request is
    serialized once and its prefixes digested in one pass, so the accounting grows with the prompt, not with the
    number of points times the prompt.
    """

    def __init__(self, rules: CacheRules = LOCAL_CACHE_RULES, *, clock: Clock = now) -> None:
        self.rules = rules
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def account(self, input_tokens: int, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Usage:
        """The input of one request (``input_tokens`` in all) split into plain, cache-read and cache-write tokens;
        the request's prefixes are stored as it goes."""
        prompt = _Prompt.of(system=system, messages=messages, tools=tools)
        candidates, ends = _candidates(self.rules, prompt, messages)
        points = _eligible(self.rules, candidates)
        if not points:
            return Usage(input_tokens=input_tokens)
        looked_at = list(points)
        for point in points:
            if point.field == "messages":
                earlier = range(max(0, point.index - LOOKBACK_MESSAGES), point.index)
                looked_at += [CachePoint("messages", ends[i], i) for i in earlier if ends[i] >= self.rules.min_tokens]
        keys = _prefix_keys(prompt, looked_at)
        at = self._clock()
        with self._lock:
            hits = [p.prefix_tokens for p in looked_at if self._expiry.get(keys[p], 0.0) > at]
            read = max(hits, default=0)
            written = max(0, points[-1].prefix_tokens - read)
            for point in [*points, *(p for p in looked_at if p.prefix_tokens == read)]:
                self._expiry[keys[point]] = at + self.rules.ttl_seconds
            if len(self._expiry) > _PRUNE_AT:
                self._expiry = {key: until for key, until in self._expiry.items() if until > at}
        read, written = min(read, input_tokens), min(written, max(0, input_tokens - read))
        return Usage(input_tokens=input_tokens - read - written, cache_read_tokens=read, cache_write_tokens=written)


#: The simulated cache drops its expired prefixes when it holds more than this many (not on every request).
_PRUNE_AT = 4096


__all__ = [
    "BEDROCK_CACHE_RULES",
    "LOCAL_CACHE_RULES",
    "LOOKBACK_MESSAGES",
    "MAX_CACHE_POINTS",
    "CachePoint",
    "CacheRules",
    "SimulatedPromptCache",
    "cache_points",
    "foundation_model_id",
    "rules_for",
]
