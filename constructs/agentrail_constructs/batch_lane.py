"""BatchLane: async tasks answered by Bedrock batch inference jobs, flushed and collected by a scheduled function."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from agentrail_constructs.agent_version import warn_unchecked
from agentrail_constructs.contract import contract
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions, bedrock_model_arns
from agentrail_constructs.nag import acknowledge, arn_prefix, default_resource, logical_id, unskip_checkov
from agentrail_constructs.queues import dead_letter_queue
from agentrail_constructs.security import baseline_for
from agentrail_constructs.sources import handler_dir
from agentrail_constructs.storage import grant_index_query, private_bucket
from agentrail_constructs.task_table import TaskTable

#: The handler folder of the lane's function (``handlers/agentrail_handlers/batch_lane``).
BATCH_LANE_HANDLER = "batch_lane"
#: What the schedule sends the lane's function on every tick (the handler reads none of it; logs show where it came from).
SCHEDULE_INPUT = {"source": "agentrail.batch-lane"}
_MAX_FLUSH_SIZE = 50_000
_MAX_AGE_LIMIT = Duration.days(7)


@dataclass(frozen=True, kw_only=True)
class BatchLaneOptions:
    """The batch lane of an AsyncAgent: a task submitted with ``"lane": "batch"`` waits in the task table until a
    scheduled function flushes waiting tasks into a Bedrock batch inference job (about half the on-demand price, answered
    within 24 hours), then collects the job's results. The agent must have no tools, and its model must take batch jobs,
    or the synth fails in one sentence."""

    flush_size: int = 100
    """Tasks per job, and the count of waiting tasks that flushes one at once (1 to 50,000, at least the model's
    minimum records per job). Default: 100."""
    max_age: Duration = field(default_factory=lambda: Duration.hours(1))
    """The longest a task waits before its job is flushed, however few tasks wait (1 minute to 7 days). Default: 1
    hour."""
    check_every: Duration = field(default_factory=lambda: Duration.minutes(5))
    """How often the schedule runs the lane's function: whole minutes, at least 1 minute, at most ``max_age``.
    Default: 5 minutes."""
    below_minimum: contract.BelowMinimum = "on_demand"
    """At ``max_age``, what happens to tasks fewer than the model's minimum records per job: ``on_demand`` sends them
    to the on-demand queue, ``fail`` fails them. Default: ``on_demand``."""
    default_lane: contract.TaskLane = "on_demand"
    """The lane of a task that names none: ``on_demand`` or ``batch``. Default: ``on_demand``."""
    timeout: Duration = field(default_factory=lambda: Duration.minutes(5))
    """The lane function's timeout (1 second to 15 minutes). Default: 5 minutes."""

    def validate(self) -> None:
        """Fail at synth with a message that names the fix."""
        if not 1 <= self.flush_size <= _MAX_FLUSH_SIZE:
            raise ValueError(
                f"batch lane flush_size must be between 1 and {_MAX_FLUSH_SIZE} tasks per job, got {self.flush_size}"
            )
        max_age = self.max_age.to_seconds()
        if not 60 <= max_age <= _MAX_AGE_LIMIT.to_seconds():
            raise ValueError(f"batch lane max_age must be between 1 minute and 7 days, got {int(max_age)} seconds")
        every = self.check_every.to_seconds()
        if every < 60 or every % 60:
            raise ValueError(f"batch lane check_every must be a whole number of minutes, at least 1, got {int(every)} seconds")
        if every > max_age:
            raise ValueError(
                f"batch lane check_every ({int(every)} seconds) must be at most max_age ({int(max_age)} seconds), or a "
                "task would wait longer than max_age"
            )
        if self.below_minimum not in contract.BELOW_MINIMUM_CHOICES:
            raise ValueError(
                f"batch lane below_minimum must be one of {', '.join(contract.BELOW_MINIMUM_CHOICES)}, got {self.below_minimum!r}"
            )
        if self.default_lane not in contract.TASK_LANES:
            raise ValueError(
                f"batch lane default_lane must be one of {', '.join(contract.TASK_LANES)}, got {self.default_lane!r}"
            )
        if not 1 <= self.timeout.to_seconds() <= 900:
            raise ValueError(
                f"batch lane timeout must be between 1 second and 15 minutes, got {int(self.timeout.to_seconds())} seconds"
            )

    def environment(self) -> dict[str, str]:
        """The ``AGENT_BATCH_*`` settings of the lane's function (the API function reads the first two)."""
        return {
            contract.BATCH_ENABLED_ENV: "true",
            contract.BATCH_DEFAULT_LANE_ENV: self.default_lane,
            contract.BATCH_FLUSH_SIZE_ENV: str(self.flush_size),
            contract.BATCH_MAX_AGE_ENV: str(int(self.max_age.to_seconds())),
            contract.BATCH_BELOW_MINIMUM_ENV: self.below_minimum,
        }


def batch_lane_models(options: AgentFunctionOptions) -> tuple[str, ...]:
    """The model specs the lane may submit jobs for: the agent's model and each allowed model that takes batch jobs."""
    return tuple(m for m in dict.fromkeys((options.model, *options.allowed_models)) if contract.batch_model(m) is not None)


def _nag_partition(scope: Construct) -> str:
    """``arn:<partition>`` as cdk-nag prints it in a finding id: the literal partition once the Region is known."""
    partition = Stack.of(scope).partition
    return f"arn:{'<AWS::Partition>' if Token.is_unresolved(partition) else partition}"


_CROSS_REGION_REASON = (
    "A cross-Region inference profile serves a record from the foundation model in any Region of its geography, so "
    "Bedrock checks InvokeModel on that one model in every Region: one model, nothing else."
)


class BatchLane(Construct):
    """Tasks with ``"lane": "batch"`` answered by Bedrock batch inference jobs.

    The task table gets the sparse keys-only index ``by_batch`` (``batch_queue``, sorted by ``created_at``) where
    waiting tasks are found. An EventBridge Scheduler schedule invokes the lane's function every ``check_every``
    (retries, then a dead-letter queue); each tick collects the jobs that ended (finishing their tasks) and flushes
    waiting tasks into new jobs: ``flush_size`` of them at once, or fewer once the oldest waited ``max_age``. A job's
    JSONL input and output live in the lane's bucket (encrypted, SSL only, no public access, expired with the tasks);
    Bedrock reads and writes them with the lane's service role, which may touch that bucket and invoke the lane's
    models only, when assumed by Bedrock for a job of this account and Region.

    The synth fails, in one sentence naming this construct, when the agent's model takes no batch jobs, when
    ``flush_size`` is below the model's minimum records per job, or when the agent has tools (a batch job runs none);
    when the runtime cannot load the definition at synth, the tools are not checked (a warning).

    Parameters
    ----------
    task_table:
        The TaskTable of the tasks (its key and retention are the lane's bucket's).
    queue:
        The on-demand task queue: with ``below_minimum="on_demand"``, tasks too few for a job go there.
    event_bus:
        Where ``Task Finished`` events go. Default: none.
    options:
        See :class:`BatchLaneOptions`. Default: ``BatchLaneOptions()``.
    function_options:
        The options of the agent the lane runs (the worker's: same agent, model and version); its timeout is
        ``options.timeout``. Default: ``AgentFunctionOptions()``.

    Attributes
    ----------
    options, models (the model specs jobs may use), bucket, service_role, agent_function, function, alias,
    schedule, schedule_role, dead_letter_queue
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        task_table: TaskTable,
        queue: sqs.IQueue,
        event_bus: events.IEventBus | None = None,
        options: BatchLaneOptions | None = None,
        function_options: AgentFunctionOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options = options or BatchLaneOptions()
        options.validate()
        agent = function_options or AgentFunctionOptions()
        self._check_model(agent.model, options.flush_size)
        self._check_retention(task_table.retention_days)
        self.models = batch_lane_models(agent)
        task_table.add_batch_index()
        key = task_table.encryption_key
        self._bedrock_model_ids = [m.removeprefix("bedrock:") for m in self.models if m.startswith("bedrock:")]
        self._model_arns = bedrock_model_arns(self, self._bedrock_model_ids)
        baseline = baseline_for(self)
        self.bucket = private_bucket(
            self,
            "Bucket",
            encryption_key=key,
            access_log_bucket=baseline.access_logs_destination() if baseline is not None else None,
            removal_policy=task_table.options.removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(task_table.retention_days + 1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            access_log_reason=(
                "Only the batch lane's function and Bedrock's batch jobs (through the lane's service role) read and "
                "write this bucket; enable CloudTrail S3 data events for object-level audit if you need it."
            ),
        )
        self.service_role = self._build_service_role()
        self.agent_function = AgentFunction(
            self,
            "Function",
            handler_code=handler_dir(BATCH_LANE_HANDLER),
            options=replace(
                agent,
                timeout=options.timeout,
                # No reservation (it fails the deploy in an account whose quota is still 10): two ticks that overlap
                # pick the same tasks into the same job, and each task finishes once in a conditional write.
                reserved_concurrent_executions=None,
                provisioned_concurrency=None,
                provisioned_scaling=None,
            ),
        )
        self.function, self.alias = self.agent_function.function, self.agent_function.alias
        self._check_tools()
        self._grant_lane(task_table, queue, event_bus)
        self.dead_letter_queue = dead_letter_queue(self, "ScheduleFailures", encryption_key=key)
        self.schedule = self._build_schedule()

    # -- checks ----------------------------------------------------------------------------

    def _check_model(self, spec: str, flush_size: int) -> None:
        problem = contract.batch_model_problem(spec)
        if problem is not None:
            raise ValueError(f"{self.node.path}: {problem}")
        model = contract.batch_model(spec)
        assert model is not None
        if flush_size < model.min_records:
            raise ValueError(
                f"{self.node.path}: flush_size {flush_size} is below the {model.min_records} records per job Bedrock "
                f"sets for {spec}; raise flush_size to at least {model.min_records}"
            )
        if flush_size > model.max_records:
            raise ValueError(
                f"{self.node.path}: flush_size {flush_size} is above the {model.max_records} records per job Bedrock "
                f"allows for {spec}; lower flush_size to at most {model.max_records}"
            )

    def _check_retention(self, retention_days: int) -> None:
        longest = self.options.max_age.to_seconds() + contract.BATCH_WINDOW_HOURS * 3600
        if longest > retention_days * 86_400:
            raise ValueError(
                f"{self.node.path}: max_age ({int(self.options.max_age.to_seconds())} seconds) plus Bedrock's "
                f"{contract.BATCH_WINDOW_HOURS}-hour job window exceeds the task table's retention ({retention_days} "
                "days), so a task's record could expire before its answer; lower max_age or raise the retention"
            )

    def _check_tools(self) -> None:
        answer = self.agent_function.version_answer()
        tools = answer.tools if answer is not None else None
        if tools is None:
            # The runtime could not load the definition here: the lane cannot tell whether the agent has tools.
            warn_unchecked(
                self,
                "agentrail:batch-lane-unchecked",
                self.node.path,
                "has no tools",
                "the API refuses batch tasks of an agent with tools",
            )
            return
        if tools:
            names = ", ".join(repr(name) for name in tools)
            raise ValueError(
                f"{self.node.path}: the agent has tools ({names}) and a Bedrock batch inference job runs no tools; "
                "give the batch lane an agent without tools, or drop the batch lane"
            )

    # -- resources -------------------------------------------------------------------------

    def _build_service_role(self) -> iam.Role:
        """The role Bedrock assumes for the lane's jobs: this bucket's objects and the lane's models, nothing else."""
        stack = Stack.of(self)
        jobs = stack.format_arn(service="bedrock", resource="model-invocation-job", resource_name="*")
        role = iam.Role(
            self,
            "ServiceRole",
            description=f"Bedrock batch inference jobs of {self.node.path}",
            assumed_by=iam.ServicePrincipal(
                "bedrock.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": jobs},
                },
            ),
        )
        in_this_account = {"StringEquals": {"aws:ResourceAccount": stack.account}}
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions=in_this_account,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn], conditions=in_this_account)
        )
        if self.bucket.encryption_key is not None:
            self.bucket.encryption_key.grant_encrypt_decrypt(role)
        if self._model_arns:
            role.add_to_policy(iam.PolicyStatement(actions=["bedrock:InvokeModel"], resources=list(self._model_arns)))
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            resource = default_resource(policy)
            acknowledge(
                resource,
                f"IAM5[Resource::<{logical_id(self.bucket)}.Arn>/*]",
                "A batch job's input and output files are named by the job, unknown in advance; only Get/PutObject on "
                "this one bucket are allowed.",
            )
            if self.bucket.encryption_key is not None:
                for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
                    acknowledge(
                        resource,
                        f"IAM5[Action::{action}]",
                        "CDK's grant on the lane bucket's customer managed key adds the data-key variants S3 uses on "
                        "Bedrock's behalf; the statement names that one key only.",
                    )
            for model_id in self._bedrock_model_ids:
                if model_id.startswith(contract.INFERENCE_PROFILE_PREFIXES):
                    acknowledge(
                        resource,
                        f"IAM5[Resource::{_nag_partition(self)}:bedrock:*::foundation-model/{model_id.split('.', 1)[1]}]",
                        _CROSS_REGION_REASON,
                    )
        return role

    def _grant_lane(self, task_table: TaskTable, queue: sqs.IQueue, event_bus: events.IEventBus | None) -> None:
        """What a tick does: read and finish tasks, find waiting ones, write and read job files, start and describe
        jobs with the service role, and send tasks too few for a job to the on-demand queue."""
        lane = self.agent_function
        fn = self.function
        stack = Stack.of(self)
        task_table.grant_tasks(lane, event_bus=event_bus)
        grant_index_query(task_table.table, fn, contract.TASK_BATCH_INDEX)
        iam.Grant.add_to_principal(
            # DeleteObject: a job's files go once its tasks kept their answers.
            grantee=fn,
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            resource_arns=[self.bucket.arn_for_objects("*")],
        )
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:ListBucket"], resource_arns=[self.bucket.bucket_arn])
        if self.bucket.encryption_key is not None:
            self.bucket.encryption_key.grant_encrypt_decrypt(fn)
        lane.acknowledge_policy(
            f"IAM5[Resource::<{logical_id(self.bucket)}.Arn>/*]",
            "A batch job's input and output files are named by the job, unknown in advance; only Get/Put/DeleteObject on this "
            "one bucket are allowed.",
        )
        jobs = stack.format_arn(service="bedrock", resource="model-invocation-job", resource_name="*")
        create, describe = contract.BATCH_JOB_ACTIONS
        fn.add_to_role_policy(iam.PolicyStatement(actions=[create], resources=[jobs, *self._model_arns]))
        fn.add_to_role_policy(iam.PolicyStatement(actions=[describe], resources=[jobs]))
        lane.acknowledge_policy(
            f"IAM5[Resource::{arn_prefix(self, 'bedrock')}:model-invocation-job/*]",
            "Bedrock names a batch job's ARN when the job starts, so it is unknown in advance; only starting and "
            "describing this account's jobs in this Region are allowed.",
        )
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.service_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
            )
        )
        queue.grant_send_messages(fn)
        lane.add_environment("AGENT_TASK_QUEUE_URL", queue.queue_url)
        for name, value in self.options.environment().items():
            lane.add_environment(name, value)
        lane.add_environment(contract.BATCH_BUCKET_ENV, self.bucket.bucket_name)
        lane.add_environment(contract.BATCH_ROLE_ARN_ENV, self.service_role.role_arn)
        lane.add_health_check("s3", self.bucket.bucket_name)
        lane.calls_service("bedrock", "sqs")
        if task_table.encryption_key is not None:
            lane.acknowledge_key_grants()

    def _build_schedule(self) -> scheduler.Schedule:
        """Every ``check_every``: invoke the ``live`` alias asynchronously (the schedule retries delivery, then sends
        the event to the dead-letter queue; a tick that fails is not retried by Lambda, the next one does its work)."""
        options, failures = self.options, self.dead_letter_queue
        every = options.check_every
        # Lambda's asynchronous invocation: a failed tick goes to the dead-letter queue at once (CKV_AWS_116).
        function = default_resource(self.function)
        assert isinstance(function, lambda_.CfnFunction)
        function.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(target_arn=failures.queue_arn)
        failures.grant_send_messages(self.function)
        unskip_checkov(function, "CKV_AWS_116")
        self.alias.configure_async_invoke(retry_attempts=0, max_event_age=every)
        # The schedule's own role, assumed by EventBridge Scheduler for this account only: the target grants it
        # InvokeFunction on the alias and SendMessage on the dead-letter queue.
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            description=f"EventBridge Scheduler's role for the ticks of {self.node.path}",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}}
            ),
        )
        target = scheduler_targets.LambdaInvoke(
            self.alias,
            input=scheduler.ScheduleTargetInput.from_object(dict(SCHEDULE_INPUT)),
            dead_letter_queue=failures,
            retry_attempts=2,
            max_event_age=every,
            role=self.schedule_role,
        )
        schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule=scheduler.ScheduleExpression.rate(every),
            target=target,
            description=f"Flush and collect the Bedrock batch jobs of {self.node.path}",
        )
        key = failures.encryption_master_key
        if key is not None:
            # Undeliverable ticks go to the dead-letter queue with the schedule's role, under the queue's key.
            key.grant(self.schedule_role, "kms:Decrypt", "kms:GenerateDataKey")
        return schedule


__all__ = ["BATCH_LANE_HANDLER", "BatchLane", "BatchLaneOptions", "batch_lane_models"]
