"""What every agent workflow (LongTaskWorkflow, ApprovalWorkflow, HierarchicalAgents) shares: the limits, one
Lambda step with its retries, and a traced Standard state machine whose logs never hold execution data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from aws_cdk import Aws, Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as sfn_tasks
from constructs import Construct

from agentrail_constructs.contract import contract
from agentrail_constructs.nag import acknowledge, default_resource, logical_id
from agentrail_constructs.storage import log_group as storage_log_group

#: Errors Lambda documents as transient for a synchronous invoke from Step Functions, plus throttling.
LAMBDA_TRANSIENT_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
#: Raised by the runtime when a model provider keeps throttling or is down; worth retrying later.
MODEL_TRANSIENT_ERRORS = contract.MODEL_TRANSIENT_ERRORS
#: Raised by the runtime when EventBridge refused a task's event; the event waits in the task's outbox, and a
#: retry of the step publishes it.
EVENT_TRANSIENT_ERRORS = (contract.TASK_EVENT_NOT_PUBLISHED_ERROR,)
#: Retries of Lambda's (and the event bus's) transient errors, and of the model's.
SERVICE_RETRY_ATTEMPTS = 6
MODEL_RETRY_ATTEMPTS = 4
#: Step Functions' bounds on a retrier's IntervalSeconds and MaxDelaySeconds.
RETRY_INTERVAL_LIMIT = 99_999_999
RETRY_MAX_DELAY_LIMIT = 31_622_401
#: A Standard execution ends at one year whatever its TimeoutSeconds says, and that end cannot be caught.
STANDARD_WORKFLOW_LIMIT = Duration.days(365)
#: Lambda's maximum timeout: one workflow step is one invocation.
LAMBDA_TIMEOUT_LIMIT = Duration.minutes(15)
#: What every step is told: the task, and the correlation id its logs carry.
TASK_FIELDS = {"task_id.$": "$.task_id", "correlation_id.$": "$.correlation_id"}


@dataclass(frozen=True, kw_only=True)
class RetryOptions:
    """How each Lambda step of a workflow retries what is worth retrying: Lambda's transient errors and a task
    event the bus refused (up to 6 retries), the model's throttling and outages (up to 4).

    The n-th retry waits a random time (full jitter) up to ``interval * 2**(n - 1)``, capped at ``max_delay``.
    Shorten them in your tests: a workflow that Step Functions runs locally (moto, Step Functions Local) really
    sleeps between retries. ``RetryOptions(service_interval=Duration.seconds(1), model_interval=Duration.seconds(1),
    max_delay=Duration.seconds(1))`` keeps every wait under a second.
    """

    service_interval: Duration = field(default_factory=lambda: Duration.seconds(2))
    """Before the first retry of Lambda's transient errors or a refused task event (whole seconds). Default: 2 seconds."""
    model_interval: Duration = field(default_factory=lambda: Duration.seconds(10))
    """Before the first retry of the model's throttling or outage (whole seconds). Default: 10 seconds."""
    max_delay: Duration | None = None
    """The longest any one wait may grow to (whole seconds). Default: none, the waits double each retry."""

    def validate(self, owner: str) -> None:
        """Step Functions' bounds, in whole seconds; messages name ``owner``'s option."""
        for name, value, limit in (
            ("service_interval", self.service_interval, RETRY_INTERVAL_LIMIT),
            ("model_interval", self.model_interval, RETRY_INTERVAL_LIMIT),
            ("max_delay", self.max_delay, RETRY_MAX_DELAY_LIMIT),
        ):
            if value is None:
                continue
            seconds = value.to_seconds(integral=False)
            if seconds != int(seconds) or not 1 <= seconds <= limit:
                raise ValueError(f"{owner}.retries.{name} must be a whole number of seconds between 1 and {limit}")


def validate_workflow(
    owner: str,
    *,
    task_types: Sequence[str],
    execution_timeout: Duration,
    step_timeout: Duration,
    slice_steps: int | None = None,
    retries: RetryOptions | None = None,
) -> None:
    """The limits every agent workflow shares; messages name ``owner``'s option."""
    if retries is not None:
        retries.validate(owner)
    if not task_types:
        raise ValueError(f"{owner}.task_types must name at least one task type")
    if step_timeout.to_seconds() > LAMBDA_TIMEOUT_LIMIT.to_seconds():
        raise ValueError("step_timeout cannot exceed Lambda's 15 minutes")
    if execution_timeout.to_seconds() > STANDARD_WORKFLOW_LIMIT.to_seconds():
        raise ValueError("execution_timeout cannot exceed a Standard workflow's 1-year limit")
    if slice_steps is not None and not 1 <= slice_steps <= 100:
        raise ValueError("slice_steps must be between 1 and 100")


def check_within_retention(owner: str, *, execution_timeout: Duration, retention_days: int) -> None:
    """Refuse a workflow that may run longer than its task's record lives.

    A task's record expires (TTL) ``retention_days`` after it was created unless it finishes first, so an
    execution still running then would find its task, checkpoint and outbox gone. ``owner`` names the options.

    Raises
    ------
    ValueError
        When ``execution_timeout`` is longer than ``retention_days``, naming both fixes.
    """
    if execution_timeout.to_seconds() > retention_days * 86_400:
        retention = f"{retention_days} day{'s' if retention_days != 1 else ''}"
        raise ValueError(
            f"{owner}.execution_timeout ({execution_timeout.to_human_string()}) is longer than the task table's retention "
            f"({retention}): a task's record would expire while its execution still runs; raise "
            "TaskTableOptions(retention=...) or lower execution_timeout"
        )


def lambda_step(
    scope: Construct,
    construct_id: str,
    function: lambda_.IFunction,
    *,
    payload: Mapping[str, object],
    timeout: Duration,
    result_path: str | None = None,
    result_selector: Mapping[str, str] | None = None,
    payload_response_only: bool = False,
    integration_pattern: sfn.IntegrationPattern | None = None,
    retries: RetryOptions | None = None,
) -> sfn_tasks.LambdaInvoke:
    """One invocation of ``function`` (pass the ``live`` alias) that ends after ``timeout``.

    It retries Lambda's documented transient errors and throttling, and a task
    event the bus refused, then the model's transient failures, each with full
    jitter, as ``retries`` (default: ``RetryOptions()``) says; Step Functions'
    blanket service retries are off, so nothing else is retried.
    """
    retries = retries or RetryOptions()
    task = sfn_tasks.LambdaInvoke(
        scope,
        construct_id,
        lambda_function=function,
        integration_pattern=integration_pattern,
        payload=sfn.TaskInput.from_object(dict(payload)),
        payload_response_only=payload_response_only,
        result_selector=dict(result_selector) if result_selector is not None else None,
        result_path=result_path,
        retry_on_service_exceptions=False,
        task_timeout=sfn.Timeout.duration(timeout),
    )
    _add_retries(task, retries)
    return task


#: Where an execution keeps the version of its step function that its Start step ran (Lambda's ``ExecutedVersion``
#: through the ``live`` alias): every later step invokes that version, so an execution that started on version N
#: finishes on N even after a deployment moves the alias.
PINNED = "$.pinned"
PINNED_VERSION = f"{PINNED}.version"
#: What the Start step adds to its result selector, and the Pass state copies to :data:`PINNED_VERSION`.
EXECUTED_VERSION_SELECTOR = {"version.$": "$.ExecutedVersion"}

#: A step of a workflow: a LambdaInvoke through the ``live`` alias, or a pinned one (a CustomState).
Step = sfn_tasks.LambdaInvoke | sfn.CustomState


def pin_version(scope: Construct, *, version_path: str) -> sfn.Pass:
    """The ``PinVersion`` Pass state: copies the version the first step ran (at ``version_path``) to
    :data:`PINNED_VERSION`, which every later pinned step invokes."""
    return sfn.Pass(scope, "PinVersion", parameters={"version.$": version_path}, result_path=PINNED)


def pinned_lambda_step(
    scope: Construct,
    construct_id: str,
    function: lambda_.IFunction,
    *,
    payload: Mapping[str, object],
    timeout: Duration,
    result_path: str | None = None,
    result_selector: Mapping[str, str] | None = None,
    integration_pattern: sfn.IntegrationPattern | None = None,
    retries: RetryOptions | None = None,
) -> sfn.CustomState:
    """:func:`lambda_step` on the version of ``function`` (the unqualified function, not its alias) at
    :data:`PINNED_VERSION`: ``Qualifier.$`` in the task's parameters. A CustomState, since LambdaInvoke takes only a
    fixed qualifier (and that prop is deprecated); the state machine's role needs ``grant_invoke`` on ``function``."""
    waits = integration_pattern == sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN
    state: dict[str, object] = {
        "Type": "Task",
        "Resource": f"arn:{Aws.PARTITION}:states:::lambda:invoke{'.waitForTaskToken' if waits else ''}",
        "Parameters": {
            "FunctionName": function.function_arn,
            "Qualifier.$": PINNED_VERSION,
            "Payload": sfn.FieldUtils.render_object(dict(payload)),
        },
        "TimeoutSeconds": int(timeout.to_seconds()),
    }
    if result_selector is not None:
        state["ResultSelector"] = dict(result_selector)
    if result_path is not None:
        state["ResultPath"] = result_path
    task = sfn.CustomState(scope, construct_id, state_json=state)
    _add_retries(task, retries or RetryOptions())
    return task


def _add_retries(task: sfn_tasks.LambdaInvoke | sfn.CustomState, retries: RetryOptions) -> None:
    task.add_retry(
        errors=[*LAMBDA_TRANSIENT_ERRORS, *EVENT_TRANSIENT_ERRORS],
        interval=retries.service_interval,
        max_attempts=SERVICE_RETRY_ATTEMPTS,
        backoff_rate=2,
        max_delay=retries.max_delay,
        jitter_strategy=sfn.JitterType.FULL,
    )
    task.add_retry(
        errors=list(MODEL_TRANSIENT_ERRORS),
        interval=retries.model_interval,
        max_attempts=MODEL_RETRY_ATTEMPTS,
        backoff_rate=2,
        max_delay=retries.max_delay,
        jitter_strategy=sfn.JitterType.FULL,
    )


def agent_step(
    scope: Construct,
    construct_id: str,
    *,
    alias: lambda_.IFunction,
    function: lambda_.IFunction,
    pinned: bool,
    payload: Mapping[str, object],
    timeout: Duration,
    result_path: str | None = None,
    result_selector: Mapping[str, str] | None = None,
    integration_pattern: sfn.IntegrationPattern | None = None,
    retries: RetryOptions | None = None,
) -> Step:
    """A step of a workflow's step function: pinned to the version the execution started on (``function``, qualified
    by :data:`PINNED_VERSION`), or through its ``alias``, recording the version that ran (``$.ExecutedVersion``) in
    the result beside ``result_selector``'s fields."""
    if pinned:
        return pinned_lambda_step(
            scope,
            construct_id,
            function,
            payload=payload,
            timeout=timeout,
            result_path=result_path,
            result_selector=result_selector,
            integration_pattern=integration_pattern,
            retries=retries,
        )
    return lambda_step(
        scope,
        construct_id,
        alias,
        payload=payload,
        timeout=timeout,
        result_path=result_path,
        result_selector={**(result_selector or {}), **EXECUTED_VERSION_SELECTOR},
        integration_pattern=integration_pattern,
        retries=retries,
    )


def grant_pinned_invoke(machine: sfn.StateMachine, function: lambda_.IFunction) -> None:
    """Let ``machine`` invoke every version of ``function`` (its pinned steps), acknowledged for cdk-nag."""
    function.grant_invoke(machine)
    policy = machine.role.node.try_find_child("DefaultPolicy")
    assert policy is not None
    acknowledge(
        default_resource(policy),
        f"IAM5[Resource::<{logical_id(function)}.Arn>:*]",
        "An execution invokes the version of its step function it started on (Qualifier from $.ExecutedVersion), "
        "known only at run time: the versions of that one function, nothing else.",
    )


def task_failed(scope: Construct) -> sfn.Fail:
    """Where a failed task ends, after its ``MarkFailed`` step recorded the cause on the task."""
    return sfn.Fail(scope, "TaskFailed", error="AgentTaskFailed", cause="The task failed; its record holds the cause.")


class AgentLoop(NamedTuple):
    """Start → PinVersion → Step until ``$.progress.done`` → Finished, and MarkFailed → TaskFailed for the caller's
    catches. Start and MarkFailed run through the ``live`` alias; Step (and the caller's other steps) on the version
    Start ran (:data:`PINNED_VERSION`). ``start`` is the loop's first state, already chained to ``done``."""

    start: Step
    step: Step
    done: sfn.Choice
    mark_failed: sfn.Chain


def agent_loop(scope: Construct, invoke: Callable[..., Step]) -> AgentLoop:
    """The loop of a checkpointed agent: ``invoke(name, action)`` (and ``invoke(name, action, extra_payload)``)
    builds each step, pinned to :data:`PINNED_VERSION` unless called with ``pinned=False`` (then through the alias,
    recording ``ExecutedVersion``); the caller adds catches, and branches to ``done`` before its default (another
    Step)."""
    failed = task_failed(scope)
    # MarkFailed only records the failure on the task; a Start that failed has pinned no version yet.
    mark_failed = invoke("MarkFailed", "fail", {"error.$": "$.error"}, pinned=False).next(failed)
    start = invoke("Start", "start", pinned=False)
    pin = pin_version(scope, version_path="$.progress.version")
    step = invoke("Step", "step")
    done = sfn.Choice(scope, "Done?")
    done.when(sfn.Condition.boolean_equals("$.progress.done", True), sfn.Succeed(scope, "Finished"))
    done.otherwise(step)
    step.next(done)
    start.next(pin).next(done)
    return AgentLoop(start, step, done, mark_failed)


def standard_state_machine(
    scope: Construct,
    definition: sfn.IChainable,
    *,
    timeout: Duration,
    log_retention: logs.RetentionDays,
    encryption_key: kms.IKey | None = None,
) -> tuple[sfn.StateMachine, logs.LogGroup]:
    """A Standard state machine with a timeout, X-Ray tracing, and ALL events logged without execution data
    (prompts and answers stay out of the logs), into a log group encrypted with ``encryption_key`` when given.

    Returns
    -------
    The state machine and its execution log group.
    """
    log_group = storage_log_group(scope, "ExecutionLogs", retention=log_retention, encryption_key=encryption_key)
    machine = sfn.StateMachine(
        scope,
        "StateMachine",
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        state_machine_type=sfn.StateMachineType.STANDARD,
        timeout=timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
    )
    policy = machine.role.node.try_find_child("DefaultPolicy")
    assert policy is not None
    acknowledge(
        default_resource(policy),
        "IAM5[Resource::*]",
        "X-Ray tracing and CloudWatch Logs delivery for Step Functions support no resource-level permissions.",
    )
    # CDK adds DependsOn on the role next to the GetAtt that already orders it (cfn-lint W3005).
    default_resource(machine).add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
    return machine, log_group
