"""AsyncAgent, TaskTable and LongTaskWorkflow: 202 + task id, SQS with a DLQ, idempotent workers, status and notifications."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as sfn_tasks
from constructs import Construct

from agentrail_constructs.api import AgentApi, AgentApiOptions
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions
from agentrail_constructs.nag import acknowledge, execution_arn_pattern, logical_id
from agentrail_constructs.queues import QueueWithDeadLetters, dead_letter_queue, visibility_timeout_for
from agentrail_constructs.request_models import request_model
from agentrail_constructs.sources import handler_dir
from agentrail_constructs.stateless import check_exclusive
from agentrail_constructs.storage import private_bucket, secure_table
from agentrail_constructs.workflows import TASK_FIELDS, agent_loop, lambda_step, standard_state_machine, validate_workflow

if TYPE_CHECKING:
    from agentrail_constructs.approvals import ApprovalOptions, ApprovalWorkflow


@dataclass(frozen=True, kw_only=True)
class TaskTableOptions:
    encryption_key: kms.IKey | None = None
    """A customer managed key for the tables, the bucket and the queues. Default: AWS managed encryption."""
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    """Default: RETAIN."""
    retention: Duration = field(default_factory=lambda: Duration.days(30))
    """How long a finished task's record is kept (TTL). Default: 30 days."""


class TaskTable(Construct):
    """Task records (partition key ``task_id``, TTL ``expires_at``), an encrypted bucket for large
    results and checkpoints, and the Powertools idempotency table.

    Attributes
    ----------
    table, results_bucket, idempotency_table, encryption_key, retention_days
    """

    def __init__(self, scope: Construct, construct_id: str, *, options: TaskTableOptions | None = None) -> None:
        super().__init__(scope, construct_id)
        self.options = options = options or TaskTableOptions()
        self.encryption_key = options.encryption_key
        self.retention_days = max(1, int(options.retention.to_days()))
        self.table = secure_table(
            self,
            "Table",
            partition_key="task_id",
            time_to_live_attribute="expires_at",
            encryption_key=options.encryption_key,
            removal_policy=options.removal_policy,
        )
        # Idempotency records only matter for a day: nothing to keep when the stack goes.
        self.idempotency_table = secure_table(
            self,
            "IdempotencyTable",
            partition_key="id",
            time_to_live_attribute="expiration",
            encryption_key=options.encryption_key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.results_bucket = private_bucket(
            self,
            "ResultsBucket",
            encryption_key=options.encryption_key,
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
        self.table.grant_read_write_data(fn)
        self.idempotency_table.grant_read_write_data(fn)
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
        if event_bus is not None:
            event_bus.grant_put_events_to(fn)
            agent_function.add_environment("AGENT_TASK_EVENT_BUS", event_bus.event_bus_name)


@dataclass(frozen=True, kw_only=True)
class LongTaskWorkflowOptions:
    """A Step Functions Standard workflow for tasks beyond one Lambda's 15 minutes."""

    task_types: Sequence[str] = ("long",)
    """Task types routed to the workflow. Default: ``long``."""
    timeout: Duration = field(default_factory=lambda: Duration.hours(24))
    """Whole execution. Default: 24 hours."""
    step_timeout: Duration = field(default_factory=lambda: Duration.minutes(5))
    """One agent step (a Lambda invocation). Default: 5 minutes."""
    slice_steps: int = 2
    """Model calls per workflow step; the agent is checkpointed between steps. Default: 2."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """Execution history logs (never execution data). Default: one month."""

    def validate(self) -> None:
        validate_workflow(
            "LongTaskWorkflowOptions",
            task_types=self.task_types,
            execution_timeout=self.timeout,
            step_timeout=self.step_timeout,
            slice_steps=self.slice_steps,
            timeout_name="timeout",
        )


class LongTaskWorkflow(Construct):
    """Start → Step (loop until done) → Succeed, with ``MarkFailed`` on any error.

    Every Lambda task retries Lambda's documented transient errors plus
    ``Lambda.TooManyRequestsException`` and the model's transient errors, and
    catches everything else to mark the task failed with its cause. The
    execution has a timeout, X-Ray tracing, and logs without execution data.

    Attributes
    ----------
    state_machine, step_function, log_group, task_types
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        task_table: TaskTable,
        event_bus: events.IEventBus | None = None,
        options: LongTaskWorkflowOptions | None = None,
        function: AgentFunctionOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options = options or LongTaskWorkflowOptions()
        options.validate()
        self.task_types = tuple(options.task_types)
        self.step_function = AgentFunction(
            self,
            "Steps",
            handler_code=handler_dir("task_workflow"),
            options=replace(function or AgentFunctionOptions(), timeout=options.step_timeout),
        )
        task_table.grant_tasks(self.step_function, event_bus=event_bus)
        self.step_function.add_environment("AGENT_TASK_SLICE_STEPS", str(options.slice_steps))

        def invoke(name: str, action: str, extra: dict[str, str] | None = None) -> sfn_tasks.LambdaInvoke:
            return lambda_step(
                self,
                name,
                self.step_function.alias,
                payload={"action": action, **TASK_FIELDS, **(extra or {})},
                result_selector={"done.$": "$.Payload.done", "status.$": "$.Payload.status"},
                result_path="$.progress",
                timeout=options.step_timeout,
            )

        loop = agent_loop(self, invoke)
        for task in (loop.start, loop.step):
            task.add_catch(loop.mark_failed, errors=["States.ALL"], result_path="$.error")
        self.state_machine, self.log_group = standard_state_machine(
            self, loop.start.next(loop.done), timeout=options.timeout, log_retention=options.log_retention
        )


@dataclass(frozen=True, kw_only=True)
class AsyncOptions:
    """Queueing, workers and notifications of an AsyncAgent."""

    max_receive_count: int = 5
    """Deliveries before a task's message goes to the DLQ (at least 5). Default: 5."""
    batch_size: int = 5
    """Messages per worker invocation. Default: 5."""
    worker_max_concurrency: int = 10
    """The event source mapping's MaximumConcurrency: caps parallel workers. Default: 10."""
    webhooks: bool = True
    """Deliver signed webhooks to callers' callback URLs. Default: true."""
    allow_insecure_callbacks: bool = False
    """Allow http and loopback callback URLs (local development only). Default: false."""

    def validate(self) -> None:
        if self.max_receive_count < 5:
            raise ValueError("max_receive_count must be at least 5, so a transient failure is never dead-lettered early")
        if not 1 <= self.batch_size <= 10:
            raise ValueError("batch_size must be between 1 and 10")
        if not 2 <= self.worker_max_concurrency <= 1000:
            raise ValueError("worker_max_concurrency must be between 2 and 1000 (the event source mapping's limits)")


class AsyncAgent(Construct):
    """Submit now, answer later: ``POST /tasks`` answers 202 with a task id and status URL.

    A task goes to an encrypted SQS queue (DLQ after ``max_receive_count``,
    visibility timeout 6x the worker's timeout) or, by task type, to a
    LongTaskWorkflow. The worker reports partial batch failures and runs each
    task once (Powertools idempotency on the task id). Finished tasks are
    announced on the stack's EventBridge bus and, when a callback URL was given,
    by a signed webhook whose failures are dead-lettered.

    Parameters
    ----------
    function:
        Options of the API function. Default: ``AgentFunctionOptions()``.
    worker_function:
        Options of the worker. Default: the API's options with a 5-minute timeout.
    options:
        Queueing and notifications. Default: ``AsyncOptions()``.
    task_table:
        An existing TaskTable. Not with ``table_options``.
    table_options:
        Options of a new TaskTable.
    long_tasks:
        Route some task types to a LongTaskWorkflow. Default: none.
    approvals:
        Route some task types to an ApprovalWorkflow and serve the approvals API. Default: none.
    api:
        REST API options. Default: IAM auth.
    worker_code:
        Code asset of the queue's consumer. Default: agentrail's task worker (a multi-agent system passes its router).

    Attributes
    ----------
    task_table, agent_function, function, alias, worker, queue, dead_letter_queue, event_bus,
    webhook_secret, notifier, notifier_dead_letter_queue, workflow, api, rest_api
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: AgentFunctionOptions | None = None,
        worker_function: AgentFunctionOptions | None = None,
        options: AsyncOptions | None = None,
        task_table: TaskTable | None = None,
        table_options: TaskTableOptions | None = None,
        long_tasks: LongTaskWorkflowOptions | None = None,
        approvals: ApprovalOptions | None = None,
        api: AgentApiOptions | None = None,
        worker_code: str | Path | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        check_exclusive(task_table, table_options, "task_table", "table_options")
        self.options = options = options or AsyncOptions()
        options.validate()
        self.task_table = task_table or TaskTable(self, "Tasks", options=table_options)
        self.event_bus = events.EventBus(self, "Events", description=f"agentrail task events of {self.node.path}")
        base = function or AgentFunctionOptions()
        self.agent_function = AgentFunction(self, "Agent", handler_code=handler_dir("tasks"), options=base)
        self.function, self.alias = self.agent_function.function, self.agent_function.alias
        worker_options = worker_function or replace(base, timeout=Duration.minutes(5))
        self.worker = AgentFunction(
            self, "Worker", handler_code=worker_code or handler_dir("task_worker"), options=worker_options
        )
        queues = QueueWithDeadLetters(
            self,
            "TaskQueue",
            visibility_timeout=visibility_timeout_for(worker_options.timeout),
            max_receive_count=options.max_receive_count,
            encryption_key=self.task_table.encryption_key,
        )
        self.queue, self.dead_letter_queue = queues.queue, queues.dead_letter_queue
        for fn in (self.agent_function, self.worker):
            self._wire(fn)
        self.queue.grant_send_messages(self.function)
        self.agent_function.add_health_check("sqs", self.queue.queue_url)
        self.worker.add_environment("AGENT_TASK_MAX_RECEIVE_COUNT", str(options.max_receive_count))
        self.worker.alias.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=options.batch_size,
                report_batch_item_failures=True,
                max_concurrency=options.worker_max_concurrency,
            )
        )
        self.workflow: LongTaskWorkflow | None = None
        self.approval_workflow: ApprovalWorkflow | None = None
        self.routes: dict[str, str] = {"default": "queue"}
        self.agent_function.add_environment("AGENT_TASK_ROUTES", Stack.of(self).to_json_string(dict(self.routes)))
        if long_tasks is not None:
            self.workflow = LongTaskWorkflow(
                self, "LongTasks", task_table=self.task_table, event_bus=self.event_bus, options=long_tasks, function=base
            )
            self.add_workflow_route(self.workflow.state_machine, self.workflow.task_types)
        if approvals is not None:
            from agentrail_constructs.approvals import ApprovalWorkflow

            self.approval_workflow = ApprovalWorkflow(
                self, "Approvals", task_table=self.task_table, event_bus=self.event_bus, options=approvals, function=base
            )
            self.approval_workflow.grant_decisions(self.agent_function)
            self.add_workflow_route(self.approval_workflow.state_machine, self.approval_workflow.task_types)
        self.webhook_secret = self.notifier = self.notifier_dead_letter_queue = None
        if options.webhooks:
            self._build_webhooks()
        self.api = AgentApi(self, "Api", options=api, description="agentrail async agent")
        self.rest_api = self.api.rest_api
        self._build_routes()
        if self.approval_workflow is not None:
            self.approval_workflow.add_routes(self.api, self.agent_function)

    def add_workflow_route(self, state_machine: sfn.StateMachine, task_types: Sequence[str]) -> None:
        """Route ``task_types`` to ``state_machine``: the API starts (and cancels) one execution per task."""
        clashes = sorted(t for t in task_types if t in self.routes)
        if clashes:
            raise ValueError(f"task types {clashes} already have a route; each task type goes to one place")
        state_machine.grant_start_execution(self.function)
        state_machine.grant_execution(self.function, "states:StopExecution")
        self.agent_function.add_health_check("stepfunctions", state_machine.state_machine_arn)
        self.agent_function.acknowledge_policy(
            f"IAM5[Resource::{execution_arn_pattern(state_machine)}:*]",
            "Cancelling a workflow task stops its execution, whose name (the task id) is unknown in advance; only "
            "StopExecution on this state machine's executions is allowed.",
        )
        self.routes.update({task_type: state_machine.state_machine_arn for task_type in task_types})
        self.agent_function.add_environment("AGENT_TASK_ROUTES", Stack.of(self).to_json_string(dict(self.routes)))

    def _wire(self, agent_function: AgentFunction) -> None:
        self.task_table.grant_tasks(agent_function, event_bus=self.event_bus)
        agent_function.add_environment("AGENT_TASK_QUEUE_URL", self.queue.queue_url)
        if self.options.allow_insecure_callbacks:
            agent_function.add_environment("AGENT_TASK_ALLOW_INSECURE_CALLBACKS", "true")

    def _build_webhooks(self) -> None:
        self.webhook_secret = secretsmanager.Secret(
            self,
            "WebhookSigningSecret",
            description="HMAC-SHA256 key signing agentrail task webhooks; share it with your receivers",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
            encryption_key=self.task_table.encryption_key,
        )
        acknowledge(
            self.webhook_secret.node.default_child,
            "SMG4",
            "Receivers verify signatures with this key, which they hold out of band; rotating it is a coordinated "
            "change with them (update the secret value, then the receivers), not an automatic schedule.",
        )
        self.notifier = AgentFunction(
            self,
            "Notifier",
            handler_code=handler_dir("task_notifier"),
            options=AgentFunctionOptions(memory_size=256, timeout=Duration.seconds(30), service_name="task-notifier"),
        )
        self.notifier.grant_secret_read(self.webhook_secret)
        self.notifier.add_environment("AGENT_TASK_WEBHOOK_SECRET", self.webhook_secret.secret_arn)
        if self.options.allow_insecure_callbacks:
            self.notifier.add_environment("AGENT_TASK_ALLOW_INSECURE_CALLBACKS", "true")
        self.notifier_dead_letter_queue = dead_letter_queue(self, "WebhookFailures", encryption_key=self.task_table.encryption_key)
        self.notifier.alias.configure_async_invoke(
            retry_attempts=2,
            max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.notifier_dead_letter_queue),
        )
        events.Rule(
            self,
            "WebhookRule",
            event_bus=self.event_bus,
            description="Finished tasks with a callback URL",
            event_pattern=events.EventPattern(
                source=["agentrail_runtime.tasks"], detail_type=["Task Finished"], detail={"callback_url": [{"prefix": "http"}]}
            ),
            targets=[
                targets.LambdaFunction(
                    self.notifier.alias,
                    retry_attempts=20,
                    max_event_age=Duration.hours(6),
                    dead_letter_queue=self.notifier_dead_letter_queue,
                )
            ],
        )

    def _build_routes(self) -> None:
        submission = request_model("TaskSubmission")
        route = self.api.add_function_route
        route("/tasks", "POST", self.alias, request_schema=submission, operation_name="SubmitTask")
        route("/tasks/{task_id}", "GET", self.alias, operation_name="GetTask")
        route("/tasks/{task_id}", "DELETE", self.alias, operation_name="CancelTask")
        self.api.add_operational_routes(self.alias)

    @property
    def url(self) -> str:
        return self.api.url
