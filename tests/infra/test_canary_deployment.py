"""Canary deployments: a CodeDeploy deployment group on every ``live`` alias of every pattern, its rollback alarms on
errors, p99 latency and the eval score the runtime's pre-traffic hook publishes, the hook and its least privilege."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import Duration
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk.assertions import Annotations, Match, Template
from aws_lambda_powertools import Metrics
from botocore.stub import Stubber
from moto import mock_aws

from agentrail_constructs import PATTERN_STACKS, AgentFunction, AgentFunctionOptions, DeploymentOptions
from agentrail_constructs.app_config import AppConfig
from agentrail_constructs.deployment import EVAL_SCORE_DIMENSIONS, EVAL_SCORE_METRIC, NO_AGENT_HANDLERS
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.evals import canary as runtime_canary
from agentrail_runtime.evals.canary import PreTrafficHook
from tests.infra.conftest import SynthesizedStack

HOOK_PATH = "/PreTrafficHook/"


def pattern_template(app: cdk.App, env: cdk.Environment, pattern: str, **kwargs: Any) -> Template:
    return Template.from_stack(PATTERN_STACKS[pattern](app, f"{pattern}-canary", env=env, **kwargs))


@pytest.fixture(scope="module")
def templates(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> dict[str, Template]:
    return {pattern: pattern_template(app_factory(), stack_env, pattern) for pattern in PATTERN_STACKS}


def path_of(resource: dict[str, Any]) -> str:
    return str(resource.get("Metadata", {}).get("aws:cdk:path", ""))


def served_aliases(template: Template) -> dict[str, dict[str, Any]]:
    """Every ``live`` alias but the pre-traffic hooks' own."""
    aliases = template.find_resources("AWS::Lambda::Alias", {"Properties": {"Name": "live"}})
    return {name: alias for name, alias in aliases.items() if HOOK_PATH not in path_of(alias)}


def alarm_names(group: dict[str, Any]) -> list[str]:
    return [alarm["Name"]["Ref"] for alarm in group["Properties"]["AlarmConfiguration"]["Alarms"]]


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_every_live_alias_of_every_pattern_deploys_through_a_canary_that_rolls_back_on_its_three_alarms(templates, pattern):
    template = templates[pattern]
    resources = template.to_json()["Resources"]
    groups = template.find_resources("AWS::CodeDeploy::DeploymentGroup")
    aliases = served_aliases(template)

    assert aliases and len(groups) == len(aliases)
    for name, alias in aliases.items():
        update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
        group = groups[update["DeploymentGroupName"]["Ref"]]
        properties = group["Properties"]
        assert properties["DeploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes", name
        assert set(properties["AutoRollbackConfiguration"]["Events"]) == {
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_REQUEST",
            "DEPLOYMENT_STOP_ON_ALARM",
        }
        watched = {resources[a]["Properties"].get("MetricName") for a in alarm_names(group)}
        assert watched == {"Errors", "Duration", EVAL_SCORE_METRIC}, name


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_every_live_alias_of_a_function_that_runs_an_agent_has_a_pre_traffic_hook(templates, pattern):
    template = templates[pattern]
    resources = template.to_json()["Resources"]

    hooked, unhooked = [], []
    for alias in served_aliases(template).values():
        function = resources[alias["Properties"]["FunctionName"]["Ref"]]
        hook = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"].get("BeforeAllowTrafficHook")
        handler = function["Metadata"]["agentrail:handler"]
        (hooked if hook else unhooked).append(handler)
        if hook:
            assert resources[hook["Ref"]]["Metadata"]["agentrail:handler"] == "canary_hook"
            assert path_of(resources[hook["Ref"]]) == path_of(function).replace("/Function/", "/PreTrafficHook/Function/")

    assert hooked
    assert set(unhooked) <= NO_AGENT_HANDLERS  # only functions that run no agent go without a hook


def test_the_eval_score_alarm_watches_the_metric_the_runtime_hook_publishes_under_the_same_namespace_and_dimensions(
    templates, agent_env_free, repo_root
):
    # given: the stateless stack's EvalScore alarm and the hook function's environment
    template = templates["stateless"]
    (score_alarm,) = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == EVAL_SCORE_METRIC
    ]
    (hook,) = [f for f in template.find_resources("AWS::Lambda::Function").values() if HOOK_PATH in path_of(f)]
    environment = hook["Properties"]["Environment"]["Variables"]
    metrics = Metrics(namespace=environment["POWERTOOLS_METRICS_NAMESPACE"], service=environment["POWERTOOLS_SERVICE_NAME"])
    # when: the runtime's hook gates a deployment with those settings
    record = run_hook(metrics, repo_root, float(environment["AGENT_CANARY_MIN_EVAL_SCORE"]))
    # then: the record it writes is the metric the alarm reads, and the alarm's threshold is the hook's minimum
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == score_alarm["Namespace"]
    assert [m["Name"] for m in directive["Metrics"]] == [score_alarm["MetricName"]]
    assert [tuple(d) for d in directive["Dimensions"]] == [EVAL_SCORE_DIMENSIONS]
    assert {d["Name"]: d["Value"] for d in score_alarm["Dimensions"]} == {"service": record["service"]}
    assert score_alarm["ComparisonOperator"] == "LessThanThreshold"
    assert score_alarm["Threshold"] == float(environment["AGENT_CANARY_MIN_EVAL_SCORE"]) == 0.8
    assert runtime_canary.EVAL_SCORE_METRIC == EVAL_SCORE_METRIC and runtime_canary.EVAL_SCORE_DIMENSIONS == EVAL_SCORE_DIMENSIONS


@pytest.fixture
def agent_env_free(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("AGENT_")]:
        monkeypatch.delenv(name)


def run_hook(metrics: Metrics, repo_root: Any, min_score: float) -> dict[str, Any]:
    """One pre-traffic hook run of the demo agent's smoke cases, against moto's Lambda and a stubbed CodeDeploy."""
    with mock_aws():
        role = boto3.client("iam", region_name="us-east-1").create_role(RoleName="r", AssumeRolePolicyDocument="{}")
        client = boto3.client("lambda", region_name="us-east-1")
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("app.py", "")
        client.create_function(
            FunctionName="agent",
            Runtime="python3.13",
            Role=role["Role"]["Arn"],
            Handler="app.handler",
            Code={"ZipFile": archive.getvalue()},
            Environment={"Variables": {"AGENT_VERSION": "v1"}},
        )
        client.publish_version(FunctionName="agent")
        codedeploy_client = boto3.client("codedeploy", region_name="us-east-1")
        spec = {"Resources": [{"f": {"Type": "AWS::Lambda::Function", "Properties": {"Name": "agent", "TargetVersion": "1"}}}]}
        with Stubber(codedeploy_client) as stub:
            stub.add_response(
                "get_deployment", {"deploymentInfo": {"revision": {"appSpecContent": {"content": json.dumps(spec)}}}}
            )
            stub.add_response("put_lifecycle_event_hook_execution_status", {})
            outcome = PreTrafficHook(
                codedeploy=codedeploy_client,
                lambda_client=client,
                metrics=metrics,
                datasets_dir=repo_root / "evals",
                settings=RuntimeSettings(),
                agent_version="v1",
                min_score=min_score,
            )({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "e-1"})
    assert outcome.status == "Succeeded", outcome.reason
    record = metrics.serialize_metric_set()
    metrics.clear_metrics()
    return record


def test_the_hook_may_read_only_the_version_being_deployed_and_report_only_to_its_deployment_group(templates):
    template = templates["stateless"]
    resources = template.to_json()["Resources"]
    (policy,) = [p for name, p in resources.items() if p["Type"] == "AWS::IAM::Policy" and "PreTrafficHookRole" in name]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_action = {
        action: s["Resource"] for s in statements for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    (version,) = [name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Version" and HOOK_PATH not in path_of(r)]
    (group,) = template.find_resources("AWS::CodeDeploy::DeploymentGroup")

    assert by_action["lambda:GetFunctionConfiguration"] == {"Ref": version}
    assert "lambda:InvokeFunction" not in by_action
    for action in ("codedeploy:GetDeployment", "codedeploy:PutLifecycleEventHookExecutionStatus"):
        assert {"Ref": group} in by_action[action]["Fn::Join"][1], action


def test_the_hook_ships_the_eval_datasets_as_a_layer_and_runs_with_the_functions_agent_settings(templates):
    template = templates["stateless"]
    functions = {path_of(f): f["Properties"] for f in template.find_resources("AWS::Lambda::Function").values()}
    (hook_path,) = [p for p in functions if HOOK_PATH in p]
    hook, agent = functions[hook_path], functions[hook_path.replace("PreTrafficHook/", "")]
    (evals_layer,) = template.find_resources("AWS::Lambda::LayerVersion", {"Metadata": {"agentrail:layer": "evals"}})

    assert {"Ref": evals_layer} in hook["Layers"]
    for name in ("AGENT_MODEL", "AGENT_DEFINITION", "AGENT_MAX_STEPS", "AGENT_VERSION", "POWERTOOLS_SERVICE_NAME"):
        assert hook["Environment"]["Variables"][name] == agent["Environment"]["Variables"][name], name
    assert hook["Timeout"] == 300


def test_strategy_and_thresholds_are_props(stack: cdk.Stack):
    options = DeploymentOptions(
        strategy=codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_1_MINUTE,
        errors_threshold=3,
        p99_latency=Duration.seconds(7),
        min_eval_score=0.9,
    )
    AgentFunction(stack, "Agent", options=AgentFunctionOptions(deployment_options=options))
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::CodeDeploy::DeploymentGroup", {"DeploymentConfigName": "CodeDeployDefault.LambdaLinear10PercentEvery1Minute"}
    )
    thresholds = {
        a["Properties"]["MetricName"]: a["Properties"]["Threshold"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
    }
    assert thresholds == {"Errors": 3, "Duration": 7000, EVAL_SCORE_METRIC: 0.9}


def test_the_default_p99_latency_threshold_is_90_percent_of_the_timeout(stack: cdk.Stack):
    AgentFunction(stack, "Agent", options=AgentFunctionOptions(timeout=Duration.seconds(30)))
    Template.from_stack(stack).has_resource_properties("AWS::CloudWatch::Alarm", {"MetricName": "Duration", "Threshold": 27000})


def test_no_deployment_options_leave_the_alias_without_codedeploy(stack: cdk.Stack):
    function = AgentFunction(stack, "Agent", options=AgentFunctionOptions(deployment_options=None))
    template = Template.from_stack(stack)

    assert function.deployment is None and function.pre_traffic_hook is None
    template.resource_count_is("AWS::CodeDeploy::DeploymentGroup", 0)
    template.resource_count_is("AWS::Lambda::Function", 1)


def test_a_pattern_stack_passes_its_deployment_options_to_every_function_left_at_the_default(
    app_factory: Callable[..., cdk.App], stack_env: cdk.Environment
):
    template = pattern_template(
        app_factory(),
        stack_env,
        "async",
        deployment_options=DeploymentOptions(strategy=codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE, pre_traffic_hook=False),
    )
    groups = template.find_resources("AWS::CodeDeploy::DeploymentGroup").values()

    assert groups and {g["Properties"]["DeploymentConfigName"] for g in groups} == {"CodeDeployDefault.LambdaAllAtOnce"}
    assert not [f for f in template.find_resources("AWS::Lambda::Function").values() if HOOK_PATH in path_of(f)]


def test_a_pattern_stack_without_deployment_options_has_no_codedeploy(
    app_factory: Callable[..., cdk.App], stack_env: cdk.Environment
):
    template = pattern_template(app_factory(), stack_env, "stateless", deployment_options=None)

    template.resource_count_is("AWS::CodeDeploy::DeploymentGroup", 0)
    template.resource_count_is("AWS::CodeDeploy::Application", 0)


@pytest.mark.parametrize(
    ("name", "config"),
    [("linear", "CodeDeployDefault.LambdaLinear10PercentEvery1Minute"), ("all-at-once", "CodeDeployDefault.LambdaAllAtOnce")],
)
def test_the_canary_context_key_picks_the_strategy(app_factory: Callable[..., cdk.App], stack_env, name, config):
    app = app_factory(context={"canary": name})
    options = AppConfig.from_context(app, tuple(PATTERN_STACKS)).stack_options("stateless")
    template = Template.from_stack(PATTERN_STACKS["stateless"](app, "S", **{**options, "env": stack_env}))

    template.has_resource_properties("AWS::CodeDeploy::DeploymentGroup", {"DeploymentConfigName": config})


def test_canary_off_in_context_leaves_every_alias_without_codedeploy(app_factory: Callable[..., cdk.App]):
    app = app_factory(context={"canary": "off"})

    assert AppConfig.from_context(app, tuple(PATTERN_STACKS)).stack_options("stateless")["deployment_options"] is None


def test_an_unknown_canary_in_context_fails_naming_the_choices(app_factory: Callable[..., cdk.App]):
    with pytest.raises(ValueError, match=re.escape("context 'canary' must be one of canary, linear, all-at-once, off")):
        AppConfig.from_context(app_factory(context={"canary": "blue-green"}), tuple(PATTERN_STACKS))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (DeploymentOptions(min_eval_score=1.5), "min_eval_score must be between 0 and 1"),
        (DeploymentOptions(errors_threshold=0), "errors_threshold must be at least 1"),
        (DeploymentOptions(alarm_period=Duration.seconds(10)), "alarm_period must be at least 1 minute"),
    ],
)
def test_deployment_options_out_of_range_fail_at_synth_naming_the_option(stack: cdk.Stack, options, message):
    with pytest.raises(ValueError, match=message):
        AgentFunction(stack, "Agent", options=AgentFunctionOptions(deployment_options=options))


def test_an_evals_dir_that_is_not_a_folder_fails_at_synth_naming_the_fixes(stack: cdk.Stack, tmp_path):
    options = DeploymentOptions(evals_dir=tmp_path / "nowhere")

    with pytest.raises(ValueError, match=r"is not a folder: point it at your evals/<agent>/\*\.jsonl.*pre_traffic_hook=False"):
        AgentFunction(stack, "Agent", options=AgentFunctionOptions(deployment_options=options))


def test_an_app_without_an_evals_folder_gets_the_canary_without_a_hook_and_a_warning_naming_the_fixes(
    stack: cdk.Stack, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)  # a CDK app folder with no evals/

    function = AgentFunction(stack, "Agent")
    template = Template.from_stack(stack)

    assert function.deployment is not None and function.pre_traffic_hook is None
    template.resource_count_is("AWS::CodeDeploy::DeploymentGroup", 1)
    template.resource_count_is("AWS::Lambda::Function", 1)
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("without a pre-traffic hook"))
    assert len(warnings) == 1 and "DeploymentOptions(pre_traffic_hook=False)" in warnings[0].entry.data


def definition_of(template: Template, machine: dict[str, Any]) -> dict[str, Any]:
    """A state machine's ASL, each CloudFormation reference in it read as ``<ref>``."""
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(part if isinstance(part, str) else "<ref>" for part in parts))


def test_every_step_of_the_long_task_and_approval_workflows_after_start_invokes_the_version_start_ran(templates):
    template = templates["async"]
    machines = template.find_resources("AWS::StepFunctions::StateMachine")

    assert len(machines) == 2
    for machine in machines.values():
        states = definition_of(template, machine)["States"]
        tasks = {name: state for name, state in states.items() if state["Type"] == "Task"}
        # Start runs through `live` and keeps the version that ran; PinVersion copies it where every later step reads it
        assert tasks["Start"]["ResultSelector"]["version.$"] == "$.ExecutedVersion"
        assert "Qualifier.$" not in tasks["Start"]["Parameters"]
        assert states["PinVersion"]["Parameters"] == {"version.$": "$.progress.version"}
        assert states["PinVersion"]["ResultPath"] == "$.pinned" and states["Start"]["Next"] == "PinVersion"
        pinned = {name for name, task in tasks.items() if task["Parameters"].get("Qualifier.$") == "$.pinned.version"}
        assert pinned == set(tasks) - {"Start", "MarkFailed"}, sorted(tasks)
        assert "Step" in pinned


def test_every_step_of_the_hierarchical_workflow_after_plan_invokes_the_version_plan_ran(templates):
    template = templates["hierarchical"]
    (machine,) = [m for m in template.find_resources("AWS::StepFunctions::StateMachine").values() if "Plan" in str(m)]

    states = definition_of(template, machine)["States"]
    fan_out = states["FanOut"]
    tasks = {name: state for name, state in states.items() if state["Type"] == "Task"}
    tasks.update(fan_out["ItemProcessor"]["States"])
    # Plan runs through `live` and keeps the version that ran; PinVersion copies it where every later step reads it,
    assert tasks["Plan"]["ResultSelector"]["version.$"] == "$.ExecutedVersion"
    assert "Qualifier.$" not in tasks["Plan"]["Parameters"]
    assert states["Plan"]["Next"] == "PinVersion"
    assert states["PinVersion"]["Parameters"] == {"version.$": "$.planned.version"}
    assert states["PinVersion"]["ResultPath"] == "$.pinned"
    # the fan-out hands it to every subtask,
    assert fan_out["ItemSelector"]["pinned.$"] == "$.pinned"
    # and every step but Plan and MarkFailed invokes that version: Work, Review, Synthesize.
    pinned = {name for name, task in tasks.items() if task["Parameters"].get("Qualifier.$") == "$.pinned.version"}
    assert pinned == {"Work", "Review", "Synthesize"}, sorted(tasks)
    assert set(tasks) == {"Plan", "Work", "Review", "Synthesize", "MarkFailed"}


def test_two_hooks_of_one_stack_share_its_evals_layer_and_another_datasets_folder_fails_naming_the_fix(
    stack: cdk.Stack, tmp_path
):
    # Given two datasets folders, and two agents of one stack shipping the first,
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        (folder / "support").mkdir(parents=True)
    one = AgentFunction(stack, "One", options=AgentFunctionOptions(deployment_options=DeploymentOptions(evals_dir=first)))
    two = AgentFunction(stack, "Two", options=AgentFunctionOptions(deployment_options=DeploymentOptions(evals_dir=first)))
    # then the stack has one evals layer and both hooks run with it,
    assert one.pre_traffic_hook is not None and two.pre_traffic_hook is not None
    synthesized = SynthesizedStack(stack)
    (evals_layer,) = synthesized.template.find_resources("AWS::Lambda::LayerVersion", {"Metadata": {"agentrail:layer": "evals"}})
    for hook in (one.pre_traffic_hook, two.pre_traffic_hook):
        assert {"Ref": evals_layer} in synthesized.properties(hook.function)["Layers"]
    # and a third agent of that stack with the other folder fails, naming the fix.
    with pytest.raises(ValueError, match=r"already ships the datasets of .*first.*same DeploymentOptions\(evals_dir=\.\.\.\)"):
        AgentFunction(stack, "Three", options=AgentFunctionOptions(deployment_options=DeploymentOptions(evals_dir=second)))
