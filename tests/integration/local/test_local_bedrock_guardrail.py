"""Local mode has no Bedrock: a stack's Bedrock guardrail is skipped with a notice, and a function that names it
gets an empty AGENT_BEDROCK_GUARDRAIL_ID (so the runtime calls neither Converse's guardrailConfig nor ApplyGuardrail)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from agentrail_constructs import BedrockGuardrail
from agentrail_local.cloud import LocalCloud
from tests.integration.local.conftest import HANDLERS, _cdk_json_context

pytestmark = pytest.mark.slow

NOTICE = (
    "local mode has no Bedrock: the functions get an empty AGENT_BEDROCK_GUARDRAIL_ID, so neither Converse's "
    "guardrailConfig nor ApplyGuardrail is called"
)


@pytest.fixture(scope="module")
def guarded_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stack with a BedrockGuardrail and a function whose environment names it, as AgentFunction writes it."""
    outdir = tmp_path_factory.mktemp("assembly-guardrail")
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True, **_cdk_json_context()})
    stack = cdk.Stack(app, "Local-Guardrail")
    guardrail = BedrockGuardrail(stack, "Guardrail")
    lambda_.Function(
        stack,
        "Agent",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="tasks.double",
        code=lambda_.Code.from_asset(str(HANDLERS)),
        environment={
            "AGENT_BEDROCK_GUARDRAIL_ID": guardrail.guardrail_id,
            "AGENT_BEDROCK_GUARDRAIL_VERSION": guardrail.guardrail_version,
        },
    )
    app.synth()
    return outdir


def test_the_guardrail_is_skipped_with_a_notice_and_the_function_gets_an_empty_guardrail_id(
    local_cloud: Callable[..., LocalCloud], guarded_assembly: Path
) -> None:
    cloud = local_cloud(guarded_assembly)
    (deployment,) = cloud.deployments
    (guardrail,) = [r.logical_id for r in deployment.of_type("AWS::Bedrock::Guardrail")]
    (version,) = [r.logical_id for r in deployment.of_type("AWS::Bedrock::GuardrailVersion")]
    (function,) = deployment.of_type("AWS::Lambda::Function")

    variables = cloud.clients("lambda").get_function_configuration(FunctionName=function.ref)["Environment"]["Variables"]

    assert cloud.notices == [
        f"Local-Guardrail: skipped 1 Bedrock guardrail: {NOTICE}: {guardrail}",
        f"Local-Guardrail: skipped 1 Bedrock guardrail version: {NOTICE}: {version}",
    ]
    assert (variables["AGENT_BEDROCK_GUARDRAIL_ID"], variables["AGENT_BEDROCK_GUARDRAIL_VERSION"]) == ("", "")
    assert not [w for w in cloud.warnings if "Bedrock" in w]
