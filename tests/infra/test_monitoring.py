"""AgentMonitoring: every pattern stack gets one dashboard, its alarms with their default thresholds and an SNS
topic; the agent metrics they name are the ones the runtime emits."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from aws_lambda_powertools import Metrics

from agentrail_constructs import PATTERN_STACKS, AgentMonitoring, MonitoringOptions, StatelessAgent
from agentrail_constructs.monitoring import AGENT_OUTCOMES
from agentrail_runtime.agent.loop import AgentStatus
from agentrail_runtime.metering.metrics import emit_task_metrics
from agentrail_runtime.models.base import Usage

#: Alarm names (the construct ids AgentMonitoring gives them) -> default threshold, for every pattern.
COMMON_ALARMS = {"Api5xxRateAlarm": 1, "ApiP99LatencyAlarm": 10_000, "DailyCostAlarm": 50}


def pattern_template(app: cdk.App, env: cdk.Environment, pattern: str, **kwargs: Any) -> Template:
    stack: cdk.Stack = PATTERN_STACKS[pattern](app, f"{pattern}-monitored", env=env, **kwargs)
    return Template.from_stack(stack)


def alarms(template: Template) -> dict[str, dict[str, Any]]:
    """Alarm logical id (without its hash) -> properties."""
    found = template.find_resources("AWS::CloudWatch::Alarm")
    return {re.sub(r"[0-9A-F]{8}$", "", logical_id): resource["Properties"] for logical_id, resource in found.items()}


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
    for title in ("Agents: input and output tokens", "Agents: steps per task", "Agents: task outcomes", "Agents: cost (USD)"):
        assert title in titles
    assert any(t.startswith(("DLQ ", "DynamoDB ")) for t in titles) or pattern == "stateless"


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
    assert {name: p["AlarmActions"] for name, p in alarms(template).items()} == {name: [arn] for name in alarms(template)}


def test_an_existing_alarm_topic_and_an_alarm_email_together_fail_naming_the_fix(stack):
    topic = sns.Topic(stack, "Oncall")
    StatelessAgent(stack, "Agent")

    with pytest.raises(
        ValueError, match=re.escape("pass either existing_alarm_topic or MonitoringOptions(alarm_email=...), not both")
    ):
        AgentMonitoring(stack, "Monitoring", existing_alarm_topic=topic, options=MonitoringOptions(alarm_email="a@example.com"))


def test_monitoring_false_leaves_no_dashboard_alarm_or_topic(app_factory, stack_env):
    template = pattern_template(app_factory(), stack_env, "stateless", monitoring=False)

    for resource_type in ("AWS::CloudWatch::Dashboard", "AWS::CloudWatch::Alarm", "AWS::SNS::Topic"):
        template.resource_count_is(resource_type, 0)


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


# -- the seam: what the dashboard and the cost alarm name is what the runtime emits ---------


@dataclass
class FinishedRun:
    """A finished task as metering reads it (the shape of the agent loop's AgentResult)."""

    usage: Usage = field(default_factory=lambda: Usage(input_tokens=120, output_tokens=30))
    steps: int = 2
    status: AgentStatus = AgentStatus.COMPLETED
    cost_usd: float | None = 0.0021
    tool_calls: tuple[Any, ...] = ()


def emitted_record(*, namespace: str, service: str) -> dict[str, Any]:
    """The EMF record the runtime writes for one finished task, in a function with this namespace and service."""
    metrics = Metrics(namespace=namespace, service=service)
    emit_task_metrics(metrics, FinishedRun(), agent_name="demo")
    return dict(metrics.serialize_metric_set())


def test_the_dashboard_searches_the_namespace_dimensions_and_metric_names_the_runtime_emits(templates):
    record = emitted_record(namespace="Agentrail", service="stateless-agent-agent")
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    emitted = {metric["Name"] for metric in directive["Metrics"]}
    (dimensions,) = directive["Dimensions"]

    searches = search_expressions(templates["stateless"])
    searched = {re.search(r'MetricName="([^"]+)"', s).group(1) for s in searches}  # type: ignore[union-attr]
    schemas = {re.search(r"\{([^}]+)\}", s).group(1) for s in searches}  # type: ignore[union-attr]

    assert schemas == {",".join([directive["Namespace"], *dimensions])}
    assert emitted <= searched
    assert {name for name in searched if name.startswith("Tasks_")} == {f"Tasks_{s.value}" for s in AgentStatus}
    assert set(AGENT_OUTCOMES) == {s.value for s in AgentStatus}


def test_the_daily_cost_alarm_sums_the_cost_metric_of_every_agent_function_as_the_runtime_emits_it(templates):
    template = templates["stateless"]
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    environment = function["Properties"]["Environment"]["Variables"]
    record = emitted_record(namespace=environment["POWERTOOLS_METRICS_NAMESPACE"], service=environment["POWERTOOLS_SERVICE_NAME"])
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    (dimensions,) = directive["Dimensions"]

    cost = alarm(template, "DailyCostAlarm")
    stats = [m["MetricStat"] for m in cost["Metrics"] if "MetricStat" in m]
    expression = next(m["Expression"] for m in cost["Metrics"] if "Expression" in m)

    assert "CostUSD" in {metric["Name"] for metric in directive["Metrics"]}
    assert [(s["Metric"]["Namespace"], s["Metric"]["MetricName"]) for s in stats] == [(directive["Namespace"], "CostUSD")]
    assert [{d["Name"]: d["Value"] for d in s["Metric"]["Dimensions"]} for s in stats] == [
        {name: record[name] for name in dimensions}
    ]
    assert (stats[0]["Stat"], stats[0]["Period"], expression) == ("Sum", 86_400, "FILL(cost0, 0)")
