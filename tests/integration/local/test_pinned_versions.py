"""A workflow's steps pinned to a Lambda version (``Qualifier.$: $.pinned.version``) run that version's code in local
mode: a deploy that publishes version N+1 mid-execution leaves an execution started on N running N's code."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agentrail_local.cloud import LocalCloud
from tests.integration.local.conftest import _cdk_json_context

pytestmark = pytest.mark.slow
STACK = "Local-Pinned"

#: A checkpointed step function: every call appends ``<action> <code> <version>`` to ``<marker>.log``; a Step is
#: done once ``<marker>.finish`` exists. CODE is what a deploy changes.
STEPS = """
import os
import time

CODE = "{code}"


def handler(event, context):
    marker = event["marker"]
    with open(marker + ".log", "a") as log:
        log.write(f"{{event['action']}} {{CODE}} {{context.function_version}}\\n")
    if event["action"] == "step":
        time.sleep(0.05)
    done = event["action"] == "step" and os.path.exists(marker + ".finish")
    return {{"done": done, "status": "done" if done else "running", "code": CODE}}
"""


def steps_code(folder: Path, code: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "steps.py").write_text(STEPS.format(code=code))
    return folder


def build_pinned_app(outdir: Path, code: Path) -> None:
    """``Local-Pinned``: the long-task workflow's loop (Start through ``live``, PinVersion, Step pinned to the version
    Start ran), built by the constructs' own ``agent_loop`` and ``agent_step``."""
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_stepfunctions as sfn

    from agentrail_constructs.workflows import agent_loop, agent_step, grant_pinned_invoke

    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True, **_cdk_json_context()})
    stack = cdk.Stack(app, STACK)
    function = lambda_.Function(
        stack,
        "Steps",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="steps.handler",
        code=lambda_.Code.from_asset(str(code)),
        timeout=cdk.Duration.seconds(10),
    )
    live = lambda_.Alias(stack, "StepsLive", alias_name="live", version=function.current_version)

    def invoke(name: str, action: str, extra: dict[str, str] | None = None, *, pinned: bool = True) -> Any:
        return agent_step(
            stack,
            name,
            alias=live,
            function=function,
            pinned=pinned,
            payload={"action": action, "marker.$": "$.marker", **(extra or {})},
            result_selector={"done.$": "$.Payload.done", "status.$": "$.Payload.status", "code.$": "$.Payload.code"},
            result_path="$.progress",
            timeout=cdk.Duration.seconds(10),
        )

    loop = agent_loop(stack, invoke)
    machine = sfn.StateMachine(stack, "LongTask", definition_body=sfn.DefinitionBody.from_chainable(loop.start))
    grant_pinned_invoke(machine, function)
    app.synth()


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return steps_code(tmp_path_factory.mktemp("steps-v1"), "1")


@pytest.fixture(scope="module")
def cloud(local_cloud: Callable[..., LocalCloud], tmp_path_factory: pytest.TempPathFactory, code: Path) -> LocalCloud:
    assembly = tmp_path_factory.mktemp("assembly-pinned")
    build_pinned_app(assembly, code)
    return local_cloud(assembly, stacks=[STACK])


def _resource(cloud: LocalCloud, construct_id: str, resource_type: str) -> Any:
    deployment = next(d for d in cloud.deployments if d.stack_name == STACK)
    return next(r for r in deployment.resources.values() if r.logical_id[:-8] == construct_id and r.type == resource_type)


def _lines(log: Path, *, at_least: int, seconds: float = 20) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= at_least:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{log} has fewer than {at_least} lines: {log.read_text() if log.exists() else ''}")


def deploy_new_code(cloud: LocalCloud, folder: Path) -> None:
    """What a redeploy of the stack with changed code does: update the function, publish version 2, move ``live``."""
    assert cloud.environments is not None
    function = _resource(cloud, "Steps", "AWS::Lambda::Function")
    definition = function.local["function"]
    cloud.environments.update_function(replace(definition, code_dir=steps_code(folder, "2")))
    cloud.environments.add_version(definition.name, "2")
    cloud.environments.add_alias(definition.name, "live", "2")


def test_an_execution_started_on_version_1_runs_version_1s_code_after_a_deploy_publishes_version_2(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # Given an execution whose Start ran through live (version 1) and whose pinned Steps are looping,
    marker = tmp_path / "task"
    sfn = cloud.clients("stepfunctions")
    machine = _resource(cloud, "LongTask", "AWS::StepFunctions::StateMachine").ref
    execution = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps({"marker": str(marker)}))
    before = _lines(marker.with_suffix(".log"), at_least=2)
    # when a deploy changes the code and moves live to version 2 mid-task, and the task then finishes,
    deploy_new_code(cloud, tmp_path / "steps-v2")
    fresh = cloud.clients("lambda").invoke(
        FunctionName=_resource(cloud, "Steps", "AWS::Lambda::Function").ref + ":live",
        Payload=json.dumps({"action": "probe", "marker": str(tmp_path / "probe")}),
    )
    after = _lines(marker.with_suffix(".log"), at_least=len(before) + 3)
    marker.with_suffix(".finish").touch()
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.1)

    # then every step of the execution, before and after the deploy, ran version 1's code, as version 1,
    lines = marker.with_suffix(".log").read_text().splitlines()
    assert before[0] == "start 1 1"
    assert len(after) > len(before)
    assert set(lines[1:]) == {"step 1 1"}, lines
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["progress"]["code"] == "1"
    # while a new invocation through live runs version 2's code.
    assert json.loads(fresh["Payload"].read())["code"] == "2"
    assert fresh["ExecutedVersion"] == "2"
