"""AgentMonitoring: every pattern stack gets one dashboard, its alarms with their default thresholds and an SNS
topic; the agent metrics they name are the ones the runtime emits."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from aws_lambda_powertools import Metrics
from moto import mock_aws

from agentrail_constructs import PATTERN_STACKS, AgentMonitoring, MonitoringOptions, StatelessAgent
from agentrail_constructs.monitoring import AGENT_OUTCOMES
from agentrail_runtime import service as service_module
from agentrail_runtime.agent.loop import AgentStatus
from agentrail_runtime.approvals.pending import emit_pending_approval_metrics
from agentrail_runtime.approvals.store import ApprovalStore
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.metering.metrics import APPROVAL_REJECTED, TASK_FAILED
from agentrail_runtime.models.base import ModelError
from agentrail_runtime.service import AgentService

#: Alarm names (the construct ids AgentMonitoring gives them) -> default threshold, for every pattern.
COMMON_ALARMS = {"Api5xxRateAlarm": 1, "ApiP99LatencyAlarm": 10_000, "DailyCostAlarm": 50}


def pattern_template(app: cdk.App, env: cdk.Environment, pattern: str, **kwargs: Any) -> Template:
    stack: cdk.Stack = PATTERN_STACKS[pattern](app, f"{pattern}-monitored", env=env, **kwargs)
    return Template.from_stack(stack)


def alarms(template: Template) -> dict[str, dict[str, Any]]:
    """AgentMonitoring's alarms: logical id (without its hash) -> properties. The canary deployments' rollback alarms
    are test_canary_deployment.py's (their EvalScore has a seam test there)."""
    found = template.find_resources("AWS::CloudWatch::Alarm")
    return {
        re.sub(r"[0-9A-F]{8}$", "", logical_id): resource["Properties"]
        for logical_id, resource in found.items()
        if logical_id.startswith("Monitoring")
    }


def rollback_alarms(template: Template) -> dict[str, dict[str, Any]]:
    """The rollback alarms of the stack's canary deployments."""
    found = template.find_resources("AWS::CloudWatch::Alarm")
    return {logical_id: r["Properties"] for logical_id, r in found.items() if "Deployment" in logical_id}


def alarm(template: Template, name: str) -> dict[str, Any]:
    return alarms(template)[f"Monitoring{name}"]


def dashboard_widgets(template: Template) -> list[dict[str, Any]]:
    """The widgets of the stack's one dashboard, each reference in its body read as ``${Ref}``."""
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(part if isinstance(part, str) else "${Ref}" for part in parts)
    return list(json.loads(text)["widgets"])


def widget_titles(template: Template) -> list[str]:
    return [widget["properties"].get("title", "") for widget in dashboard_widgets(template)]


def search_expressions(template: Template) -> list[str]:
    return [
        metric[0]["expression"]
        for widget in dashboard_widgets(template)
        for metric in widget["properties"].get("metrics", [])
        if isinstance(metric[0], dict) and "SEARCH(" in metric[0].get("expression", "")
    ]


@pytest.fixture(scope="module")
def templates(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> dict[str, Template]:
    return {pattern: pattern_template(app_factory(), stack_env, pattern) for pattern in PATTERN_STACKS}


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_every_pattern_stack_has_one_dashboard_with_the_api_lambda_and_agent_widgets(templates, pattern):
    template = templates[pattern]

    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    titles = widget_titles(template)
    for title in ("API: requests", "API: 4xx and 5xx", "API: latency p50 and p99"):
        assert title in titles
    assert any(t.startswith("Lambda ") and t.endswith(": errors and throttles") for t in titles), titles
    assert any(t.startswith("Lambda ") and t.endswith(": duration and concurrency") for t in titles), titles
    for title in (
        "Agents: input, cached and output tokens",
        "Agents: steps per task",
        "Agents: task outcomes",
        "Agents: cost (USD)",
    ):
        assert title in titles
    # every pattern but the table-less ones (stateless, asgi) has a queue or a table to watch
    assert any(t.startswith(("DLQ ", "DynamoDB ")) for t in titles) or pattern in ("stateless", "asgi")


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_every_pattern_stack_has_the_common_alarms_at_their_default_thresholds_notifying_one_topic(templates, pattern):
    template = templates[pattern]

    template.resource_count_is("AWS::SNS::Topic", 1)
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    for name, threshold in COMMON_ALARMS.items():
        assert alarm(template, name)["Threshold"] == threshold
    for name, properties in alarms(template).items():
        assert properties["AlarmActions"] == [{"Ref": topic}], name
        assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
    rollbacks = rollback_alarms(template)
    assert rollbacks and all(p["AlarmActions"] == [{"Ref": topic}] for p in rollbacks.values()), "a rollback pages too"


@pytest.mark.parametrize(
    ("pattern", "widget", "alarm_prefixes"),
    [
        ("stateful", "DynamoDB Sessions/Table: throttles", ["DynamodbThrottles", "DeadLetters", "Throttles"]),
        ("async", "Step Functions LongTasks: executions started, failed, timed out", ["FailedExecutions", "TimedOutExecutions"]),
        ("async", "DLQ TaskQueue/DeadLetterQueue: depth and age of oldest message", ["DeadLettersTaskqueueDeadletterqueue"]),
        ("multiagent", "Queue BillingQueue/Queue: depth and age of oldest message", ["DeadLettersBillingqueueDeadletterqueue"]),
        ("hierarchical", "Step Functions Supervisor: executions started, failed, timed out", ["FailedExecutionsSupervisor"]),
    ],
)
def test_queues_dead_letters_state_machines_and_tables_each_get_a_widget_and_an_alarm_at_threshold_one(
    templates, pattern, widget, alarm_prefixes
):
    template = templates[pattern]

    assert widget in widget_titles(template)
    for prefix in alarm_prefixes:
        matching = {name: p for name, p in alarms(template).items() if name.startswith(f"Monitoring{prefix}")}
        assert matching, (prefix, sorted(alarms(template)))
        assert {p["Threshold"] for p in matching.values()} == {1}


def test_the_dlq_alarm_fires_on_any_message_and_the_api_alarms_read_5xx_rate_and_p99(templates):
    template = templates["async"]

    dead_letters = alarm(template, "DeadLettersTaskqueueDeadletterqueueAlarm")
    assert (dead_letters["MetricName"], dead_letters["Statistic"]) == ("ApproximateNumberOfMessagesVisible", "Maximum")
    latency = alarm(template, "ApiP99LatencyAlarm")
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("Latency", "p99")
    rate = alarm(template, "Api5xxRateAlarm")
    expression = next(m["Expression"] for m in rate["Metrics"] if "Expression" in m)
    assert expression == "100 * errors / MAX([requests, 1])"
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m} == {"5XXError", "Count"}


def test_props_change_every_threshold(app_factory, stack_env):
    options = MonitoringOptions(
        api_5xx_rate_percent=5,
        api_p99_latency=cdk.Duration.seconds(20),
        lambda_throttles_threshold=3,
        dynamodb_throttles_threshold=4,
        dead_letter_messages_threshold=2,
        failed_executions_threshold=6,
        timed_out_executions_threshold=7,
        daily_cost_threshold_usd=12.5,
    )

    template = pattern_template(app_factory(), stack_env, "async", monitoring_options=options)

    thresholds = {
        "Api5xxRateAlarm": 5,
        "ApiP99LatencyAlarm": 20_000,
        "DailyCostAlarm": 12.5,
        "ThrottlesAsyncagentWorkerAlarm": 3,
        "DynamodbThrottlesTasksTableAlarm": 4,
        "DeadLettersTaskqueueDeadletterqueueAlarm": 2,
        "FailedExecutionsLongtasksStatemachineAlarm": 6,
        "TimedOutExecutionsLongtasksStatemachineAlarm": 7,
    }
    assert {name: alarm(template, name)["Threshold"] for name in thresholds} == thresholds


def test_an_alarm_email_subscribes_to_the_topic_and_no_cost_threshold_drops_the_cost_alarm(app_factory, stack_env):
    options = MonitoringOptions(alarm_email="oncall@example.com", daily_cost_threshold_usd=None)

    template = pattern_template(app_factory(), stack_env, "stateless", monitoring_options=options)

    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"})
    assert "MonitoringDailyCostAlarm" not in alarms(template)


def test_an_existing_alarm_topic_is_notified_and_no_topic_is_created(app_factory, stack_env):
    app = app_factory()
    arn = "arn:aws:sns:us-east-1:123456789012:oncall"
    topics = cdk.Stack(app, "Topics", env=stack_env)
    cdk.CfnWaitConditionHandle(topics, "Placeholder")  # a stack of your own, where the topic lives
    topic = sns.Topic.from_topic_arn(topics, "Oncall", arn)

    stack: cdk.Stack = PATTERN_STACKS["stateless"](app, "stateless-existing-topic", env=stack_env, existing_alarm_topic=topic)
    template = Template.from_stack(stack)

    template.resource_count_is("AWS::SNS::Topic", 0)
    every_alarm = {**alarms(template), **rollback_alarms(template)}
    assert {name: p["AlarmActions"] for name, p in every_alarm.items()} == {name: [arn] for name in every_alarm}


def test_an_existing_alarm_topic_and_an_alarm_email_together_fail_naming_the_fix(stack):
    topic = sns.Topic(stack, "Oncall")
    StatelessAgent(stack, "Agent")

    with pytest.raises(
        ValueError, match=re.escape("pass either existing_alarm_topic or MonitoringOptions(alarm_email=...), not both")
    ):
        AgentMonitoring(stack, "Monitoring", existing_alarm_topic=topic, options=MonitoringOptions(alarm_email="a@example.com"))


def test_monitoring_false_leaves_no_dashboard_alarm_or_topic(app_factory, stack_env):
    template = pattern_template(app_factory(), stack_env, "stateless", monitoring=False)

    for resource_type in ("AWS::CloudWatch::Dashboard", "AWS::SNS::Topic"):
        template.resource_count_is(resource_type, 0)
    assert alarms(template) == {}
    # the canary's rollback alarms stay (CodeDeploy reads them), notifying no one
    assert rollback_alarms(template) and all("AlarmActions" not in p for p in rollback_alarms(template).values())


def test_monitoring_options_with_monitoring_false_fail_naming_the_fix(app_factory, stack_env):
    with pytest.raises(ValueError, match="drop them, or drop monitoring=False"):
        pattern_template(app_factory(), stack_env, "stateless", monitoring=False, monitoring_options=MonitoringOptions())


def test_the_hardened_profile_encrypts_the_alarm_topic_with_the_stack_key_and_lets_cloudwatch_use_it(
    app_factory, stack_env, hardened_lookups
):
    app = app_factory(context=hardened_lookups)
    stack: cdk.Stack = PATTERN_STACKS["stateless"](app, "stateless-hardened", env=stack_env, security="hardened")
    template = Template.from_stack(stack)

    (key,) = template.find_resources("AWS::KMS::Key")
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.object_like({"Fn::GetAtt": [key, "Arn"]})})
    policy = template.find_resources("AWS::KMS::Key")[key]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in policy)


# -- the seam: every metric a widget or an alarm names is one a real run emits ------------------------------------------


def function_environments(template: Template) -> list[dict[str, str]]:
    return [
        f["Properties"]["Environment"]["Variables"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if "POWERTOOLS_SERVICE_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]


def emitted_records(template: Template) -> list[dict[str, Any]]:
    """The EMF records that real runs write in each function of ``template`` (its namespace and service): the demo
    agent on the local model with its tools, a run whose model fails, a rejected approval, and the approval-metrics
    emitter over an approvals table on moto."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, mock_aws(), contextlib.redirect_stdout(out):
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="approvals",
            KeySchema=[{"AttributeName": "approval_id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "approval_id", "AttributeType": "S"},
                {"AttributeName": "status", "AttributeType": "S"},
                {"AttributeName": "requested_at", "AttributeType": "N"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_status",
                    "KeySchema": [
                        {"AttributeName": "status", "KeyType": "HASH"},
                        {"AttributeName": "requested_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for environment in function_environments(template):
            metrics = Metrics(
                namespace=environment["POWERTOOLS_METRICS_NAMESPACE"], service=environment["POWERTOOLS_SERVICE_NAME"]
            )
            patch.setattr(service_module, "metrics", metrics)
            agents = AgentService(definition=demo_definition, settings=RuntimeSettings())
            agents.run("Calculate (12 + 30) * 2 and convert 10 km to mi")
            agents.emit_rejected()
            patch.setattr(agents, "model", lambda requested=None: BrokenModel())
            with pytest.raises(ModelError):
                agents.run("Calculate 6 * 7")  # counted as failed, and raised
            emit_pending_approval_metrics(ApprovalStore("approvals", client=dynamodb), metrics)
    return [r for r in (json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")) if "_aws" in r]


class BrokenModel:
    name = "local"

    def converse(self, **_: object) -> None:
        raise ModelError("the model is unreachable", model="local")


@dataclass(frozen=True)
class MetricReference:
    """A metric a widget or an alarm names: namespace, name, dimension names, and their values when it fixes them."""

    namespace: str
    name: str
    dimensions: tuple[str, ...]
    values: tuple[tuple[str, str], ...] = ()
    where: str = ""


def named_metrics(template: Template) -> list[MetricReference]:
    """Every non-AWS metric the dashboard's widgets (SEARCH expressions, plain metrics) and the alarms name."""
    found: list[MetricReference] = []
    for widget in dashboard_widgets(template):
        title = widget["properties"].get("title", "")
        for entry in widget["properties"].get("metrics", []):
            if isinstance(entry[0], dict):
                expression = entry[0].get("expression", "")
                for schema, name in re.findall(r'\{([^}]+)\} MetricName="([^"]+)"', expression):
                    namespace, *dimensions = schema.split(",")
                    found.append(MetricReference(namespace, name, tuple(dimensions), where=title))
            else:
                plain = [part for part in entry if not isinstance(part, dict)]
                namespace, name, *pairs = plain
                values = tuple(zip(pairs[::2], pairs[1::2], strict=True))
                found.append(MetricReference(namespace, name, tuple(k for k, _ in values), values, where=title))
    for alarm_name, properties in alarms(template).items():
        stats = (
            [properties]
            if "MetricName" in properties
            else [m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m]
        )
        for metric in stats:
            values = tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
            found.append(
                MetricReference(metric["Namespace"], metric["MetricName"], tuple(k for k, _ in values), values, alarm_name)
            )
    return [ref for ref in found if not ref.namespace.startswith("AWS/")]


def emitted_as(reference: MetricReference, records: list[dict[str, Any]]) -> bool:
    for record in records:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            names = {m["Name"] for m in directive["Metrics"]}
            if directive["Namespace"] != reference.namespace or reference.name not in names:
                continue
            if any(set(dims) == set(reference.dimensions) for dims in directive["Dimensions"]) and all(
                record.get(key) == value for key, value in reference.values
            ):
                return True
    return False


#: ``Tasks_<status>`` of statuses a short run does not reach; their names are kept equal to ``AgentStatus`` below,
#: and their schema is ``Tasks_completed``'s.
UNREACHED_OUTCOMES = {f"Tasks_{s.value}" for s in AgentStatus} - {"Tasks_completed"}


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_every_metric_a_widget_or_an_alarm_names_is_emitted_by_a_real_run_with_that_namespace_and_dimensions(templates, pattern):
    template = templates[pattern]
    records = emitted_records(template)

    references = named_metrics(template)
    missing = [
        ref
        for ref in references
        if not emitted_as(ref if ref.name not in UNREACHED_OUTCOMES else replace(ref, name="Tasks_completed"), records)
    ]

    assert {ref.name for ref in references} >= {"CostUSD", "StepLatency", "TaskLatency", "ToolCalls", "Tasks_failed"}
    assert missing == []


def test_the_outcomes_graphed_are_every_agent_status_and_failed_and_rejected(templates):
    searched = {ref.name for ref in named_metrics(templates["stateless"]) if ref.name.startswith("Tasks_")}

    assert searched == {f"Tasks_{outcome}" for outcome in AGENT_OUTCOMES}
    assert set(AGENT_OUTCOMES) == {s.value for s in AgentStatus} | {TASK_FAILED, APPROVAL_REJECTED}


def test_a_stack_with_approvals_graphs_them_and_alarms_on_an_approval_pending_for_24_hours(templates):
    template = templates["async"]

    pending_age = alarm(template, "ApprovalPendingAgeAlarm")
    assert (pending_age["MetricName"], pending_age["Statistic"], pending_age["Threshold"]) == (
        "OldestPendingApprovalAgeSeconds",
        "Maximum",
        86_400,
    )
    assert pending_age["Period"] == 600  # two emissions (every 5 minutes) in each period
    assert any(t.startswith("Approvals ") and "pending" in t for t in widget_titles(template))
    template.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(5 minutes)", "State": "ENABLED"})


def test_approval_pending_age_is_a_prop(app_factory, stack_env):
    options = MonitoringOptions(approval_pending_age=cdk.Duration.hours(4))

    template = pattern_template(app_factory(), stack_env, "async", monitoring_options=options)

    assert alarm(template, "ApprovalPendingAgeAlarm")["Threshold"] == 4 * 3600


def test_a_stack_without_approvals_has_no_pending_approval_alarm(templates):
    assert not [name for name in alarms(templates["stateless"]) if "ApprovalPending" in name]


def test_the_daily_cost_alarm_sums_the_cost_of_the_utc_calendar_day_on_a_wall_clock_window(templates):
    cost = alarm(templates["stateless"], "DailyCostAlarm")

    stats = [m["MetricStat"] for m in cost["Metrics"] if "MetricStat" in m]
    assert {(s["Stat"], s["Period"]) for s in stats} == {("Sum", 86_400)}
    # CloudWatch aligns a wall-clock window of a 1-day period to midnight of its time zone (PutMetricAlarm's
    # EvaluationWindow); without one the alarm would slide over the last 24 hours.
    assert cost["EvaluationWindow"] == {"WallClockWindow": {"Timezone": "UTC"}}
    assert next(m["Expression"] for m in cost["Metrics"] if "Expression" in m) == "FILL(cost0, 0)"


def test_the_dashboard_graphs_latency_tool_calls_and_the_tool_success_rate(templates):
    titles = widget_titles(templates["stateless"])
    for title in (
        "Agents: step and task latency p50 and p99 (ms)",
        "Agents: tool calls by tool and outcome",
        "Agents: tool success rate (%)",
    ):
        assert title in titles
    [rate] = [
        metric[0]["expression"]
        for widget in dashboard_widgets(templates["stateless"])
        if widget["properties"].get("title") == "Agents: tool success rate (%)"
        for metric in widget["properties"]["metrics"]
    ]
    assert rate.startswith("100 * SUM(SEARCH(") and 'outcome="success"' in rate and 'NOT outcome="pending_approval"' in rate
