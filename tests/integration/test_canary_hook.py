"""The canary's pre-traffic hook: the smoke cases of the agent's datasets run with real scorers, ``EvalScore`` goes out
as EMF, and CodeDeploy hears Succeeded or Failed. The function and its versions are moto's; moto has no
PutLifecycleEventHookExecutionStatus (nor traffic shifting), so CodeDeploy is a botocore Stubber."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Metrics
from botocore.stub import Stubber
from moto import mock_aws

from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.evals.canary import EVAL_SCORE_METRIC, PreTrafficHook, deployment_target

FUNCTION = "agentrail-stateless-agent"
SERVICE = "stateless-agent-agent"
DEPLOYMENT = "d-CANARY123"
HOOK_EXECUTION = "hook-execution-1"


def appspec(version: str) -> dict[str, Any]:
    """What GetDeployment answers for a CloudFormation-started Lambda deployment of ``FUNCTION:live`` to ``version``."""
    content = {
        "version": 0.0,
        "Resources": [
            {
                "StatelessAgentFunction": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {"Name": FUNCTION, "Alias": "live", "CurrentVersion": "1", "TargetVersion": version},
                }
            }
        ],
    }
    return {
        "deploymentInfo": {
            "deploymentId": DEPLOYMENT,
            "applicationName": "app",
            "deploymentGroupName": "group",
            "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(content)}},
        }
    }


@pytest.fixture
def lambda_client(agent_env) -> Any:
    """moto's Lambda with the function at two published versions: 1 runs agent version v1, 2 runs v2."""
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="agent", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client = boto3.client("lambda", region_name="us-east-1")
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("app.py", "def handler(event, context):\n    return {}\n")
        client.create_function(
            FunctionName=FUNCTION,
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": archive.getvalue()},
            Environment={"Variables": {"AGENT_VERSION": "v1"}},
        )
        client.publish_version(FunctionName=FUNCTION)
        client.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": {"AGENT_VERSION": "v2"}})
        client.publish_version(FunctionName=FUNCTION)
        yield client


@pytest.fixture
def metrics() -> Metrics:
    emitted = Metrics(namespace="Agentrail", service=SERVICE)
    yield emitted
    emitted.clear_metrics()


def hook_for(
    lambda_client: Any, codedeploy: Any, metrics: Metrics, datasets: Path, *, agent_version: str = "v2"
) -> PreTrafficHook:
    return PreTrafficHook(
        codedeploy=codedeploy,
        lambda_client=lambda_client,
        metrics=metrics,
        datasets_dir=datasets,
        settings=RuntimeSettings(),
        agent_version=agent_version,
        min_score=0.8,
    )


def expect_status(stub: Stubber, status: str) -> None:
    stub.add_response("get_deployment", appspec("2"), {"deploymentId": DEPLOYMENT})
    stub.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": HOOK_EXECUTION},
        {"deploymentId": DEPLOYMENT, "lifecycleEventHookExecutionId": HOOK_EXECUTION, "status": status},
    )


def eval_score(metrics: Metrics) -> tuple[float, list[list[str]]]:
    record = metrics.serialize_metric_set()
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Agentrail"
    assert [m["Name"] for m in directive["Metrics"]] == [EVAL_SCORE_METRIC]
    return record[EVAL_SCORE_METRIC], directive["Dimensions"]


def test_the_smoke_cases_passing_on_the_new_version_publish_its_eval_score_and_let_the_deployment_go_on(
    lambda_client, metrics, repo_root
):
    # given: a deployment of version 2 (agent version v2), and the demo agent's datasets with their smoke case
    codedeploy = boto3.client("codedeploy", region_name="us-east-1")
    hook = hook_for(lambda_client, codedeploy, metrics, repo_root / "evals")
    with Stubber(codedeploy) as stub:
        expect_status(stub, "Succeeded")
        # when: CodeDeploy invokes the hook
        outcome = hook({"DeploymentId": DEPLOYMENT, "LifecycleEventHookExecutionId": HOOK_EXECUTION})
        # then: CodeDeploy heard Succeeded, and EvalScore 1.0 went out under the service dimension
        stub.assert_no_pending_responses()
    assert outcome.status == "Succeeded", outcome.reason
    smoke = [json.loads(line) for line in (repo_root / "evals/demo/assistant.jsonl").read_text().splitlines() if line]
    assert outcome.report is not None
    assert sorted(case.id for case in outcome.report.cases) == sorted(c["id"] for c in smoke if "smoke" in c.get("tags", []))
    score, dimensions = eval_score(metrics)
    assert score == [1.0] or score == 1.0
    assert dimensions == [["service"]]
    assert metrics.serialize_metric_set()["service"] == SERVICE


def test_smoke_cases_that_regress_fail_the_deployment_naming_them_and_publish_the_low_score(
    lambda_client, metrics, repo_root, tmp_path
):
    # given: the demo agent's smoke case now expecting an answer the agent does not give
    datasets = tmp_path / "evals"
    shutil.copytree(repo_root / "evals" / "demo", datasets / "demo")
    regressed = {"id": "arithmetic", "tags": ["smoke"], "input": "What is (2 + 3) * 4?", "expect": {"contains": "21"}}
    (datasets / "demo" / "assistant.jsonl").write_text(json.dumps(regressed) + "\n")
    codedeploy = boto3.client("codedeploy", region_name="us-east-1")
    hook = hook_for(lambda_client, codedeploy, metrics, datasets)
    with Stubber(codedeploy) as stub:
        expect_status(stub, "Failed")
        # when
        outcome = hook({"DeploymentId": DEPLOYMENT, "LifecycleEventHookExecutionId": HOOK_EXECUTION})
        # then: Failed, the failing case named, and the score the alarm reads below its threshold
        stub.assert_no_pending_responses()
    assert outcome.status == "Failed"
    assert "arithmetic" in outcome.reason
    score, _ = eval_score(metrics)
    assert (score[0] if isinstance(score, list) else score) < 0.8


def test_a_version_that_runs_another_agent_version_than_the_hook_fails_without_running_any_case(
    lambda_client, metrics, repo_root
):
    # given: a hook built for agent version v1 while the deployment shifts to version 2 (v2)
    codedeploy = boto3.client("codedeploy", region_name="us-east-1")
    hook = hook_for(lambda_client, codedeploy, metrics, repo_root / "evals", agent_version="v1")
    with Stubber(codedeploy) as stub:
        expect_status(stub, "Failed")
        outcome = hook({"DeploymentId": DEPLOYMENT, "LifecycleEventHookExecutionId": HOOK_EXECUTION})
        stub.assert_no_pending_responses()
    # then: Failed naming both versions, and no EvalScore published
    assert outcome.status == "Failed"
    assert "'v2'" in outcome.reason and "'v1'" in outcome.reason
    assert outcome.report is None
    assert EVAL_SCORE_METRIC not in metrics.metric_set


def test_an_agent_without_smoke_cases_lets_the_deployment_go_on_and_says_so(lambda_client, metrics, tmp_path):
    # given: a datasets folder with nothing for the demo agent
    (tmp_path / "evals" / "other").mkdir(parents=True)
    codedeploy = boto3.client("codedeploy", region_name="us-east-1")
    hook = hook_for(lambda_client, codedeploy, metrics, tmp_path / "evals")
    with Stubber(codedeploy) as stub:
        expect_status(stub, "Succeeded")
        outcome = hook({"DeploymentId": DEPLOYMENT, "LifecycleEventHookExecutionId": HOOK_EXECUTION})
        stub.assert_no_pending_responses()
    assert outcome.status == "Succeeded"
    assert "no smoke cases" in outcome.reason


def test_the_target_version_is_read_from_the_deployments_appspec():
    # given / when / then
    target = deployment_target(appspec("7"))
    assert (target.function_name, target.alias, target.current_version, target.target_version) == (FUNCTION, "live", "1", "7")
    with pytest.raises(ValueError, match="no AWS::Lambda::Function"):
        deployment_target({"deploymentInfo": {"revision": {"appSpecContent": {"content": '{"Resources": []}'}}}})
