"""ResponseCache: the DynamoDB table of a stateless agent's cached answers, and the check that its agent may use one."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from agentrail_constructs.agent_version import warn_unchecked
from agentrail_constructs.contract import contract
from agentrail_constructs.function import AgentFunction
from agentrail_constructs.security import baseline_for
from agentrail_constructs.storage import grant_index_query, grant_table, keys_only_index, secure_table


@dataclass(frozen=True, kw_only=True)
class ResponseCacheOptions:
    """A response cache for a stateless agent whose answers depend only on the question: a repeated question (same
    agent version, model and normalized message; same caller too when a tool reads the caller) is answered from
    DynamoDB, with zero tokens and ``"cache": "hit"``. Every tool of the agent must be declared ``cacheable=True``,
    or the synth fails naming the tool."""

    ttl: Duration = field(default_factory=lambda: Duration.hours(1))
    """How long a cached answer is served (DynamoDB TTL), from 1 minute to 30 days. Default: 1 hour."""
    encryption_key: kms.IKey | None = None
    """Customer managed key of the cache table. Default: the stack's SecurityBaseline key if any, else an AWS managed
    key."""
    removal_policy: RemovalPolicy = RemovalPolicy.DESTROY
    """Default: DESTROY (a cache holds nothing that the agent cannot answer again)."""

    def validate(self) -> None:
        """Fail at synth with a message that names the fix."""
        seconds = self.ttl.to_seconds()
        low, high = contract.RESPONSE_CACHE_MIN_TTL_SECONDS, contract.RESPONSE_CACHE_MAX_TTL_SECONDS
        if not low <= seconds <= high:
            raise ValueError(
                f"response cache ttl must be between 1 minute and 30 days ({low} to {high} seconds), got {int(seconds)} seconds"
            )


class ResponseCache(Construct):
    """The DynamoDB table of a stateless agent's cached answers (on demand, encrypted, point-in-time recovery, TTL on
    ``expires_at``, and a sparse keys-only index ``by_owner`` on ``owner``: the caller of an answer keyed per caller,
    how ``POST /erase`` finds a principal's answers).

    Call :meth:`serve` for the function that answers from it: the synth fails, in one sentence naming the agent and
    the tool, when the function's agent is not cacheable (a tool not declared ``cacheable=True``, such as one with
    side effects); the function gets ``AGENT_RESPONSE_CACHE_TABLE``, ``AGENT_RESPONSE_CACHE_TTL_SECONDS``,
    ``dynamodb:GetItem``, ``dynamodb:PutItem`` and ``dynamodb:DeleteItem`` on the table and ``dynamodb:Query`` on its
    ``by_owner`` index (erasing a principal's answers when it serves ``POST /erase``), nothing else.

    Parameters
    ----------
    options:
        See :class:`ResponseCacheOptions`. Default: ``ResponseCacheOptions()`` (1 hour).
    existing_table:
        Your cache table (partition key ``pk``, a string; TTL on ``expires_at``; a keys-only index ``by_owner`` on the
        string ``owner`` for erasure), e.g. shared by several agents: keys hold the agent version, so agents never
        read each other's answers. Default: a new table.

    Attributes
    ----------
    table, options, functions
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: ResponseCacheOptions | None = None,
        existing_table: dynamodb.ITable | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options = options or ResponseCacheOptions()
        options.validate()
        if existing_table is not None:
            self.table: dynamodb.ITable = existing_table
        else:
            baseline = baseline_for(self)
            table = secure_table(
                self,
                "Table",
                partition_key=contract.RESPONSE_CACHE_PARTITION_KEY,
                time_to_live_attribute=contract.RESPONSE_CACHE_TTL_ATTRIBUTE,
                encryption_key=options.encryption_key or (baseline.key if baseline is not None else None),
                removal_policy=options.removal_policy,
            )
            keys_only_index(table, contract.RESPONSE_CACHE_OWNER_INDEX, contract.RESPONSE_CACHE_OWNER_ATTRIBUTE)
            self.table = table
        self.functions: list[AgentFunction] = []

    def serve(self, agent_function: AgentFunction) -> None:
        """Have ``agent_function`` (the stateless handler's) answer repeated questions from this cache.

        Raises
        ------
        ValueError
            Its agent is not cacheable: one sentence naming the agent and the tool.
        """
        if agent_function in self.functions:
            return
        self._check_cacheable(agent_function)
        agent_function.add_environment(contract.RESPONSE_CACHE_TABLE_ENV, self.table.table_name)
        agent_function.add_environment(contract.RESPONSE_CACHE_TTL_ENV, str(int(self.options.ttl.to_seconds())))
        grant_table(self.table, agent_function.function, contract.RESPONSE_CACHE_TABLE_ACTIONS)
        # It serves POST /erase too: the index query and DeleteItem find and delete a principal's answers.
        grant_index_query(self.table, agent_function.function, contract.RESPONSE_CACHE_OWNER_INDEX)
        grant_table(self.table, agent_function.function, contract.RESPONSE_CACHE_ERASE_TABLE_ACTIONS)
        agent_function.calls_service("dynamodb")
        if self.table.encryption_key is not None:
            agent_function.acknowledge_key_grants()
        self.functions.append(agent_function)

    def _check_cacheable(self, agent_function: AgentFunction) -> None:
        answer = agent_function.version_answer()
        eligibility = answer.response_cache if answer is not None else None
        if eligibility is None:
            # The runtime could not load the definition here: the function's cold start refuses a cache it may not use.
            warn_unchecked(
                self,
                "agentrail:response-cache-unchecked",
                agent_function.node.path,
                "may use a response cache",
                "its cold start refuses one if a tool is not cacheable",
            )
            return
        if not eligibility.get("cacheable"):
            raise ValueError(f"{eligibility.get('reason')}; drop the response cache of {agent_function.node.path}")


__all__ = ["ResponseCache", "ResponseCacheOptions"]
