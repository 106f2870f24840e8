"""Shadow deployment of an agent function: a ``shadow`` alias on the candidate version, the queue the live function
copies a sample of its requests to, the worker that replays them on the candidate, and the comparison table."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import Annotations, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from agentrail_constructs.contract import contract
from agentrail_constructs.queues import QueueWithDeadLetters, visibility_timeout_for
from agentrail_constructs.storage import grant_index_query, grant_table, keys_only_index, secure_table

#: Handlers (folders under handlers/agentrail_handlers) whose function answers the shadow worker's invocations.
SHADOW_HANDLERS = frozenset({"stateless", "sessions"})
#: The handler folder of the shadow worker.
SHADOW_WORKER_HANDLER = "shadow_worker"


@dataclass(frozen=True, kw_only=True)
class ShadowOptions:
    """Run the candidate version of an agent function in shadow on a sample of live traffic: the live function copies
    ``percent`` of its requests, with their answers, to a queue before it returns; a worker replays each on the
    candidate (the ``shadow`` alias) with tools that have side effects in dry-run; both answers go to a comparison
    table that ``agentrail shadow report`` reads. Nothing of a shadow run reaches a user."""

    percent: float
    """Share of live requests copied to the shadow, in (0, 100]. Required."""
    live_version: str | None = None
    """Hold ``live`` on this published version number while ``shadow`` takes each new version. Default: none,
    ``live`` follows the new version too (through the canary when there is one: during it, ``live`` still serves the
    old version to most traffic while ``shadow`` runs the new one on the sample)."""
    retention: Duration = field(default_factory=lambda: Duration.days(14))
    """How long a comparison is kept (its TTL). Default: 14 days."""
    max_receive_count: int = 3
    """Deliveries of a shadow message before it moves to the dead-letter queue. Default: 3."""
    max_concurrency: int = 2
    """Concurrent worker invocations (the event source's maximum concurrency, at least 2): caps what the shadow can
    spend on the candidate at once. Default: 2."""
    encryption_key: kms.IKey | None = None
    """A customer managed key for the queues and the comparison table (and the worker's logs). Default: the key of
    the function's logs (its ``log_encryption_key``, else the stack's SecurityBaseline key) if any, else SQS managed
    and AWS managed encryption."""
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    """Of the comparison table. Default: RETAIN."""

    def validate(self) -> None:
        """Fail at synth with a message that names the fix."""
        if not 0 < self.percent <= 100:
            raise ValueError(f"shadow_options.percent must be above 0 and at most 100, got {self.percent}")
        if self.live_version is not None and not self.live_version.isdigit():
            raise ValueError(
                f"shadow_options.live_version must be a published version number such as '7', got {self.live_version!r}"
            )
        if not 1 <= self.max_receive_count <= 1000:
            raise ValueError("shadow_options.max_receive_count must be between 1 and 1000")
        if not 2 <= self.max_concurrency <= 1000:
            raise ValueError("shadow_options.max_concurrency must be between 2 and 1000 (the SQS event source's range)")
        if self.retention.to_hours() < 24:
            raise ValueError("shadow_options.retention must be at least 1 day")


def shadow_options_for(scope: Construct, chosen: ShadowOptions | None, handler: str) -> ShadowOptions | None:
    """What a function shadows with: ``chosen``, else its stack's (a PatternStack's ``shadow_options``), when its
    handler serves shadow runs. A pattern passes its function options on to its workers too: on a handler that serves
    no shadow runs, ``chosen`` is dropped with a synth warning that names the handlers that do."""
    if chosen is not None:
        if handler not in SHADOW_HANDLERS:
            Annotations.of(scope).add_warning_v2(
                "agentrail:shadow-unsupported",
                f"shadow_options: the {handler!r} handler serves no shadow runs, so this function has no shadow (those "
                f"that do: {', '.join(sorted(SHADOW_HANDLERS))})",
            )
            return None
        return chosen
    stack_options = getattr(Stack.of(scope), "shadow_options", None)
    return stack_options if isinstance(stack_options, ShadowOptions) and handler in SHADOW_HANDLERS else None


class ShadowDeployment(Construct):
    """The shadow of one agent function.

    Parameters
    ----------
    function:
        The agent function (its handler answers the worker's shadow invocations).
    candidate:
        The version the ``shadow`` alias points at (the newest).
    worker:
        The shadow worker function (handler ``shadow_worker``), built by the caller with the agent function's
        layers and defaults.
    options:
        See :class:`ShadowOptions`.
    encryption_key:
        The key of the queues and the table (the options', else the stack's baseline key), or None.

    Attributes
    ----------
    alias (``shadow``), queue, dead_letter_queue, table, worker
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        candidate: lambda_.IVersion,
        worker: lambda_.Function,
        options: ShadowOptions,
        encryption_key: kms.IKey | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.worker = worker
        self.alias = lambda_.Alias(self, "ShadowAlias", alias_name="shadow", version=candidate)
        queues = QueueWithDeadLetters(
            self,
            "Queue",
            # A worker built without a timeout has Lambda's default, 3 seconds.
            visibility_timeout=visibility_timeout_for(worker.timeout or Duration.seconds(3)),
            max_receive_count=options.max_receive_count,
            encryption_key=encryption_key,
        )
        self.queue = queues.queue
        self.dead_letter_queue = queues.dead_letter_queue
        self.table: dynamodb.Table = secure_table(
            self,
            "Comparisons",
            partition_key=contract.SHADOW_PARTITION_KEY,
            time_to_live_attribute=contract.SHADOW_TTL_ATTRIBUTE,
            encryption_key=encryption_key,
            removal_policy=options.removal_policy,
        )
        keys_only_index(self.table, contract.SHADOW_OWNER_INDEX, contract.SHADOW_OWNER_ATTRIBUTE)
        # The live function sends, and erases a principal's comparisons when it serves POST /erase (the index query and
        # DeleteItem: it never reads one); the worker only receives, invokes the shadow alias and writes comparisons.
        self.queue.grant_send_messages(function)
        function.add_environment(contract.SHADOW_QUEUE_URL_ENV, self.queue.queue_url)
        function.add_environment(contract.SHADOW_PERCENT_ENV, f"{options.percent:g}")
        function.add_environment(contract.SHADOW_TABLE_ENV, self.table.table_name)
        grant_index_query(self.table, function, contract.SHADOW_OWNER_INDEX)
        grant_table(self.table, function, contract.SHADOW_ERASE_TABLE_ACTIONS)
        self.alias.grant_invoke(worker)
        grant_table(self.table, worker, contract.SHADOW_WORKER_TABLE_ACTIONS)
        worker.add_environment(contract.SHADOW_FUNCTION_ENV, self.alias.function_arn)
        worker.add_environment(contract.SHADOW_TABLE_ENV, self.table.table_name)
        worker.add_environment(contract.SHADOW_RETENTION_DAYS_ENV, str(max(1, int(options.retention.to_hours() // 24))))
        worker.add_event_source(
            sources.SqsEventSource(
                self.queue, batch_size=1, report_batch_item_failures=True, max_concurrency=options.max_concurrency
            )
        )


__all__ = [
    "SHADOW_HANDLERS",
    "SHADOW_WORKER_HANDLER",
    "ShadowDeployment",
    "ShadowOptions",
    "shadow_options_for",
]
