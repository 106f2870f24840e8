"""ApprovalWorkflow: the agent runs until a tool needs approval, then waits on a task token for a human."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from agentrail_constructs.api import AgentApi
from agentrail_constructs.contract import contract
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions, companion_options
from agentrail_constructs.nag import arn_prefix, default_resource, logical_id, unskip_checkov
from agentrail_constructs.queues import dead_letter_queue
from agentrail_constructs.renames import renamed_keywords
from agentrail_constructs.request_models import request_model
from agentrail_constructs.security import grant_key_to_service
from agentrail_constructs.sources import handler_dir
from agentrail_constructs.storage import (
    APPROVAL_TABLE_ACTIONS,
    AUDIT_PSEUDONYMIZED_ATTRIBUTES,
    AUDIT_TABLE_ACTIONS,
    AUDIT_TABLE_DENIED,
    generated_secret,
    grant_index_query,
    grant_table,
    keys_only_index,
    secure_table,
    string_key,
)
from agentrail_constructs.task_table import TaskTable
from agentrail_constructs.workflows import (
    STANDARD_WORKFLOW_LIMIT,
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

#: The approver group of ``ApprovalOptions()``: the Cognito group (or key of ``groups``) whose members decide.
APPROVER_GROUP = "approvers"
#: The indexes the runtime queries (contract.py): approvals by status (GET /approvals, the pending metrics) and by
#: requester, audit entries by actor (both keys only, for erasure).
STATUS_INDEX = contract.APPROVAL_STATUS_INDEX
REQUESTER_INDEX = contract.APPROVAL_REQUESTER_INDEX
ACTOR_INDEX = contract.AUDIT_ACTOR_INDEX


@renamed_keywords(timeout="decision_timeout")
@dataclass(frozen=True, kw_only=True)
class ApprovalOptions:
    """Human approval pauses for tools marked ``requires_approval``."""

    task_types: Sequence[str] = ("reviewed",)
    """Task types routed to the approval workflow. Default: ``reviewed``."""
    decision_timeout: Duration = field(default_factory=lambda: Duration.days(3))
    """How long a decision may take (the wait task's TimeoutSeconds, formerly ``timeout``), under ``execution_timeout``
    (at most 1 year). Default: 3 days."""
    timeout_policy: Literal["reject", "escalate"] = "reject"
    """When ``decision_timeout`` passes: reject, or escalate once to ``escalation_group`` (then reject). Default: reject."""
    approver_group: str = APPROVER_GROUP
    """Who may decide: a Cognito group name, or a key of ``groups``. Default: ``approvers``."""
    escalation_group: str | None = None
    """Second approver group for ``escalate``. Default: none."""
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Group to principal patterns (fnmatch) for IAM, API-key or chat (webhook) callers, e.g.
    ``{"approvers": ["iam:arn:aws:iam::111122223333:user/alice", "iam:arn:aws:iam::111122223333:role/Approver*",
    "webhook:alice@example.com"]}``. A role pattern matches callers that assumed the role. Default: none (Cognito groups only)."""
    allow_self_approval: bool = False
    """Let the requester of an approval decide it. Default: false (separation of duties: 403, audited)."""
    reminder_after: Duration | None = None
    """Put an ``Approval Reminder`` event on the task bus if still pending after this long. Default: none."""
    webhook_groups: Sequence[str] = ()
    """Approver groups whose decisions may also arrive by signed webhook (chat tools). Default: none (no webhook)."""
    audit_retention: Duration = field(default_factory=lambda: Duration.days(365))
    """How long audit entries are kept. Default: 1 year."""
    execution_timeout: Duration = field(default_factory=lambda: Duration.days(30))
    """The whole workflow. Default: 30 days."""
    step_timeout: Duration = field(default_factory=lambda: Duration.minutes(5))
    """One agent step. Default: 5 minutes."""
    slice_steps: int = 2
    """Model calls per workflow step. Default: 2."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """Default: one month."""
    retries: RetryOptions = field(default_factory=RetryOptions)
    """How each step retries transient failures (shorten it in tests run by a local Step Functions).
    Default: ``RetryOptions()``: 2 s before Lambda's, 10 s before the model's, doubling, no cap."""
    pending_metrics_every: Duration | None = field(default_factory=lambda: Duration.minutes(5))
    """How often an EventBridge schedule invokes the approval-metrics function, which emits ``ApprovalsPending`` and
    ``OldestPendingApprovalAgeSeconds`` (the pending-approval alarm reads the latter). None: no emitter and no alarm.
    Default: 5 minutes."""

    def validate(self) -> None:
        validate_workflow(
            "ApprovalOptions",
            task_types=self.task_types,
            execution_timeout=self.execution_timeout,
            step_timeout=self.step_timeout,
            slice_steps=self.slice_steps,
            retries=self.retries,
        )
        if not 1 <= self.decision_timeout.to_seconds() <= STANDARD_WORKFLOW_LIMIT.to_seconds():
            raise ValueError("decision_timeout must be between 1 second and the service's 1-year limit")
        if self.timeout_policy == "escalate" and not self.escalation_group:
            raise ValueError("timeout_policy='escalate' needs escalation_group")
        waits = 2 if self.timeout_policy == "escalate" else 1
        if self.execution_timeout.to_seconds() <= waits * self.decision_timeout.to_seconds():
            raise ValueError("execution_timeout must exceed the decision_timeout wait(s), or the workflow ends while waiting")
        if self.reminder_after is not None and self.reminder_after.to_seconds() >= self.decision_timeout.to_seconds():
            raise ValueError("reminder_after must be shorter than decision_timeout")
        if self.pending_metrics_every is not None and not 60 <= self.pending_metrics_every.to_seconds() <= 86_400:
            raise ValueError("pending_metrics_every must be between 1 minute (EventBridge's finest rate) and 1 day, or None")


class ApprovalWorkflow(Construct):
    """A Step Functions Standard workflow with ``.waitForTaskToken`` approval pauses.

    Start → Step (loop) → when a tool needs approval: RequestApproval (waits
    for a decision, TimeoutSeconds = ``decision_timeout``; a ``Catch`` on
    ``States.Timeout`` applies the timeout policy) → Resume (the tamper check,
    then the tool runs with exactly the approved arguments, or the agent is
    told it was rejected) → ... → Finished. Approval records keep the task
    token server-side; the audit table is append-only for every role here.

    Attributes
    ----------
    state_machine, step_function, log_group, approvals_table, audit_table, erasure_salt, webhook_secret, schedule_group,
    reminder_role,
    task_types, pending_metrics_function, pending_metrics_rule, pending_metrics_dead_letter_queue (None without
    ``pending_metrics_every``)
    """

    @renamed_keywords(function="function_options")
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        task_table: TaskTable,
        event_bus: events.IEventBus,
        options: ApprovalOptions | None = None,
        function_options: AgentFunctionOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options = options or ApprovalOptions()
        options.validate()
        check_within_retention(
            "ApprovalOptions", execution_timeout=options.execution_timeout, retention_days=task_table.retention_days
        )
        self.task_types = tuple(options.task_types)
        self.task_table = task_table
        self.event_bus = event_bus
        key = task_table.encryption_key
        # Records expire 30 days after their decision deadline (the runtime's ApprovalStore writes purge_at).
        self.approvals_table = secure_table(
            self, "ApprovalsTable", partition_key="approval_id", time_to_live_attribute="purge_at", encryption_key=key
        )
        self.approvals_table.add_global_secondary_index(
            index_name=STATUS_INDEX,
            partition_key=string_key("status"),
            sort_key=dynamodb.Attribute(name="requested_at", type=dynamodb.AttributeType.NUMBER),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        keys_only_index(self.approvals_table, REQUESTER_INDEX, "requester")
        self.audit_table = secure_table(
            self,
            "AuditTable",
            partition_key="approval_id",
            sort_key="entry",
            time_to_live_attribute="expires_at",
            encryption_key=key,
        )
        keys_only_index(self.audit_table, ACTOR_INDEX, "actor")
        # The salt of erased principals' pseudonyms in the audit trail: without it a pseudonym cannot be reversed by
        # hashing candidate principals.
        self.erasure_salt = generated_secret(
            self,
            "ErasureSalt",
            description="Salt of the pseudonyms that replace an erased principal in the approval audit trail",
            encryption_key=key,
            no_rotation="Rotating the salt would give an already erased principal a second pseudonym, so its audit "
            "entries would no longer read as one actor; it is a key for pseudonyms, not a credential.",
        )
        self.webhook_secret: secretsmanager.Secret | None = None
        if options.webhook_groups:
            self.webhook_secret = generated_secret(
                self,
                "DecisionWebhookSecret",
                description="HMAC-SHA256 key that chat tools sign approval decisions with",
                encryption_key=key,
                no_rotation="The chat tool holds this key out of band; rotating it is a coordinated change with that "
                "tool, not an automatic schedule.",
            )
        self.schedule_group: scheduler.CfnScheduleGroup | None = None
        self.reminder_role: iam.Role | None = None
        if options.reminder_after is not None:
            self.schedule_group = scheduler.CfnScheduleGroup(self, "Reminders")
            self.reminder_role = iam.Role(self, "ReminderRole", assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"))
            event_bus.grant_put_events_to(self.reminder_role)

        self.step_function = AgentFunction(
            self,
            "Steps",
            handler_code=handler_dir("task_workflow"),
            options=replace(function_options or AgentFunctionOptions(), timeout=options.step_timeout),
        )
        task_table.grant_tasks(self.step_function, event_bus=event_bus)
        self.step_function.add_environment("AGENT_TASK_SLICE_STEPS", str(options.slice_steps))
        self.grant_approvals(self.step_function)
        self.state_machine = self._build_state_machine()
        self.pending_metrics_function: AgentFunction | None = None
        self.pending_metrics_rule: events.Rule | None = None
        self.pending_metrics_dead_letter_queue: sqs.Queue | None = None
        if options.pending_metrics_every is not None:
            self._build_pending_metrics(options.pending_metrics_every, function_options)

    def _build_pending_metrics(self, every: Duration, function_options: AgentFunctionOptions | None) -> None:
        """A schedule invokes a small function that counts pending approvals and the age of the oldest (read-only)."""
        key = self.task_table.encryption_key
        self.pending_metrics_function = emitter = AgentFunction(
            self,
            "PendingMetrics",
            handler_code=handler_dir("approval_metrics"),
            options=companion_options(
                function_options, memory_size=256, timeout=Duration.seconds(60), service_name="approval-metrics"
            ),
        )
        grant_index_query(self.approvals_table, emitter.function, STATUS_INDEX)
        emitter.add_environment("AGENT_APPROVAL_TABLE", self.approvals_table.table_name)
        if key is not None:
            key.grant_decrypt(emitter.function)  # the table's items
            emitter.encrypt_logs(key)
            emitter.acknowledge_key_grants()
            grant_key_to_service(key, "events.amazonaws.com")
        self.pending_metrics_dead_letter_queue = failures = dead_letter_queue(self, "PendingMetricsFailures", encryption_key=key)
        # Invoked asynchronously by the rule: what fails every retry lands in the dead-letter queue (CKV_AWS_116).
        function = default_resource(emitter.function)
        assert isinstance(function, lambda_.CfnFunction)
        function.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(target_arn=failures.queue_arn)
        failures.grant_send_messages(emitter.function)
        unskip_checkov(function, "CKV_AWS_116")
        self.pending_metrics_rule = events.Rule(
            self,
            "PendingMetricsSchedule",
            description="Emit the count and oldest age of pending approvals",
            schedule=events.Schedule.rate(every),
            targets=[
                targets.LambdaFunction(
                    emitter.alias,
                    retry_attempts=2,
                    max_event_age=Duration.seconds(int(every.to_seconds())),
                    dead_letter_queue=failures,
                )
            ],
        )

    # -- wiring ----------------------------------------------------------------------------

    def grant_approvals(self, agent_function: AgentFunction, *, pseudonymizes: bool = False) -> None:
        """Read and decide approvals, append to (never change) the audit trail, and know the settings.

        With ``pseudonymizes`` (the function that serves erasure), an UpdateItem of the audit trail that names only
        the keys and ``actor`` is not denied (:meth:`grant_erasure` allows it); every other change still is."""
        fn = agent_function.function
        grant_table(self.approvals_table, fn, APPROVAL_TABLE_ACTIONS)
        grant_table(self.audit_table, fn, AUDIT_TABLE_ACTIONS)
        denied = [a for a in AUDIT_TABLE_DENIED if not (pseudonymizes and a == "dynamodb:UpdateItem")]
        fn.add_to_role_policy(iam.PolicyStatement(effect=iam.Effect.DENY, actions=denied, resources=[self.audit_table.table_arn]))
        if pseudonymizes:
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    effect=iam.Effect.DENY,
                    actions=["dynamodb:UpdateItem"],
                    resources=[self.audit_table.table_arn],
                    conditions={"ForAnyValue:StringNotEquals": {"dynamodb:Attributes": list(AUDIT_PSEUDONYMIZED_ATTRIBUTES)}},
                )
            )
        if self.task_table.encryption_key is not None:
            self.task_table.encryption_key.grant_encrypt_decrypt(fn)
        o = self.options
        env = {
            "AGENT_APPROVAL_TABLE": self.approvals_table.table_name,
            "AGENT_APPROVAL_AUDIT_TABLE": self.audit_table.table_name,
            "AGENT_APPROVAL_AUDIT_RETENTION_DAYS": str(max(1, int(o.audit_retention.to_days()))),
            "AGENT_APPROVAL_TIMEOUT_SECONDS": str(int(o.decision_timeout.to_seconds())),
            "AGENT_APPROVAL_TIMEOUT_POLICY": o.timeout_policy,
            "AGENT_APPROVAL_APPROVER_GROUP": o.approver_group,
            "AGENT_APPROVAL_GROUPS": json.dumps({k: list(v) for k, v in o.groups.items()}, sort_keys=True),
        }
        if o.escalation_group:
            env["AGENT_APPROVAL_ESCALATION_GROUP"] = o.escalation_group
        if o.allow_self_approval:
            env["AGENT_APPROVAL_ALLOW_SELF_APPROVAL"] = "true"
        if o.webhook_groups and self.webhook_secret is not None:
            env["AGENT_APPROVAL_WEBHOOK_GROUPS"] = json.dumps(list(o.webhook_groups))
            env["AGENT_APPROVAL_WEBHOOK_SECRET"] = self.webhook_secret.secret_arn
            self.webhook_secret.grant_read(fn)
            agent_function.calls_service("secretsmanager")
        if o.reminder_after is not None and self.schedule_group is not None and self.reminder_role is not None:
            env["AGENT_APPROVAL_REMINDER_AFTER_SECONDS"] = str(int(o.reminder_after.to_seconds()))
            env["AGENT_APPROVAL_SCHEDULER_GROUP"] = self.schedule_group.ref
            env["AGENT_APPROVAL_SCHEDULER_ROLE_ARN"] = self.reminder_role.role_arn
            env["AGENT_APPROVAL_EVENT_BUS_ARN"] = self.event_bus.event_bus_arn
            stack = Stack.of(self)
            iam.Grant.add_to_principal(
                grantee=fn,
                actions=["scheduler:CreateSchedule", "scheduler:DeleteSchedule"],
                resource_arns=[
                    stack.format_arn(service="scheduler", resource="schedule", resource_name=f"{self.schedule_group.ref}/*")
                ],
            )
            self.reminder_role.grant_pass_role(fn.grant_principal)
            agent_function.calls_service("scheduler")
            agent_function.acknowledge_policy(
                f"IAM5[Resource::{arn_prefix(self, 'scheduler')}:schedule/<{logical_id(self.schedule_group)}>/*]",
                "Reminder schedules are named by approval id, unknown in advance; only this group's schedules.",
            )
        for name, value in env.items():
            agent_function.add_environment(name, value)
        agent_function.add_health_check("dynamodb", self.approvals_table.table_name)

    def grant_decisions(self, agent_function: AgentFunction) -> None:
        """What the approvals API needs: approvals, audit, and sending the decision to the waiting workflow; and
        BatchGetItem of approvals, which the operator console's timeline reads by the ids of a task's tool calls."""
        self.grant_approvals(agent_function, pseudonymizes=True)
        grant_index_query(self.approvals_table, agent_function.function, STATUS_INDEX)  # GET /approvals lists by status
        grant_table(self.approvals_table, agent_function.function, ("dynamodb:BatchGetItem",))
        self.state_machine.grant_task_response(agent_function.function)
        agent_function.calls_service("states")

    def grant_erasure(self, agent_function: AgentFunction) -> None:
        """Let the function that serves erasure (granted :meth:`grant_decisions`) delete the approvals a principal
        requested (the ``by_requester`` index, DeleteItem) and pseudonymize it in the audit trail (the ``by_actor``
        index, and UpdateItem of ``actor`` only), with the salt's secret."""
        fn = agent_function.function
        grant_index_query(self.approvals_table, fn, REQUESTER_INDEX)
        grant_table(self.approvals_table, fn, ("dynamodb:DeleteItem",))
        grant_index_query(self.audit_table, fn, ACTOR_INDEX)
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"],
                resources=[self.audit_table.table_arn],
                conditions={"ForAllValues:StringEquals": {"dynamodb:Attributes": list(AUDIT_PSEUDONYMIZED_ATTRIBUTES)}},
            )
        )
        agent_function.grant_secret_read(self.erasure_salt)
        agent_function.calls_service("secretsmanager")
        agent_function.add_environment(contract.ERASE_SALT_SECRET_ENV, self.erasure_salt.secret_arn)

    def add_routes(self, api: AgentApi, target: AgentFunction) -> None:
        """``GET /approvals``, ``GET /approvals/{id}``, ``POST /approvals/{id}/decision`` and, with webhook groups,
        ``POST /approvals/{id}/webhook`` on ``api``, served by ``target`` (the async API function)."""
        decision = request_model("DecisionRequest")
        route = api.add_function_route
        route("/approvals", "GET", target.alias, request_parameters={"querystring.status": False}, operation_name="ListApprovals")
        route("/approvals/{approval_id}", "GET", target.alias, operation_name="GetApproval")
        route("/approvals/{approval_id}/decision", "POST", target.alias, request_schema=decision, operation_name="DecideApproval")
        if self.options.webhook_groups:
            route(
                "/approvals/{approval_id}/webhook",
                "POST",
                target.alias,
                operation_name="DecideApprovalByWebhook",
                authenticated_by_function=(
                    "Chat tools cannot sign AWS requests: the function authenticates this webhook with an HMAC-SHA256 "
                    "signature (secret in Secrets Manager), a timestamp tolerance and a replay cache, and answers 401 otherwise."
                ),
            )

    # -- state machine -----------------------------------------------------------------------

    def _build_state_machine(self) -> sfn.StateMachine:
        o = self.options
        alias, function = self.step_function.alias, self.step_function.function
        progress = {
            "done.$": "$.Payload.done",
            "status.$": "$.Payload.status",
            "awaiting_approval.$": "$.Payload.awaiting_approval",
        }

        def invoke(
            name: str,
            action: str,
            extra: dict[str, object] | None = None,
            *,
            result_path: str = "$.progress",
            selector: dict[str, str] = progress,
            pinned: bool = True,
        ) -> Step:
            return agent_step(
                self,
                name,
                alias=alias,
                function=function,
                pinned=pinned,
                payload={**TASK_FIELDS, "action": action, **(extra or {})},
                result_selector=selector,
                result_path=result_path,
                timeout=o.step_timeout,
                retries=o.retries,
            )

        def wait_for_decision(name: str, level: int) -> Step:
            return agent_step(
                self,
                name,
                alias=alias,
                function=function,
                pinned=True,
                integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
                payload={"action": "request_approval", "level": level, **TASK_FIELDS, "task_token": sfn.JsonPath.task_token},
                result_path="$.decision",
                timeout=o.decision_timeout,
                retries=o.retries,
            )

        decision_selector = {
            "approval_id.$": "$.Payload.approval_id",
            "approved.$": "$.Payload.approved",
            "decided_by.$": "$.Payload.decided_by",
            "arguments_hash.$": "$.Payload.arguments_hash",
            "timed_out.$": "$.Payload.timed_out",
        }
        loop = agent_loop(self, invoke)
        resume = invoke("Resume", "resume", {"decision.$": "$.decision"})
        request = wait_for_decision("RequestApproval", 0)
        on_timeout = invoke(
            "ApplyTimeoutPolicy", "approval_timeout", {"level": 0}, result_path="$.decision", selector=decision_selector
        )
        tasks = [loop.start, loop.step, resume, request, on_timeout]
        if o.timeout_policy == "escalate":
            escalated = wait_for_decision("RequestEscalatedApproval", 1)
            on_escalation_timeout = invoke(
                "RejectAfterEscalation", "approval_timeout", {"level": 1}, result_path="$.decision", selector=decision_selector
            )
            escalated.add_catch(on_escalation_timeout, errors=["States.Timeout"], result_path="$.timeout")
            escalated.next(resume)
            on_escalation_timeout.next(resume)
            on_timeout.next(escalated)
            tasks += [escalated, on_escalation_timeout]
        else:
            on_timeout.next(resume)
        request.add_catch(on_timeout, errors=["States.Timeout"], result_path="$.timeout")
        for task in tasks:
            task.add_catch(loop.mark_failed, errors=["States.ALL"], result_path="$.error")
        request.next(resume)
        loop.done.when(sfn.Condition.boolean_equals("$.progress.awaiting_approval", True), request)
        resume.next(loop.done)
        machine, self.log_group = standard_state_machine(
            self,
            loop.start,
            timeout=o.execution_timeout,
            log_retention=o.log_retention,
            encryption_key=self.task_table.encryption_key,
        )
        grant_pinned_invoke(machine, function)
        return machine
