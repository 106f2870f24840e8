"""AsyncAgent and LongTaskWorkflow: 202 + task id, SQS with a DLQ, idempotent workers, status and notifications."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from agentrail_constructs.api import AgentApi, AgentApiOptions
from agentrail_constructs.approvals import ApprovalOptions, ApprovalWorkflow
from agentrail_constructs.batch_lane import BatchLane, BatchLaneOptions
from agentrail_constructs.budgets import BudgetOptions, DailyBudgets, budgets_for
from agentrail_constructs.contract import contract
from agentrail_constructs.erasure import ErasureOptions, serve_erasure
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions, companion_options
from agentrail_constructs.nag import default_resource, execution_arn_pattern, unskip_checkov
from agentrail_constructs.queues import QueueWithDeadLetters, dead_letter_queue, visibility_timeout_for
from agentrail_constructs.renames import check_exclusive, renamed_keywords
from agentrail_constructs.request_models import request_model
from agentrail_constructs.security import grant_key_to_service
from agentrail_constructs.sources import handler_dir
from agentrail_constructs.storage import encrypt_log_group, generated_secret
from agentrail_constructs.task_table import TaskTable, TaskTableOptions
from agentrail_constructs.workflows import (
    TASK_FIELDS,
    RetryOptions,
    Step,
    agent_loop,
    agent_step,
    check_within_retention,
    grant_pinned_invoke,
    standard_state_machine,
    validate_workflow,
)

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}\.?$")


@renamed_keywords(timeout="execution_timeout")
@dataclass(frozen=True, kw_only=True)
class LongTaskWorkflowOptions:
    """A Step Functions Standard workflow for tasks beyond one Lambda's 15 minutes."""

    task_types: Sequence[str] = ("long",)
    """Task types routed to the workflow. Default: ``long``."""
    execution_timeout: Duration = field(default_factory=lambda: Duration.hours(24))
    """The whole execution (formerly ``timeout``). Default: 24 hours."""
    step_timeout: Duration = field(default_factory=lambda: Duration.minutes(5))
    """One agent step (a Lambda invocation). Default: 5 minutes."""
    slice_steps: int = 2
    """Model calls per workflow step; the agent is checkpointed between steps. Default: 2."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """Execution history logs (never execution data). Default: one month."""
    retries: RetryOptions = field(default_factory=RetryOptions)
    """How each step retries transient failures (shorten it in tests run by a local Step Functions).
    Default: ``RetryOptions()``: 2 s before Lambda's, 10 s before the model's, doubling, no cap."""

    def validate(self) -> None:
        validate_workflow(
            "LongTaskWorkflowOptions",
            task_types=self.task_types,
            execution_timeout=self.execution_timeout,
            step_timeout=self.step_timeout,
            slice_steps=self.slice_steps,
            retries=self.retries,
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

    @renamed_keywords(function="function_options")
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        task_table: TaskTable,
        event_bus: events.IEventBus | None = None,
        options: LongTaskWorkflowOptions | None = None,
        function_options: AgentFunctionOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options = options or LongTaskWorkflowOptions()
        options.validate()
        check_within_retention(
            "LongTaskWorkflowOptions", execution_timeout=options.execution_timeout, retention_days=task_table.retention_days
        )
        self.task_types = tuple(options.task_types)
        self.step_function = AgentFunction(
            self,
            "Steps",
            handler_code=handler_dir("task_workflow"),
            options=replace(function_options or AgentFunctionOptions(), timeout=options.step_timeout),
        )
        task_table.grant_tasks(self.step_function, event_bus=event_bus)
        self.step_function.add_environment("AGENT_TASK_SLICE_STEPS", str(options.slice_steps))

        def invoke(name: str, action: str, extra: dict[str, str] | None = None, *, pinned: bool = True) -> Step:
            return agent_step(
                self,
                name,
                alias=self.step_function.alias,
                function=self.step_function.function,
                pinned=pinned,
                payload={"action": action, **TASK_FIELDS, **(extra or {})},
                result_selector={"done.$": "$.Payload.done", "status.$": "$.Payload.status"},
                result_path="$.progress",
                timeout=options.step_timeout,
                retries=options.retries,
            )

        loop = agent_loop(self, invoke)
        for task in (loop.start, loop.step):
            task.add_catch(loop.mark_failed, errors=["States.ALL"], result_path="$.error")
        self.state_machine, self.log_group = standard_state_machine(
            self,
            loop.start,
            timeout=options.execution_timeout,
            log_retention=options.log_retention,
            encryption_key=task_table.encryption_key,
        )
        grant_pinned_invoke(self.state_machine, self.step_function.function)


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
    callback_domains: Sequence[str] = ()
    """Callback URLs must name one of these domains or a subdomain of one (IP literals are then refused).
    Default: none, any host whose every address is public."""
    batch_lane: BatchLaneOptions | None = None
    """A batch lane (see :class:`BatchLaneOptions`): tasks with ``"lane": "batch"`` answered by Bedrock batch inference
    jobs. Default: none (every task on demand)."""

    def validate(self) -> None:
        if self.batch_lane is not None:
            self.batch_lane.validate()
        if self.max_receive_count < 5:
            raise ValueError("max_receive_count must be at least 5, so a transient failure is never dead-lettered early")
        if not 1 <= self.batch_size <= 10:
            raise ValueError("batch_size must be between 1 and 10")
        if not 2 <= self.worker_max_concurrency <= 1000:
            raise ValueError("worker_max_concurrency must be between 2 and 1000 (the event source mapping's limits)")
        if isinstance(self.callback_domains, str):
            raise ValueError("callback_domains must be a list of domains, e.g. ['hooks.example.com']")
        for domain in self.callback_domains:
            if not _DOMAIN.match(domain):
                raise ValueError(f"callback_domains: {domain!r} is not a domain name such as hooks.example.com")


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
    function_options:
        Options of the API function. Default: ``AgentFunctionOptions()``.
    worker_function_options:
        Options of the worker. Default: the API's options with a 5-minute timeout.
    options:
        Queueing and notifications. Default: ``AsyncOptions()``.
    existing_task_table:
        Your TaskTable (the construct, not an ``ITable``: tasks need its results bucket and idempotency table
        too). Not with ``task_table_options``.
    task_table_options:
        Options of a new TaskTable. Default: ``TaskTableOptions()``.
    existing_queue:
        Your task queue (any ``IQueue``; give it a dead-letter queue whose ``maxReceiveCount`` is
        ``options.max_receive_count``, and a visibility timeout of 6x the worker's). Default: a new encrypted
        queue with a dead-letter queue.
    existing_event_bus:
        Your EventBridge bus for ``Task Finished`` events (any ``IEventBus``). Default: a new bus.
    long_task_options:
        Route some task types to a LongTaskWorkflow. Default: none.
    approval_options:
        Route some task types to an ApprovalWorkflow and serve the approvals API. Default: none.
    api_options:
        REST API options. Default: IAM auth.
    existing_rest_api:
        Your REST API to add the routes to (see :class:`AgentApi`). Default: a new one.
    worker_code:
        Code asset of the queue's consumer. Default: agentrail's task worker (a multi-agent system passes its router).
    budget_options:
        Daily token or USD budgets per tenant and per agent, with a new counters table (see :class:`BudgetOptions`).
        Default: none.
    existing_budgets:
        Your :class:`DailyBudgets` (shared with other patterns). Not with ``budget_options``. Default: none.
    erasure_options:
        Who may erase another principal's data through ``POST /erase`` (see :class:`ErasureOptions`). Default:
        ``ErasureOptions()`` (callers erase their own data; the Cognito group ``operators`` anyone's).

    Attributes
    ----------
    task_table, agent_function, function, alias, worker, queue, dead_letter_queue, event_bus,
    webhook_secret, notifier, notifier_dead_letter_queue, workflow, api, rest_api, budgets,
    batch_lane (the :class:`BatchLane` of ``options.batch_lane``, or None)
    """

    @renamed_keywords(
        function="function_options",
        worker_function="worker_function_options",
        task_table="existing_task_table",
        table_options="task_table_options",
        long_tasks="long_task_options",
        approvals="approval_options",
        api="api_options",
    )
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_options: AgentFunctionOptions | None = None,
        worker_function_options: AgentFunctionOptions | None = None,
        options: AsyncOptions | None = None,
        existing_task_table: TaskTable | None = None,
        task_table_options: TaskTableOptions | None = None,
        existing_queue: sqs.IQueue | None = None,
        existing_event_bus: events.IEventBus | None = None,
        long_task_options: LongTaskWorkflowOptions | None = None,
        approval_options: ApprovalOptions | None = None,
        api_options: AgentApiOptions | None = None,
        existing_rest_api: apigw.RestApi | None = None,
        worker_code: str | Path | None = None,
        budget_options: BudgetOptions | None = None,
        existing_budgets: DailyBudgets | None = None,
        erasure_options: ErasureOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        check_exclusive(existing_task_table, task_table_options, "existing_task_table", "task_table_options")
        self.options = options = options or AsyncOptions()
        options.validate()
        self.task_table = existing_task_table or TaskTable(self, "Tasks", table_options=task_table_options)
        self.event_bus: events.IEventBus = existing_event_bus or events.EventBus(
            self, "Events", description=f"agentrail task events of {self.node.path}"
        )
        base = function_options or AgentFunctionOptions()
        self.agent_function = AgentFunction(self, "Agent", handler_code=handler_dir("tasks"), options=base)
        self.function, self.alias = self.agent_function.function, self.agent_function.alias
        worker_options = worker_function_options or replace(base, timeout=Duration.minutes(5))
        self.worker = AgentFunction(
            self, "Worker", handler_code=worker_code or handler_dir("task_worker"), options=worker_options
        )
        self.queue: sqs.IQueue
        self.dead_letter_queue: sqs.IQueue | None = None
        if existing_queue is not None:
            self.queue = existing_queue
        else:
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
        self.agent_function.add_health_check("sqs", self.queue.queue_url)  # and its endpoint, in a hardened stack
        self.worker.add_environment("AGENT_TASK_MAX_RECEIVE_COUNT", str(options.max_receive_count))
        self.worker.alias.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=options.batch_size,
                report_batch_item_failures=True,
                max_concurrency=options.worker_max_concurrency,
            )
        )
        self.batch_lane: BatchLane | None = None
        if options.batch_lane is not None:
            self._build_batch_lane(options.batch_lane, worker_options)
        self.workflow: LongTaskWorkflow | None = None
        self.approval_workflow: ApprovalWorkflow | None = None
        self.routes: dict[str, str] = {"default": "queue"}
        self.agent_function.add_environment("AGENT_TASK_ROUTES", Stack.of(self).to_json_string(dict(self.routes)))
        if long_task_options is not None:
            self.workflow = LongTaskWorkflow(
                self, "LongTasks", task_table=self.task_table, event_bus=self.event_bus, options=long_task_options,
                function_options=base,
            )  # fmt: skip
            self.add_workflow_route(self.workflow.state_machine, self.workflow.task_types)
        if approval_options is not None:
            self.approval_workflow = ApprovalWorkflow(
                self, "Approvals", task_table=self.task_table, event_bus=self.event_bus, options=approval_options,
                function_options=base,
            )  # fmt: skip
            self.approval_workflow.grant_decisions(self.agent_function)
            self.add_workflow_route(self.approval_workflow.state_machine, self.approval_workflow.task_types)
        self.webhook_secret: secretsmanager.Secret | None = None
        self.notifier: AgentFunction | None = None
        self.notifier_dead_letter_queue: sqs.Queue | None = None
        if options.webhooks:
            self._build_webhooks()
        self.api = AgentApi(
            self, "Api", options=api_options, existing_rest_api=existing_rest_api, description="agentrail async agent"
        )
        self.api.serve_with(self.agent_function)
        self.rest_api = self.api.rest_api
        if self.task_table.encryption_key is not None and self.api.access_log_group is not None:
            encrypt_log_group(self.api.access_log_group, self.task_table.encryption_key)
        self._build_routes()
        if self.approval_workflow is not None:
            self.approval_workflow.add_routes(self.api, self.agent_function)
        self.task_table.grant_erasure(self.agent_function)
        self.task_table.grant_console(self.agent_function)
        if self.approval_workflow is not None:
            self.approval_workflow.grant_erasure(self.agent_function)
        serve_erasure(self.api, self.agent_function, self.alias, erasure_options or ErasureOptions())
        self.budgets = budgets_for(self, budget_options=budget_options, existing_budgets=existing_budgets)
        if self.budgets is not None and self.batch_lane is not None:
            # The lane runs the agent's model for its tasks (as jobs): their spend counts as the worker's does.
            self.budgets.enforce_on(self.batch_lane.agent_function)

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
        self.routes.update(dict.fromkeys(task_types, state_machine.state_machine_arn))
        self.agent_function.add_environment("AGENT_TASK_ROUTES", Stack.of(self).to_json_string(dict(self.routes)))

    def _build_batch_lane(self, lane_options: BatchLaneOptions, worker_options: AgentFunctionOptions) -> None:
        """The batch lane, running the worker's agent (same options, so the same model and version); the API function
        learns that the lane exists and which lane a task that names none takes."""
        self.batch_lane = BatchLane(
            self,
            "BatchLane",
            task_table=self.task_table,
            queue=self.queue,
            event_bus=self.event_bus,
            options=lane_options,
            function_options=worker_options,
        )
        self._wire_callbacks(self.batch_lane.agent_function)
        self.agent_function.add_environment(contract.BATCH_ENABLED_ENV, "true")
        self.agent_function.add_environment(contract.BATCH_DEFAULT_LANE_ENV, lane_options.default_lane)

    def _wire(self, agent_function: AgentFunction) -> None:
        self.task_table.grant_tasks(agent_function, event_bus=self.event_bus)
        agent_function.add_environment("AGENT_TASK_QUEUE_URL", self.queue.queue_url)
        self._wire_callbacks(agent_function)

    def _wire_callbacks(self, agent_function: AgentFunction) -> None:
        if self.options.allow_insecure_callbacks:
            agent_function.add_environment("AGENT_TASK_ALLOW_INSECURE_CALLBACKS", "true")
        if self.options.callback_domains:
            domains = [domain.lower().strip(".") for domain in self.options.callback_domains]
            agent_function.add_environment("AGENT_TASK_CALLBACK_DOMAINS", json.dumps(domains))

    def _build_webhooks(self) -> None:
        self.webhook_secret = generated_secret(
            self,
            "WebhookSigningSecret",
            description="Master key of agentrail task webhooks: each owner's HMAC-SHA256 key is derived from it "
            "(GET /webhooks/secret); never share it with receivers",
            encryption_key=self.task_table.encryption_key,
            no_rotation="Each owner's webhook key is derived from this secret and fetched by the owner (GET "
            "/webhooks/secret); rotating it changes every owner's key, a coordinated change with the receivers, not an "
            "automatic schedule.",
        )
        self.notifier = AgentFunction(
            self,
            "Notifier",
            handler_code=handler_dir("task_notifier"),
            options=companion_options(
                self.agent_function.options, memory_size=256, timeout=Duration.seconds(30), service_name="task-notifier"
            ),
        )
        self.notifier.allow_internet_egress(
            f"{self.node.path}'s webhook notifier posts to callers' URLs and",
            "turn webhooks off with AsyncOptions(webhooks=False) (cdk -c webhooks=false; callers then poll GET /tasks/{id} "
            "or subscribe to the stack's EventBridge bus)",
        )
        for reader in (self.notifier, self.agent_function):
            reader.grant_secret_read(self.webhook_secret)
            reader.add_environment("AGENT_TASK_WEBHOOK_SECRET", self.webhook_secret.secret_arn)
        if self.task_table.encryption_key is not None:
            self.notifier.encrypt_logs(self.task_table.encryption_key)
        self._wire_callbacks(self.notifier)
        self.notifier_dead_letter_queue = dead_letter_queue(
            self, "WebhookFailures", encryption_key=self.task_table.encryption_key
        )
        if self.task_table.encryption_key is not None:
            # The webhook rule's dead-letter queue: EventBridge itself sends there, under the key.
            grant_key_to_service(self.task_table.encryption_key, "events.amazonaws.com")
        # The EventBridge rule invokes the notifier asynchronously: what fails every retry lands in its dead-letter
        # queue (DeadLetterConfig, what checkov's CKV_AWS_116 asks for) instead of being dropped.
        notifier = default_resource(self.notifier.function)
        assert isinstance(notifier, lambda_.CfnFunction)
        notifier.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(
            target_arn=self.notifier_dead_letter_queue.queue_arn
        )
        self.notifier_dead_letter_queue.grant_send_messages(self.notifier.function)
        unskip_checkov(notifier, "CKV_AWS_116")
        self.notifier.alias.configure_async_invoke(retry_attempts=2, max_event_age=Duration.hours(6))
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
        route("/tasks", "GET", self.alias, request_parameters={"querystring.limit": False}, operation_name="ListTasks")
        route("/tasks/{task_id}", "GET", self.alias, operation_name="GetTask")
        route(
            "/tasks/{task_id}/timeline",
            "GET",
            self.alias,
            request_parameters={"querystring.approval_id": False},
            operation_name="GetTaskTimeline",
        )
        route("/costs", "GET", self.alias, request_parameters={"querystring.days": False}, operation_name="GetCosts")
        route("/tasks/{task_id}", "DELETE", self.alias, operation_name="CancelTask")
        route(
            "/tasks/{task_id}/feedback",
            "POST",
            self.alias,
            request_schema=request_model("TaskFeedbackRequest"),
            operation_name="GiveTaskFeedback",
        )
        if self.webhook_secret is not None:
            route("/webhooks/secret", "GET", self.alias, operation_name="GetWebhookSecret")
        self.api.add_operational_routes(self.alias)

    @property
    def url(self) -> str:
        return self.api.url
