"""The real app's stateless stack, synthesized by the CDK CLI, deployed into moto by the template reader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agentrail_local.awslambda.definitions import FunctionDefinition
from agentrail_local.awslambda.interpreters import find_interpreter, runtime_version
from agentrail_local.cloud import LocalCloud
from tests.integration.local.conftest import agent_function

pytestmark = pytest.mark.slow


#: What local mode printed on its console as it deployed (besides the functions' logs).
CONSOLE: list[str] = []


@pytest.fixture(scope="module")
def cloud(local_cloud: Callable[..., LocalCloud], stateless_assembly: Path) -> LocalCloud:
    return local_cloud(stateless_assembly, notice=CONSOLE.append)


def test_every_resource_type_of_the_stateless_stack_deploys_without_warnings(cloud: LocalCloud) -> None:
    (deployment,) = cloud.deployments
    runtime = agent_function(deployment).local["function"].runtime
    # A machine without the runtime's Python warns about that only (test_local_python covers the warning).
    has_the_runtimes_python = find_interpreter(runtime_version(runtime) or (0, 0)) is not None

    assert deployment.stack_name == "Agentrail-Stateless"
    assert "CDKMetadata" not in deployment.resources
    if has_the_runtimes_python:
        assert cloud.warnings == []
    else:
        (warning,) = cloud.warnings
        assert warning.startswith(f"{runtime} functions run on Python")


def test_the_stacks_cloudwatch_alarms_dashboard_and_codedeploy_canary_are_skipped_with_a_console_notice_naming_each(
    cloud: LocalCloud,
) -> None:
    (deployment,) = cloud.deployments
    alarms = [r.logical_id for r in deployment.of_type("AWS::CloudWatch::Alarm")]
    (dashboard,) = [r.logical_id for r in deployment.of_type("AWS::CloudWatch::Dashboard")]
    (application,) = [r.logical_id for r in deployment.of_type("AWS::CodeDeploy::Application")]
    (group,) = [r.logical_id for r in deployment.of_type("AWS::CodeDeploy::DeploymentGroup")]
    no_codedeploy = "local mode has no CodeDeploy: a new version takes the live alias at once, with no canary or pre-traffic hook"

    assert len(alarms) > 1
    assert (
        CONSOLE
        == cloud.notices
        == [
            f"Agentrail-Stateless: skipped {len(alarms)} CloudWatch alarms: local mode has no CloudWatch alarms: "
            + ", ".join(alarms),
            "Agentrail-Stateless: skipped 1 CloudWatch dashboard: local mode has no CloudWatch dashboards "
            f"(`agentrail metrics` shows what the functions emitted): {dashboard}",
            f"Agentrail-Stateless: skipped 1 CodeDeploy application: {no_codedeploy}: {application}",
            f"Agentrail-Stateless: skipped 1 CodeDeploy deployment group: {no_codedeploy}: {group}",
        ]
    )
    assert not [w for w in cloud.warnings if "CloudWatch" in w or "CodeDeploy" in w]


def test_the_function_runs_the_synthesized_handler_with_its_layers_and_environment(cloud: LocalCloud) -> None:
    function = agent_function(cloud.deployments[0])
    definition: FunctionDefinition = function.local["function"]

    configuration = cloud.clients("lambda").get_function_configuration(FunctionName=function.ref)

    assert configuration["Runtime"].startswith("python3.")
    assert configuration["Architectures"] == ["arm64"]
    assert len(configuration["Layers"]) == 2
    assert configuration["Environment"]["Variables"]["AGENT_MODEL"] == "local"
    assert (definition.handler, definition.timeout_seconds, definition.memory_size) == ("app.handler", 60.0, 1024)
    assert (definition.code_dir / "app.py").is_file()
    python_path = definition.python_path()
    assert python_path[0] == str(definition.code_dir)
    assert any(Path(p, "agentrail_runtime", "__init__.py").is_file() for p in python_path[1:])
    assert not any(Path(p, "pydantic_core").exists() for p in python_path), (
        "the arm64 dependencies layer must stay off PYTHONPATH"
    )


def test_the_live_alias_points_at_the_published_version(cloud: LocalCloud) -> None:
    function = agent_function(cloud.deployments[0])

    alias = cloud.clients("lambda").get_alias(FunctionName=function.ref, Name="live")

    assert alias["FunctionVersion"] == "1"
    assert cloud.environments is not None and cloud.environments.knows(alias["AliasArn"])


def test_the_rest_api_has_its_routes_iam_methods_validator_and_gateway_responses(cloud: LocalCloud) -> None:
    (api,) = cloud.deployments[0].of_type("AWS::ApiGateway::RestApi")
    apigateway = cloud.clients("apigateway")

    resources = {r["path"]: r for r in apigateway.get_resources(restApiId=api.ref, embed=["methods"])["items"]}
    invoke = apigateway.get_method(restApiId=api.ref, resourceId=resources["/invoke"]["id"], httpMethod="POST")
    missing_token = apigateway.get_gateway_response(restApiId=api.ref, responseType="MISSING_AUTHENTICATION_TOKEN")
    stage = apigateway.get_stage(restApiId=api.ref, stageName="v1")

    assert set(resources) == {"/", "/invoke", "/erase", "/health", "/openapi.json"}
    assert invoke["authorizationType"] == "AWS_IAM"
    assert invoke["methodIntegration"]["type"] == "AWS_PROXY"
    assert invoke["methodIntegration"]["uri"].endswith(":live/invocations")
    assert list(invoke["requestModels"]) == ["application/json"]
    assert missing_token["statusCode"] == "403"
    assert stage["tracingEnabled"] is True


def test_outputs_resolve_to_the_moto_api_id_and_function_name(cloud: LocalCloud) -> None:
    deployment = cloud.deployments[0]
    (api,) = deployment.of_type("AWS::ApiGateway::RestApi")
    function = agent_function(deployment)

    assert deployment.outputs["ApiUrl"] == f"https://{api.ref}.execute-api.us-east-1.amazonaws.com/v1/"
    assert deployment.outputs["FunctionName"] == function.ref


def test_log_groups_role_and_policy_exist_with_the_templates_settings(cloud: LocalCloud) -> None:
    deployment = cloud.deployments[0]
    (role,) = [r for r in deployment.of_type("AWS::IAM::Role") if r.logical_id.startswith("StatelessAgentRole")]

    groups = cloud.clients("logs").describe_log_groups()["logGroups"]
    policies = cloud.clients("iam").list_role_policies(RoleName=role.ref)["PolicyNames"]

    assert {g["retentionInDays"] for g in groups if g["logGroupName"].startswith("Agentrail-Stateless-")} == {30}
    assert policies == ["StatelessAgentRoleDefaultPolicy8D88881D"]


def test_the_endpoint_is_described_for_clients(cloud: LocalCloud) -> None:
    endpoint = cloud.endpoint(pattern="stateless")

    assert endpoint.auth == "iam"
    assert endpoint.stage == "v1"
    assert endpoint.url.startswith("http://127.0.0.1:") and endpoint.url.endswith("/v1")
    assert set(endpoint.routes) == {"POST /invoke", "POST /erase", "GET /health", "GET /openapi.json"}
