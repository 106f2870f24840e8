"""The response cache of a stateless agent: a repeated question answered from DynamoDB instead of the model.

Opt-in per agent (``ResponseCacheOptions`` on the stateless pattern), and only for an agent whose answers depend on
the input alone: every tool is declared ``cacheable=True`` (:attr:`AgentDefinition.cacheable`), so no side effect is
ever skipped. Sessions, tasks and multi-agent systems never use it.

An answer's key is the SHA-256 of a canonical JSON of the agent version (a new prompt, tool or limit never serves an
answer of the old one), the canonical model, the normalized message (:func:`normalize_message`) and, when a tool reads
the caller (:attr:`AgentDefinition.cache_per_caller`), the caller's principal. The item holds the answer, its status
and model, and what the run that made it used (for the log of a hit): never the question. It lives ``ttl_seconds``
(the TTL attribute ``expires_at``, epoch seconds; an expired item DynamoDB has not deleted yet is ignored). An answer
keyed per caller also names its caller as ``owner``, which the sparse keys-only index ``by_owner`` lists: how
``POST /erase`` finds and deletes a principal's answers (:meth:`ResponseCache.erase_owner`).

A cache is an optimisation: a DynamoDB error on a read or a write is logged and the request is served uncached.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from agentrail_runtime import aws
from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.loop import AgentResult, AgentStatus
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.contract import (
    RESPONSE_CACHE_DEFAULT_TTL_SECONDS,
    RESPONSE_CACHE_OWNER_ATTRIBUTE,
    RESPONSE_CACHE_OWNER_INDEX,
    RESPONSE_CACHE_PARTITION_KEY,
    RESPONSE_CACHE_TTL_ATTRIBUTE,
)
from agentrail_runtime.models.base import Usage
from agentrail_runtime.observability import logger

__all__ = [
    "KEY_SCHEMA_VERSION",
    "MAX_ANSWER_BYTES",
    "CacheOutcome",
    "CachedAnswer",
    "ResponseCache",
    "ResponseCacheRefused",
    "cache_key",
    "normalize_message",
]

#: What a response says of the cache: served from it, or run and (when it could be) stored.
CacheOutcome = Literal["hit", "miss"]
#: Bumped when the key's inputs change shape, so old items are never read as new ones.
KEY_SCHEMA_VERSION = 1
#: An answer longer than this (UTF-8) is not stored: the item stays well below DynamoDB's 400 KB.
MAX_ANSWER_BYTES = 350_000
_WHITESPACE = re.compile(r"\s+")


def normalize_message(message: str) -> str:
    """The message as the key reads it: Unicode NFKC, case folded, whitespace collapsed to one space, stripped.

    ``"  What is  2+2?"`` and ``"what is 2+2?"`` are one question; ``"2+2"`` and ``"2 + 2"`` are two.
    """
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", message).casefold()).strip()


def cache_key(*, agent_version: str, model: str, message: str, principal: str | None = None) -> str:
    """The cache key of ``message`` to ``model`` on ``agent_version`` (and ``principal``, when given): the SHA-256 hex
    digest of their canonical JSON (sorted keys, no spaces), the message normalized by :func:`normalize_message`."""
    inputs: dict[str, Any] = {
        "schema": KEY_SCHEMA_VERSION,
        "agent_version": agent_version,
        "model": model,
        "message": normalize_message(message),
    }
    if principal is not None:
        inputs["principal"] = principal
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCacheRefused(ValueError):
    """A response cache was configured for an agent that is not cacheable (a tool is not ``cacheable=True``)."""


class CachedAnswer(BaseModel):
    """One stored answer, and what the run that made it used (logged on a hit as what the hit saved)."""

    answer: str
    status: AgentStatus
    model: str
    agent_version: str
    steps: int
    usage: Usage
    cost_usd: float | None
    cached_at: float


class ResponseCache:
    """The answers of one stateless agent, in a DynamoDB table (partition key ``pk``, TTL attribute ``expires_at``;
    answers keyed per caller name it as ``owner``, listed by the keys-only index ``by_owner``).

    Parameters
    ----------
    table:
        The table's name (``AGENT_RESPONSE_CACHE_TABLE``).
    ttl_seconds:
        How long an answer is served after it is stored. Default: one hour.
    per_caller:
        Key answers by the caller's principal too (an agent with a tool that reads the caller). Default: False.
    client:
        A DynamoDB client. Default: :func:`agentrail_runtime.aws.client`'s, made on first use.
    clock:
        Seconds since the epoch. Default: :func:`agentrail_runtime.clock.now`.
    """

    client = aws.LazyClient("dynamodb")

    def __init__(
        self,
        table: str,
        *,
        ttl_seconds: int = RESPONSE_CACHE_DEFAULT_TTL_SECONDS,
        per_caller: bool = False,
        client: Any = None,
        clock: Clock = now,
    ) -> None:
        self.table = table
        self.ttl_seconds = ttl_seconds
        self.per_caller = per_caller
        self.client = client
        self._clock = clock

    @classmethod
    def for_agent(
        cls,
        definition: AgentDefinition,
        table: str,
        *,
        ttl_seconds: int = RESPONSE_CACHE_DEFAULT_TTL_SECONDS,
        client: Any = None,
        clock: Clock = now,
    ) -> ResponseCache:
        """The cache of ``definition``'s answers, keyed per caller when one of its tools reads the caller.

        Raises
        ------
        ResponseCacheRefused
            The agent is not cacheable: one sentence naming the agent and its first tool that is not.
        """
        reason = definition.not_cacheable_because
        if reason is not None:
            raise ResponseCacheRefused(reason)
        return cls(table, ttl_seconds=ttl_seconds, per_caller=definition.cache_per_caller, client=client, clock=clock)

    def key(self, *, agent_version: str, model: str, message: str, principal: str | None) -> str:
        """The key of this request (:func:`cache_key`), with ``principal`` only when the cache is per caller."""
        return cache_key(
            agent_version=agent_version, model=model, message=message, principal=principal if self.per_caller else None
        )

    def get(self, key: str) -> CachedAnswer | None:
        """The answer stored under ``key``, unless there is none, it expired, or DynamoDB failed (logged)."""
        try:
            item = self.client.get_item(TableName=self.table, Key={RESPONSE_CACHE_PARTITION_KEY: {"S": key}}).get("Item")
        except (ClientError, BotoCoreError) as error:
            logger.warning(
                "response cache read failed",
                extra={"event": "response_cache_error", "operation": "get", "error": type(error).__name__},
            )
            return None
        if not item or int(item[RESPONSE_CACHE_TTL_ATTRIBUTE]["N"]) <= self._clock():
            return None
        try:
            return CachedAnswer.model_validate_json(item["answer"]["S"])
        except (KeyError, ValueError):  # an item of another shape: a miss, overwritten by this request's answer
            return None

    def put(self, key: str, result: AgentResult, *, agent_version: str, principal: str | None = None) -> bool:
        """Store ``result``'s answer under ``key`` when the run completed with one that fits; whether it was stored
        (a DynamoDB failure is logged, never raised). When the cache is per caller, the item names ``principal`` as
        its ``owner``, so :meth:`erase_owner` finds it; an answer callers share names nobody."""
        if result.status is not AgentStatus.COMPLETED or not result.answer:
            return False
        at = self._clock()
        cached = CachedAnswer(
            answer=result.answer,
            status=result.status,
            model=result.model,
            agent_version=agent_version,
            steps=result.steps,
            usage=result.usage,
            cost_usd=result.cost_usd,
            cached_at=at,
        )
        document = cached.model_dump_json()
        if len(document.encode()) > MAX_ANSWER_BYTES:
            logger.info(
                "response not cached: too large", extra={"event": "response_cache_skipped", "bytes": len(document.encode())}
            )
            return False
        item = {
            RESPONSE_CACHE_PARTITION_KEY: {"S": key},
            "answer": {"S": document},
            "agent_version": {"S": agent_version},
            RESPONSE_CACHE_TTL_ATTRIBUTE: {"N": str(int(at) + self.ttl_seconds)},
        }
        if self.per_caller and principal is not None:
            item[RESPONSE_CACHE_OWNER_ATTRIBUTE] = {"S": principal}
        try:
            self.client.put_item(TableName=self.table, Item=item)
        except (ClientError, BotoCoreError) as error:
            logger.warning(
                "response cache write failed",
                extra={"event": "response_cache_error", "operation": "put", "error": type(error).__name__},
            )
            return False
        return True

    def erase_owner(self, owner: str) -> int:
        """Delete every answer keyed per caller for ``owner`` (listed by the ``by_owner`` index); how many were deleted.

        Unlike a read or a write, a DynamoDB error here is raised: an erasure must not report what it did not do. Each
        delete is conditional on the owner (a key listed by a stale index entry is never someone else's answer), and
        one already gone counts zero, so a second erasure reports 0.
        """
        listed = aws.query_index(self.client, self.table, RESPONSE_CACHE_OWNER_INDEX, RESPONSE_CACHE_OWNER_ATTRIBUTE, owner)
        keys = [{RESPONSE_CACHE_PARTITION_KEY: item[RESPONSE_CACHE_PARTITION_KEY]} for item in listed]
        return aws.delete_owned(self.client, self.table, keys, owner_attribute=RESPONSE_CACHE_OWNER_ATTRIBUTE, owner=owner)
