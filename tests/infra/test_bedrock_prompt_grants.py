"""An agent whose system prompt is in Bedrock Prompt Management: the runtime names the prompt at synth (no AWS call),
the function's role may GetPrompt on exactly it, and a hardened stack gets the bedrock-agent endpoint only then."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from agentrail_constructs import AgentFunction, AgentFunctionOptions, SecurityBaseline
from tests.infra.conftest import TEST_ENV

PROMPT_ARN = "arn:aws:bedrock:us-east-1:123456789012:prompt/PROMPT1234"
#: What GetPrompt of version 3 may be authorized on: the prompt, and that version of it (nothing else).
PROMPT_AND_VERSION = [PROMPT_ARN, f"{PROMPT_ARN}:3"]

AGENT_MODULE = """
from agentrail_runtime.agent import AgentDefinition, prompt_from_bedrock

definition = AgentDefinition(name="support", system_prompt=prompt_from_bedrock({identifier!r}, version={version!r}))
"""


def agent_code(folder: Path, *, identifier: str = PROMPT_ARN, version: str = "3") -> Path:
    """A folder with ``prompted_agent:definition``, whose system prompt is a Bedrock prompt reference."""
    (folder / "prompted_agent").mkdir(parents=True, exist_ok=True)
    (folder / "prompted_agent" / "__init__.py").write_text(AGENT_MODULE.format(identifier=identifier, version=version))
    return folder


def synth(stack: cdk.Stack, code: Path | None, **options: Any) -> tuple[Template, AgentFunction]:
    if code is not None:
        options.update(agent_code=str(code), agent_definition="prompted_agent:definition")
    function = AgentFunction(stack, "Agent", options=AgentFunctionOptions(deployment_options=None, **options))
    return Template.from_stack(stack), function


def get_prompt_resources(template: Template) -> list[Any]:
    return [
        statement["Resource"]
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "bedrock:GetPrompt" in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    ]


def test_the_role_may_get_exactly_the_referenced_prompt(stack: cdk.Stack, tmp_path: Path) -> None:
    template, function = synth(stack, agent_code(tmp_path))

    assert get_prompt_resources(template) == [PROMPT_AND_VERSION]
    assert function.bedrock_prompt_arns == PROMPT_AND_VERSION


def test_a_prompt_id_is_granted_as_the_prompt_arn_in_the_stacks_account_and_region(stack: cdk.Stack, tmp_path: Path) -> None:
    template, _ = synth(stack, agent_code(tmp_path, identifier="PROMPT1234"))

    assert get_prompt_resources(template) == [PROMPT_AND_VERSION]


def test_an_agent_without_a_bedrock_prompt_or_with_the_setting_overriding_it_gets_no_grant(
    app_factory: Callable[..., cdk.App], tmp_path: Path
) -> None:
    plain, _ = synth(cdk.Stack(app_factory(), "Plain", env=TEST_ENV), None)
    overridden, _ = synth(cdk.Stack(app_factory(), "Overridden", env=TEST_ENV), agent_code(tmp_path), system_prompt="Hi.")

    assert get_prompt_resources(plain) == []
    assert get_prompt_resources(overridden) == []


def test_a_new_prompt_version_is_a_new_agent_version_and_a_new_lambda_version(
    app_factory: Callable[..., cdk.App], tmp_path: Path
) -> None:
    def stamped(version: str) -> tuple[str, set[str]]:
        template, _ = synth(cdk.Stack(app_factory(), "Test", env=TEST_ENV), agent_code(tmp_path / version, version=version))
        (function,) = template.find_resources("AWS::Lambda::Function").values()
        return function["Properties"]["Environment"]["Variables"]["AGENT_VERSION"], set(
            template.find_resources("AWS::Lambda::Version")
        )

    (third, third_versions), (fourth, fourth_versions) = stamped("3"), stamped("4")

    assert third != fourth
    assert third_versions != fourth_versions


def test_a_hardened_stack_gets_the_bedrock_agent_endpoint_only_for_an_agent_with_a_bedrock_prompt(
    app_factory: Callable[..., cdk.App], hardened_lookups: dict, tmp_path: Path
) -> None:
    def endpoints(code: Path | None) -> list[str]:
        stack = cdk.Stack(app_factory(context=hardened_lookups), "Hardened", env=TEST_ENV)
        SecurityBaseline(stack, "Security")
        template, _ = synth(stack, code)
        return [
            "".join(part for part in props["ServiceName"]["Fn::Join"][1] if isinstance(part, str))
            if isinstance(props["ServiceName"], dict)
            else props["ServiceName"]
            for props in template.find_resources("AWS::EC2::VPCEndpoint").values()
            for props in [props["Properties"]]
        ]

    with_prompt, without = endpoints(agent_code(tmp_path)), endpoints(None)

    assert "com.amazonaws.us-east-1.bedrock-agent" in with_prompt
    assert not any(name.endswith(".bedrock-agent") for name in without)
