"""TaskTable: task records, the results bucket and the idempotency table that every task pattern shares.

Its own module so the workflows that use it (LongTaskWorkflow, ApprovalWorkflow) and the AsyncAgent that
composes them import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from agentrail_constructs.contract import contract
from agentrail_constructs.function import AgentFunction
from agentrail_constructs.nag import logical_id
from agentrail_constructs.renames import renamed_keywords
from agentrail_constructs.security import baseline_for
from agentrail_constructs.storage import (
    IDEMPOTENCY_TABLE_ACTIONS,
    TASK_TABLE_ACTIONS,
    grant_index_query,
    grant_table,
    keys_only_index,
    private_bucket,
    secure_table,
)

#: The keys-only indexes erasure queries (contract.TASK_OWNER_INDEX and TASK_PARENT_INDEX): tasks by owner,
#: and subtasks and run checkpoints by their task.
OWNER_INDEX = contract.TASK_OWNER_INDEX
PARENT_INDEX = contract.TASK_PARENT_INDEX
#: Tasks by owner, newest first (contract.TASK_OWNER_CREATED_INDEX): the console's run list and cost chart.
OWNER_CREATED_INDEX = contract.TASK_OWNER_CREATED_INDEX
#: Tasks waiting for the batch lane, oldest first (contract.TASK_BATCH_INDEX): added by :meth:`TaskTable.add_batch_index`.
BATCH_INDEX = contract.TASK_BATCH_INDEX


@dataclass(frozen=True, kw_only=True)
class TaskTableOptions:
    encryption_key: kms.IKey | None = None
    """A customer managed key for the tables, the bucket, the queues, the secrets and the log groups. Default: the
    stack's SecurityBaseline key if any, else AWS managed encryption."""
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    """Default: RETAIN."""
    retention: Duration = field(default_factory=lambda: Duration.days(30))
    """How long a finished task's record is kept (TTL). Default: 30 days."""


class TaskTable(Construct):
    """Task records (partition key ``task_id``, TTL ``expires_at``), an encrypted bucket for large
    results and checkpoints, and the Powertools idempotency table.

    Parameters
    ----------
    table_options:
        Default: ``TaskTableOptions()``.

    Attributes
    ----------
    table, results_bucket, idempotency_table, encryption_key, retention_days
    """

    @renamed_keywords(options="table_options")
    def __init__(self, scope: Construct, construct_id: str, *, table_options: TaskTableOptions | None = None) -> None:
        super().__init__(scope, construct_id)
        self.options = options = table_options or TaskTableOptions()
        baseline = baseline_for(self)
        self.encryption_key = options.encryption_key or (baseline.key if baseline is not None else None)
        self.retention_days = max(1, int(options.retention.to_days()))
        self.table = secure_table(
            self,
            "Table",
            partition_key="task_id",
            time_to_live_attribute="expires_at",
            encryption_key=self.encryption_key,
            removal_policy=options.removal_policy,
        )
        keys_only_index(self.table, OWNER_INDEX, "owner")
        keys_only_index(self.table, PARENT_INDEX, "parent")
        keys_only_index(self.table, OWNER_CREATED_INDEX, "owner", number_sort_key="created_at")
        self._batch_index = False
        # Idempotency records only matter for a day: nothing to keep when the stack goes.
        self.idempotency_table = secure_table(
            self,
            "IdempotencyTable",
            partition_key="id",
            time_to_live_attribute="expiration",
            encryption_key=self.encryption_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.results_bucket = private_bucket(
            self,
            "ResultsBucket",
            encryption_key=self.encryption_key,
            access_log_bucket=baseline.access_logs_destination() if baseline is not None else None,
            removal_policy=options.removal_policy,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(self.retention_days + 1))],
            access_log_reason=(
                "Only the task functions' roles read and write this bucket, behind an API that logs every request; "
                "enable CloudTrail S3 data events for object-level audit if you need it."
            ),
        )

    def grant_tasks(self, agent_function: AgentFunction, *, event_bus: events.IEventBus | None = None) -> None:
        """Read/write tasks and results, use the idempotency table, and know where they are.

        With ``event_bus``, also put task events (``Task Finished``) on that bus. Default: no bus.
        """
        fn = agent_function.function
        grant_table(self.table, fn, TASK_TABLE_ACTIONS)
        grant_table(self.idempotency_table, fn, IDEMPOTENCY_TABLE_ACTIONS)
        bucket = self.results_bucket
        iam.Grant.add_to_principal(
            grantee=fn, actions=["s3:PutObject", "s3:GetObject"], resource_arns=[bucket.arn_for_objects("*")]
        )
        if bucket.encryption_key is not None:
            bucket.encryption_key.grant_encrypt_decrypt(fn)
        agent_function.acknowledge_policy(
            f"IAM5[Resource::<{logical_id(bucket)}.Arn>/*]",
            "Results and checkpoints are objects named by task id, unknown in advance; only Put/GetObject on this "
            "one bucket are allowed.",
        )
        agent_function.add_environment("AGENT_TASK_TABLE", self.table.table_name)
        agent_function.add_environment("AGENT_TASK_IDEMPOTENCY_TABLE", self.idempotency_table.table_name)
        agent_function.add_environment("AGENT_TASK_BUCKET", bucket.bucket_name)
        agent_function.add_environment("AGENT_TASK_RETENTION_DAYS", str(self.retention_days))
        agent_function.add_health_check("dynamodb", self.table.table_name)
        if self.encryption_key is not None:
            agent_function.encrypt_logs(self.encryption_key)
            agent_function.acknowledge_key_grants()
        if event_bus is not None:
            event_bus.grant_put_events_to(fn)
            agent_function.calls_service("events")
            agent_function.add_environment("AGENT_TASK_EVENT_BUS", event_bus.event_bus_name)

    def add_batch_index(self) -> None:
        """Add the sparse keys-only index ``by_batch`` (``batch_queue``, sorted by the number ``created_at``) where the
        batch lane finds waiting tasks, oldest first (contract.TASK_BATCH_INDEX). Idempotent."""
        if self._batch_index:
            return
        keys_only_index(self.table, BATCH_INDEX, contract.TASK_BATCH_ATTRIBUTE, number_sort_key="created_at")
        self._batch_index = True

    def grant_console(self, agent_function: AgentFunction) -> None:
        """Let the API function (which already has :meth:`grant_tasks`) serve the operator console's reads: Query on
        the ``by_owner_created`` index (a caller's runs, newest first) and the ``by_parent`` index (a task's runs and
        subtasks), and BatchGetItem of the tasks those name."""
        fn = agent_function.function
        grant_index_query(self.table, fn, OWNER_CREATED_INDEX, PARENT_INDEX)
        grant_table(self.table, fn, ("dynamodb:BatchGetItem",))

    def grant_erasure(self, agent_function: AgentFunction) -> None:
        """Let ``agent_function`` (which already has :meth:`grant_tasks`) erase a principal's tasks: Query on the
        ``by_owner`` and ``by_parent`` indexes, DeleteItem and BatchWriteItem (subtasks go in batches) on the task
        table, and ListBucket and DeleteObject on the results bucket (large results and checkpoints are named by task
        id, unknown in advance)."""
        fn = agent_function.function
        grant_index_query(self.table, fn, OWNER_INDEX, PARENT_INDEX)
        grant_table(self.table, fn, ("dynamodb:DeleteItem", "dynamodb:BatchWriteItem"))
        bucket = self.results_bucket
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:DeleteObject"], resource_arns=[bucket.arn_for_objects("*")])
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:ListBucket"], resource_arns=[bucket.bucket_arn])


__all__ = ["BATCH_INDEX", "OWNER_CREATED_INDEX", "OWNER_INDEX", "PARENT_INDEX", "TaskTable", "TaskTableOptions"]
