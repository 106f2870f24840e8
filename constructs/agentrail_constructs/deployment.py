"""Canary deployments of a ``live`` alias: CodeDeploy shifts traffic to a new version step by step, a pre-traffic hook
runs the agent's smoke evals first, and alarms on errors, p99 latency and the eval score roll back automatically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from agentrail_constructs.nag import acknowledge, default_resource, logical_id
from agentrail_constructs.shadow import SHADOW_WORKER_HANDLER

#: The metric the runtime's pre-traffic hook (``agentrail_runtime.evals.canary``) and the shadow report publish: the
#: mean score (0 to 1) of the smoke cases, namespace the function's ``metrics_namespace``, dimension ``service`` only.
#: A seam test compares these with what the hook emits.
EVAL_SCORE_METRIC = "EvalScore"
EVAL_SCORE_DIMENSIONS = ("service",)
#: The handler folder of the pre-traffic hook.
PRE_TRAFFIC_HOOK_HANDLER = "canary_hook"
#: Handlers (folders under handlers/agentrail_handlers) that run no agent: no model to call, no secret of the agent,
#: no version to compute (they stamp the one they are given), no Bedrock prompt to read, no guardrail to apply. The
#: orchestrator holds the router's definition only to complete tasks from the specialists' outcomes.
AGENTLESS_HANDLERS = frozenset(
    {
        "session_cleanup",
        "task_notifier",
        "approval_metrics",
        "orchestrator",
        "stream_authorizer",
        "stream_socket",
        SHADOW_WORKER_HANDLER,
    }
)
#: Handlers that serve no agent traffic: no agent metrics, no evals to gate on (the pre-traffic hook runs the agent's
#: evals, so it loads the definition, but it gates the others).
NO_AGENT_HANDLERS = AGENTLESS_HANDLERS | {PRE_TRAFFIC_HOOK_HANDLER}
#: The strategies ``-c canary=<name>`` names.
STRATEGIES: dict[str, codedeploy.ILambdaDeploymentConfig] = {
    "canary": codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES,
    "linear": codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_1_MINUTE,
    "all-at-once": codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE,
}


@dataclass(frozen=True, kw_only=True)
class DeploymentOptions:
    """How a new version of a function reaches its ``live`` alias: through a CodeDeploy deployment group that shifts
    traffic by ``strategy`` and rolls back when an alarm fires or the pre-traffic hook fails."""

    strategy: codedeploy.ILambdaDeploymentConfig = field(
        default_factory=lambda: codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES
    )
    """``LambdaDeploymentConfig.CANARY_*``, ``LINEAR_*``, ``ALL_AT_ONCE`` or your own. Default: canary, 10% of the
    traffic for 5 minutes, then all of it."""
    errors_threshold: int = 1
    """Roll back when the alias's function errors reach this in one ``alarm_period``. Default: 1."""
    p99_latency: Duration | None = None
    """Roll back when the alias's p99 duration in one ``alarm_period`` reaches this. Default: 90% of the function's
    timeout."""
    min_eval_score: float = 0.8
    """The lowest ``EvalScore`` (mean score of the smoke cases, 0 to 1): the hook fails the deployment below it, and
    the alarm on the metric rolls back when the hook or the shadow report publishes less. Default: 0.8."""
    alarm_period: Duration = field(default_factory=lambda: Duration.minutes(1))
    """Period of the rollback alarms. Default: 1 minute."""
    pre_traffic_hook: bool = True
    """Run the agent's smoke evals (cases tagged ``smoke`` in ``evals_dir/<agent>/*.jsonl``) against the new version
    before any traffic reaches it. Functions that run no agent never get one. Default: true."""
    evals_dir: str | Path | None = None
    """The datasets folder shipped with the hook (an ``evals`` layer, at ``/opt/evals``). Default: ``evals/`` in the
    current directory (the CDK app's folder); without one, no hook, and a synth warning says so."""

    def validate(self) -> None:
        """Fail at synth with a message that names the fix."""
        if not 0 <= self.min_eval_score <= 1:
            raise ValueError(f"deployment_options.min_eval_score must be between 0 and 1, got {self.min_eval_score}")
        if self.errors_threshold < 1:
            raise ValueError(f"deployment_options.errors_threshold must be at least 1, got {self.errors_threshold}")
        if self.p99_latency is not None and self.p99_latency.to_milliseconds() < 1:
            raise ValueError("deployment_options.p99_latency must be at least 1 ms, or None for 90% of the timeout")
        if self.alarm_period.to_seconds() < 60:
            raise ValueError("deployment_options.alarm_period must be at least 1 minute")

    def datasets(self) -> Path | None:
        """The datasets folder the hooks ship; None when the default ``evals/`` does not exist (no hook then).

        Raises
        ------
        ValueError
            When ``evals_dir`` names a folder that does not exist.
        """
        if self.evals_dir is None:
            default = Path.cwd() / "evals"
            return default.resolve() if default.is_dir() else None
        path = Path(self.evals_dir)
        if not path.is_dir():
            raise ValueError(
                f"DeploymentOptions(evals_dir={str(path)!r}) is not a folder: point it at your evals/<agent>/*.jsonl "
                "with cases tagged smoke, or pass DeploymentOptions(pre_traffic_hook=False)"
            )
        return path.resolve()


#: The default of ``AgentFunctionOptions.deployment_options`` and ``PatternStack(deployment_options=...)``: a function
#: left at it takes its stack's options (a PatternStack's), else these.
DEFAULT_DEPLOYMENT = DeploymentOptions()


def deployment_options_for(scope: Construct, chosen: DeploymentOptions | None) -> DeploymentOptions | None:
    """What a function deploys with: ``chosen``, unless it is the default and the stack says otherwise."""
    if chosen is not DEFAULT_DEPLOYMENT:
        return chosen
    stack_options = getattr(Stack.of(scope), "deployment_options", DEFAULT_DEPLOYMENT)
    return stack_options if stack_options is None or isinstance(stack_options, DeploymentOptions) else DEFAULT_DEPLOYMENT


def strategy_named(name: str) -> DeploymentOptions | None:
    """``-c canary=<name>``: ``canary``, ``linear``, ``all-at-once``, or ``off`` (no deployment group)."""
    if name == "off":
        return None
    if name not in STRATEGIES:
        raise ValueError(f"canary must be one of {', '.join([*STRATEGIES, 'off'])}, got {name!r}")
    return DeploymentOptions(strategy=STRATEGIES[name])


class CanaryDeployment(Construct):
    """A CodeDeploy deployment group on a ``live`` alias, with its rollback alarms and pre-traffic hook.

    Parameters
    ----------
    alias:
        The alias whose version changes go through CodeDeploy.
    service_name:
        The function's ``service`` metric dimension (where the hook publishes ``EvalScore``).
    metrics_namespace:
        The function's metrics namespace.
    timeout:
        The function's timeout (the default p99 latency threshold is 90% of it).
    options:
        See :class:`DeploymentOptions`.
    pre_hook:
        The pre-traffic hook function, or None for none.

    Attributes
    ----------
    deployment_group, alarms (by purpose: ``errors``, ``p99-latency``, ``eval-score``), pre_hook
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alias: lambda_.Alias,
        service_name: str,
        metrics_namespace: str,
        timeout: Duration,
        options: DeploymentOptions,
        pre_hook: lambda_.IFunction | None,
    ) -> None:
        super().__init__(scope, construct_id)
        period = options.alarm_period
        latency = options.p99_latency or Duration.millis(int(timeout.to_milliseconds() * 0.9))
        self.pre_hook = pre_hook
        self.alarms: dict[str, cloudwatch.Alarm] = {
            "errors": alias.metric_errors(period=period, statistic="Sum").create_alarm(
                self,
                "ErrorsAlarm",
                threshold=options.errors_threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"{alias.node.path}: rolls a deployment back on function errors",
            ),
            "p99-latency": alias.metric_duration(period=period, statistic="p99").create_alarm(
                self,
                "P99LatencyAlarm",
                threshold=latency.to_milliseconds(),
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"{alias.node.path}: rolls a deployment back on a p99 duration of {latency.to_milliseconds()} ms",
            ),
            "eval-score": cloudwatch.Metric(
                namespace=metrics_namespace,
                metric_name=EVAL_SCORE_METRIC,
                dimensions_map={"service": service_name},
                period=period,
                statistic="Minimum",
            ).create_alarm(
                self,
                "EvalScoreAlarm",
                threshold=options.min_eval_score,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=(
                    f"{alias.node.path}: rolls a deployment back when the eval score (pre-traffic hook, shadow report) "
                    f"falls below {options.min_eval_score}"
                ),
            ),
        }
        self.deployment_group = codedeploy.LambdaDeploymentGroup(
            self,
            "DeploymentGroup",
            alias=alias,
            deployment_config=options.strategy,
            alarms=list(self.alarms.values()),
            pre_hook=pre_hook,
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
        acknowledge(
            default_resource(self.deployment_group.role),
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]",
            "CodeDeploy's own service role for Lambda deployments: it reads the alarms, updates the alias and invokes "
            "the hooks of this deployment group only (the Limited policy, not AWSCodeDeployRoleForLambda).",
        )
        if pre_hook is not None:
            policy = self.deployment_group.role.node.try_find_child("DefaultPolicy")
            assert policy is not None
            acknowledge(
                default_resource(policy),
                f"IAM5[Resource::<{logical_id(pre_hook)}.Arn>:*]",
                "CDK's invoke grant on the pre-traffic hook: the hook function and its versions, and nothing else.",
            )


__all__ = [
    "AGENTLESS_HANDLERS",
    "DEFAULT_DEPLOYMENT",
    "EVAL_SCORE_DIMENSIONS",
    "EVAL_SCORE_METRIC",
    "NO_AGENT_HANDLERS",
    "PRE_TRAFFIC_HOOK_HANDLER",
    "STRATEGIES",
    "CanaryDeployment",
    "DeploymentOptions",
    "deployment_options_for",
    "strategy_named",
]
