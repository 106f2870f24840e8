"""Lambda invocations that start outside the gateway (Step Functions tasks, lambda.invoke, SQS event sources) run the real handler code."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.awslambda.moto_seam import install_lambda_seam
from agentrail_local.cloud import LocalCloud

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cloud(local_cloud: Callable[..., LocalCloud], services_assembly: Path) -> LocalCloud:
    return local_cloud(services_assembly)


def _physical(cloud: LocalCloud, stack: str, construct_id: str, resource_type: str) -> Any:
    """The resource of a top-level construct: CDK's logical id is the construct id and an 8-character hash."""
    deployment = next(d for d in cloud.deployments if d.stack_name == stack)
    return next(r for r in deployment.resources.values() if r.logical_id[:-8] == construct_id and r.type == resource_type)


def test_state_machine_lambda_task_runs_the_handler_and_the_execution_succeeds(cloud: LocalCloud) -> None:
    machine = _physical(cloud, "Local-Services", "Flow", "AWS::StepFunctions::StateMachine").ref
    function = _physical(cloud, "Local-Services", "Doubler", "AWS::Lambda::Function").ref
    sfn = cloud.clients("stepfunctions")

    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"value": 21}))["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"value": 42, "function": function}


def test_a_failing_function_invoked_through_lambda_reports_its_error(cloud: LocalCloud) -> None:
    function = _physical(cloud, "Local-Edge", "Failing", "AWS::Lambda::Function").ref

    response = cloud.clients("lambda").invoke(FunctionName=function, Payload=b"{}")

    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorMessage"] == "the order is not valid"


def test_an_asynchronous_invocation_is_accepted_and_runs_in_the_background(cloud: LocalCloud) -> None:
    function = _physical(cloud, "Local-Services", "Doubler", "AWS::Lambda::Function")

    response = cloud.clients("lambda").invoke(FunctionName=function.ref, InvocationType="Event", Payload=b'{"value": 1}')

    assert response["StatusCode"] == 202


def test_invoking_a_function_that_was_never_deployed_is_moto_not_found(cloud: LocalCloud) -> None:
    with pytest.raises(ClientError) as error:
        cloud.clients("lambda").invoke(FunctionName="not-deployed", Payload=b"{}")

    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_second_local_cloud_in_the_same_process_is_refused(cloud: LocalCloud, tmp_path: Path) -> None:
    other = ExecutionEnvironments(moto_endpoint="http://127.0.0.1:1", log_dir=tmp_path)

    with pytest.raises(RuntimeError, match="another local cloud"):
        install_lambda_seam(other)


def test_sqs_event_source_deletes_processed_messages_and_redrives_reported_failures(cloud: LocalCloud) -> None:
    jobs = _physical(cloud, "Local-Services", "Jobs", "AWS::SQS::Queue").ref
    dead_letters = _physical(cloud, "Local-Services", "JobsDlq", "AWS::SQS::Queue").ref
    worker = _physical(cloud, "Local-Services", "JobWorker", "AWS::Lambda::Function")
    sqs = cloud.clients("sqs")

    for body in ("ok-1", "fail-2", "ok-3"):
        sqs.send_message(QueueUrl=jobs, MessageBody=body)
    redriven: list[str] = []
    deadline = time.monotonic() + 20
    while not redriven and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=dead_letters, WaitTimeSeconds=1).get("Messages", [])
        redriven = [m["Body"] for m in messages]

    log = cloud.function_log(worker.logical_id).read_text()
    processed = [json.loads(line)["body"] for line in log.splitlines() if '"processed"' in line]
    assert redriven == ["fail-2"]
    assert sorted(processed) == ["ok-1", "ok-3"]
