"""The delivery pipeline (``-c pipeline=owner/name``): its stages in order, its source, its promotion, its gates.

The real app is synthesized once with the pipeline context (``real_app_pipeline``); promotion modes and bad options
use a one-stack stage in process, so they stay quick.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import CfnOutput, Stage
from aws_cdk.assertions import Template
from constructs import Construct

from agentrail_constructs import PATTERN_STACKS, AgentPipeline, PipelineOptions
from agentrail_constructs.app_config import PIPELINE_OFF, AppConfig
from tests.infra.conftest import PIPELINE_CONNECTION_ARN, PIPELINE_CONTEXT, PIPELINE_PATTERNS, PIPELINE_STACK_NAME

#: What CDK Pipelines and AgentPipeline make of the app, in order.
STAGES = ["Source", "Build", "UpdatePipeline", "Assets", "Test", "EvalGate", "Staging", "Production"]


def _pipeline(template: dict[str, Any]) -> dict[str, Any]:
    (pipeline,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return pipeline


def _stage(pipeline: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return next(stage["Actions"] for stage in pipeline["Stages"] if stage["Name"] == name)


def _buildspec(template: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    """The buildspec of the CodeBuild project behind a pipeline action."""
    project = template["Resources"][action["Configuration"]["ProjectName"]["Ref"]]["Properties"]
    return json.loads(project["Source"]["BuildSpec"])


def _commands(buildspec: dict[str, Any]) -> list[str]:
    return [command for phase in buildspec["phases"].values() for command in phase["commands"]]


@pytest.fixture(scope="module")
def pipeline_template(real_app_pipeline: Any) -> dict[str, Any]:
    return real_app_pipeline.template(PIPELINE_STACK_NAME)


def test_the_pipeline_runs_source_build_tests_eval_gate_staging_then_production(pipeline_template: dict[str, Any]) -> None:
    # Given app.py with -c pipeline=acme/agents, when it synthesizes,
    pipeline = _pipeline(pipeline_template)
    # then the pipeline's stages come in this order,
    assert [stage["Name"] for stage in pipeline["Stages"]] == STAGES
    # the test step runs the unit and integration tiers, and the eval gate the demo evals with JUnit output,
    (tests,) = _stage(pipeline, "Test")
    test_commands = " ; ".join(_commands(_buildspec(pipeline_template, tests)))
    assert "make test-unit" in test_commands and "make test-integration" in test_commands
    (gate,) = _stage(pipeline, "EvalGate")
    gate_spec = _buildspec(pipeline_template, gate)
    assert any(c.startswith("make test-evals") and "--junit reports/" in c for c in _commands(gate_spec))
    assert gate_spec["reports"]["EvalGate"]["file-format"] == "JUNITXML"
    # staging deploys every stack before the smoke steps run against them,
    staging = _stage(pipeline, "Staging")
    deploys = [a for a in staging if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    smokes = [a for a in staging if a["Name"].startswith("Smoke-")]
    assert len(smokes) == len(PIPELINE_PATTERNS)
    assert max(a["RunOrder"] for a in deploys) < min(a["RunOrder"] for a in smokes)
    # and production waits for a person before it deploys anything (manual promotion is the default).
    production = _stage(pipeline, "Production")
    approval = next(a for a in production if a["ActionTypeId"]["Category"] == "Approval")
    assert approval["Name"] == "PromoteToProduction"
    assert all(approval["RunOrder"] < a["RunOrder"] for a in production if a is not approval)


def test_the_source_is_a_codeconnections_connection_with_the_given_repository_and_arn(
    pipeline_template: dict[str, Any],
) -> None:
    (source,) = _stage(_pipeline(pipeline_template), "Source")

    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == PIPELINE_CONNECTION_ARN
    assert source["Configuration"]["FullRepositoryId"] == "acme/agents"
    assert source["Configuration"]["BranchName"] == "main"


def test_the_synth_step_installs_from_the_project_files_and_synthesizes_with_the_pipelines_own_settings(
    pipeline_template: dict[str, Any],
) -> None:
    (synth,) = _stage(_pipeline(pipeline_template), "Build")
    spec = _buildspec(pipeline_template, synth)

    assert spec["phases"]["install"]["commands"] == ["make setup"]
    (command,) = spec["phases"]["build"]["commands"]
    # the -c values app.py ran with go to the pipeline's own cdk synth, so it rebuilds the same pipeline and stacks.
    assert " cdk synth --no-notices " in command
    for key, value in {**PIPELINE_CONTEXT, "patterns": ",".join(PIPELINE_PATTERNS)}.items():
        assert f"-c {key}={value}" in command
    assert spec["artifacts"]["base-directory"] == "cdk.out"


def test_no_build_is_privileged_and_every_build_logs_to_one_group_with_retention(pipeline_template: dict[str, Any]) -> None:
    resources = pipeline_template["Resources"]
    projects = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CodeBuild::Project"]

    # The app bundles every asset locally (no Docker), so no step needs a Docker daemon.
    assert projects and all(p["Environment"]["PrivilegedMode"] is False for p in projects)
    groups = {json.dumps(p["LogsConfig"]["CloudWatchLogs"]["GroupName"]) for p in projects}
    (group,) = groups
    log_group = resources[json.loads(group)["Ref"]]["Properties"]
    assert log_group["RetentionInDays"] == 90
    assert all("EncryptionKey" in p for p in projects)


def test_the_build_logs_skip_of_a_customer_managed_key_states_the_pipelines_real_reason(
    pipeline_template: dict[str, Any],
) -> None:
    # Given the pipeline's build log group, which takes no key (PipelineOptions offers none),
    (group,) = [r for r in pipeline_template["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert "KmsKeyId" not in group["Properties"]
    assert "encryption_key" not in {f.name for f in dataclasses.fields(PipelineOptions)}
    # when checkov's key check is skipped on it,
    (reason,) = [s["comment"] for s in group["Metadata"]["checkov"]["skip"] if s["id"] == "CKV_AWS_158"]
    # then the reason is the pipeline's: CloudWatch Logs' own key on logs without customer data, not an option it lacks.
    assert "encryption_key" not in reason
    assert "CloudWatch Logs" in reason and "no customer data" in reason


def test_the_artifact_bucket_is_private_and_encrypted_with_a_rotated_key(pipeline_template: dict[str, Any]) -> None:
    resources = pipeline_template["Resources"]
    (bucket,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::S3::Bucket"]
    (key,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::KMS::Key"]

    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert key["EnableKeyRotation"] is True


def test_each_staging_stack_is_smoke_tested_at_its_api_url_with_its_pattern(pipeline_template: dict[str, Any]) -> None:
    smokes = {a["Name"]: a for a in _stage(_pipeline(pipeline_template), "Staging") if a["Name"].startswith("Smoke-")}

    for pattern in PIPELINE_PATTERNS:
        action = smokes[f"Smoke-Staging-Agentrail-{pattern.capitalize()}"]
        # the stack's ApiUrl output reaches the step as API_URL (a CodePipeline variable of the deploy action),
        variables = json.loads(action["Configuration"]["EnvironmentVariables"])
        assert [v["name"] for v in variables] == ["API_URL"]
        assert "ApiUrl" in json.dumps(variables)
        # and the step signs its calls (SigV4, no token or key) for the pattern the stack serves.
        (command,) = _buildspec(pipeline_template, action)["phases"]["build"]["commands"]
        assert command.endswith(f'agentrail smoke --url "$API_URL" --pattern {pattern}')
        assert "--token" not in command and "--api-key" not in command


def test_production_live_aliases_deploy_through_the_canary(real_app_pipeline: Any) -> None:
    # Given the production stage's stacks (a nested assembly of the pipeline's),
    folder = real_app_pipeline.outdir / f"assembly-{PIPELINE_STACK_NAME}-Delivery-Production"
    templates = {path.name: json.loads(path.read_text()) for path in folder.glob("*.template.json")}
    assert len(templates) == len(PIPELINE_PATTERNS)
    for name, template in templates.items():
        resources = template["Resources"].values()
        served = [
            r for r in resources if r["Type"] == "AWS::Lambda::Alias" and "/PreTrafficHook/" not in r["Metadata"]["aws:cdk:path"]
        ]
        groups = [r["Properties"] for r in resources if r["Type"] == "AWS::CodeDeploy::DeploymentGroup"]
        # then every live alias (but the pre-traffic hooks' own) updates through CodeDeploy, ten percent first,
        # with rollback on alarms.
        assert served and all("CodeDeployLambdaAliasUpdate" in r.get("UpdatePolicy", {}) for r in served), name
        assert len(groups) == len(served)
        assert groups and all(g["DeploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes" for g in groups)
        assert all(g["AlarmConfiguration"]["Enabled"] for g in groups)


def test_without_the_pipeline_key_the_app_is_the_pattern_stacks_alone(real_app: Any) -> None:
    manifest = json.loads((real_app.outdir / "manifest.json").read_text())
    stacks = {name for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"}

    assert stacks == {real_app.pattern_stack_name(pattern) for pattern in PATTERN_STACKS}
    assert not any(a["type"] == "cdk:cloud-assembly" for a in manifest["artifacts"].values())


# -- promotion and options, on a one-stack stage synthesized in process -----------------------------------------


def _one_stack_stage(scope: Construct, stage_id: str) -> Stage:
    stage = Stage(scope, stage_id)
    stack = cdk.Stack(stage, "Api")
    cdk.CfnWaitConditionHandle(stack, "Placeholder")  # a stack needs a resource
    CfnOutput(stack, "ApiUrl", value="https://example.execute-api.us-east-1.amazonaws.com/v1/")
    return stage


def _pipeline_of(app: cdk.App, stack_env: cdk.Environment, **options: Any) -> dict[str, Any]:
    stack = cdk.Stack(app, "Delivery", env=stack_env)
    AgentPipeline(
        stack,
        "Pipeline",
        repository="acme/agents",
        connection_arn=PIPELINE_CONNECTION_ARN,
        stage=_one_stack_stage,
        options=PipelineOptions(**options),
    )
    return _pipeline(Template.from_stack(stack).to_json())


def test_automatic_promotion_deploys_production_without_an_approval(
    app_factory: Callable[..., cdk.App], stack_env: cdk.Environment
) -> None:
    pipeline = _pipeline_of(app_factory(), stack_env, promotion="automatic", branch="release")

    production = _stage(pipeline, "Production")
    assert [a["ActionTypeId"]["Category"] for a in production] == ["Deploy", "Deploy"]  # Prepare, then Execute
    assert _stage(pipeline, "Source")[0]["Configuration"]["BranchName"] == "release"


def test_manual_promotion_puts_the_approval_first_in_production(
    app_factory: Callable[..., cdk.App], stack_env: cdk.Environment
) -> None:
    pipeline = _pipeline_of(app_factory(), stack_env, promotion="manual")

    production = _stage(pipeline, "Production")
    assert [a["ActionTypeId"]["Category"] for a in production] == ["Approval", "Deploy", "Deploy"]


@pytest.mark.parametrize(
    ("keywords", "fix"),
    [
        ({"repository": "agents"}, "owner/name"),
        ({"connection_arn": "arn:aws:codecommit:us-east-1:123456789012:agents"}, "CodeConnections connection ARN"),
        ({"options": PipelineOptions(promotion="eventually")}, "manual, automatic"),  # type: ignore[arg-type]
        ({"options": PipelineOptions(branch="-x")}, "git branch name"),
    ],
)
def test_bad_pipeline_keywords_fail_at_synth_naming_the_fix(
    app_factory: Callable[..., cdk.App], keywords: dict[str, Any], fix: str
) -> None:
    stack = cdk.Stack(app_factory(), "Delivery")
    given = {"repository": "acme/agents", "connection_arn": PIPELINE_CONNECTION_ARN, **keywords}

    with pytest.raises(ValueError, match=fix):
        AgentPipeline(stack, "Pipeline", stage=_one_stack_stage, **given)


# -- the context keys --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "fix"),
    [
        ({"pipeline": "acme/agents"}, r"add -c pipeline_connection_arn=arn:aws:codeconnections:"),
        ({**PIPELINE_CONTEXT, "pipeline_connection_arn": "arn:aws:s3:::bucket"}, "got 'arn:aws:s3:::bucket'"),
        (
            {**PIPELINE_CONTEXT, "pipeline": "https://github.com/acme/agents"},
            r"context 'pipeline': .*owner/name.*\(e.g. -c pipeline=acme/agents\)",
        ),
        (
            {**PIPELINE_CONTEXT, "pipeline_promotion": "yolo"},
            "'pipeline_promotion': pipeline promotion must be one of manual, automatic",
        ),
        ({**PIPELINE_CONTEXT, "pipeline_branch": "bad branch"}, "'pipeline_branch'"),
        ({"pipeline_connection_arn": PIPELINE_CONNECTION_ARN}, "add -c pipeline=owner/name"),
    ],
)
def test_bad_pipeline_context_fails_the_synth_naming_the_fix(
    app_factory: Callable[..., cdk.App], context: dict[str, str], fix: str
) -> None:
    with pytest.raises(ValueError, match=fix):
        AppConfig.from_context(app_factory(context=context), tuple(PATTERN_STACKS))


def test_pipeline_context_is_read_into_the_app_config(app_factory: Callable[..., cdk.App]) -> None:
    app = app_factory(context={**PIPELINE_CONTEXT, "pipeline_branch": "release", "pipeline_promotion": "automatic"})

    settings = AppConfig.from_context(app, tuple(PATTERN_STACKS)).pipeline

    assert settings is not None
    assert (settings.repository, settings.connection_arn) == ("acme/agents", PIPELINE_CONNECTION_ARN)
    assert (settings.options.branch, settings.options.promotion) == ("release", "automatic")
    assert settings.options.synth_context["pipeline_branch"] == "release"
    assert not any(key.startswith(("@", "aws:")) for key in settings.options.synth_context)


def test_pipeline_off_builds_the_app_stacks_whatever_else_the_context_says(app_factory: Callable[..., cdk.App]) -> None:
    # local mode passes -c pipeline=off: cdk.json may hold the pipeline's other keys.
    app = app_factory(context={**PIPELINE_CONTEXT, "pipeline": PIPELINE_OFF})

    assert AppConfig.from_context(app, tuple(PATTERN_STACKS)).pipeline is None
