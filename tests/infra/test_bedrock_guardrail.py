"""Bedrock Guardrails on an agent function: a guardrail agentrail creates (GuardrailOptions) or one the user owns
(ExistingGuardrail), the environment that names it, and bedrock:ApplyGuardrail on exactly it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from agentrail_constructs import AgentFunction, AgentFunctionOptions, ExistingGuardrail, GuardrailOptions
from agentrail_constructs.app_config import AppConfig
from agentrail_constructs.stacks import PATTERN_STACKS, AsyncAgentStack
from agentrail_runtime.config import RuntimeSettings
from tests.infra.conftest import TEST_ENV, SynthesizedStack, token_text

MODEL = "bedrock:us.amazon.nova-lite-v1:0"
EXISTING_ARN = "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr7x2kq9abcd"


def synth(stack: cdk.Stack, **options: Any) -> tuple[Template, AgentFunction]:
    function = AgentFunction(stack, "Agent", options=AgentFunctionOptions(model=MODEL, deployment_options=None, **options))
    return Template.from_stack(stack), function


def apply_guardrail_resources(template: Template) -> list[Any]:
    return [
        statement["Resource"]
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "bedrock:ApplyGuardrail" in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    ]


def environment(template: Template) -> dict[str, Any]:
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    return function["Properties"]["Environment"]["Variables"]


def test_guardrail_options_create_a_guardrail_with_prompt_attack_content_and_pii_filters_and_a_version(stack) -> None:
    template, function = synth(stack, guardrail_options=GuardrailOptions())

    template.resource_count_is("AWS::Bedrock::Guardrail", 1)
    template.resource_count_is("AWS::Bedrock::GuardrailVersion", 1)
    template.has_resource_properties(
        "AWS::Bedrock::Guardrail",
        {
            "BlockedInputMessaging": "Sorry, I can't help with that request.",
            "BlockedOutputsMessaging": "Sorry, I can't share that answer.",
            "ContentPolicyConfig": {
                "FiltersConfig": Match.array_with(
                    [
                        {"Type": "HATE", "InputStrength": "HIGH", "OutputStrength": "HIGH"},
                        {"Type": "PROMPT_ATTACK", "InputStrength": "HIGH", "OutputStrength": "NONE"},
                    ]
                )
            },
            "SensitiveInformationPolicyConfig": {
                "PiiEntitiesConfig": Match.array_with(
                    [
                        {"Type": "EMAIL", "Action": "ANONYMIZE"},
                        {"Type": "CREDIT_DEBIT_CARD_NUMBER", "Action": "ANONYMIZE"},
                        {"Type": "AWS_ACCESS_KEY", "Action": "ANONYMIZE"},
                        {"Type": "AWS_SECRET_KEY", "Action": "BLOCK"},
                    ]
                )
            },
        },
    )
    assert function.guardrail is not None


def test_the_role_may_apply_exactly_the_created_guardrail_and_the_environment_names_it_and_its_version(stack) -> None:
    template, function = synth(stack, guardrail_options=GuardrailOptions(pii_action="BLOCK"))
    guardrail = stack.get_logical_id(function.guardrail.guardrail)  # type: ignore[union-attr]
    version = stack.get_logical_id(function.guardrail.version)  # type: ignore[union-attr]

    assert apply_guardrail_resources(template) == [{"Fn::GetAtt": [guardrail, "GuardrailArn"]}]
    assert environment(template)["AGENT_BEDROCK_GUARDRAIL_ID"] == {"Fn::GetAtt": [guardrail, "GuardrailId"]}
    assert environment(template)["AGENT_BEDROCK_GUARDRAIL_VERSION"] == {"Fn::GetAtt": [version, "Version"]}


def test_an_existing_guardrail_id_is_granted_as_its_arn_in_the_stacks_account_and_region(stack) -> None:
    template, _ = synth(stack, existing_guardrail=ExistingGuardrail(guardrail="gr7x2kq9abcd", version="3"))

    template.resource_count_is("AWS::Bedrock::Guardrail", 0)
    assert apply_guardrail_resources(template) == [EXISTING_ARN]
    assert {k: environment(template)[k] for k in ("AGENT_BEDROCK_GUARDRAIL_ID", "AGENT_BEDROCK_GUARDRAIL_VERSION")} == {
        "AGENT_BEDROCK_GUARDRAIL_ID": "gr7x2kq9abcd",
        "AGENT_BEDROCK_GUARDRAIL_VERSION": "3",
    }


def test_an_existing_guardrail_arn_is_granted_as_it_is(stack) -> None:
    template, _ = synth(stack, existing_guardrail=ExistingGuardrail(guardrail=EXISTING_ARN, version="DRAFT"))

    assert apply_guardrail_resources(template) == [EXISTING_ARN]
    assert environment(template)["AGENT_BEDROCK_GUARDRAIL_ID"] == EXISTING_ARN


def test_without_a_guardrail_there_is_no_guardrail_no_grant_and_no_setting(stack) -> None:
    template, function = synth(stack)

    template.resource_count_is("AWS::Bedrock::Guardrail", 0)
    assert apply_guardrail_resources(template) == []
    assert "AGENT_BEDROCK_GUARDRAIL_ID" not in environment(template)
    assert function.guardrail is None


def test_both_guardrail_options_and_an_existing_guardrail_fail_the_synth_naming_the_fix(stack) -> None:
    with pytest.raises(ValueError, match=r"either guardrail_options .* or existing_guardrail .* not both"):
        synth(stack, guardrail_options=GuardrailOptions(), existing_guardrail=ExistingGuardrail(guardrail="gr1", version="1"))


def test_an_existing_guardrail_without_a_version_is_refused(stack) -> None:
    with pytest.raises(ValueError, match="existing_guardrail needs a guardrail id"):
        synth(stack, existing_guardrail=ExistingGuardrail(guardrail="gr1", version=" "))


def test_the_environment_the_construct_writes_loads_into_the_runtimes_guardrail(monkeypatch, stack) -> None:
    template, _ = synth(stack, existing_guardrail=ExistingGuardrail(guardrail="gr7x2kq9abcd", version="3"))
    for key in ("AGENT_BEDROCK_GUARDRAIL_ID", "AGENT_BEDROCK_GUARDRAIL_VERSION", "AGENT_MODEL"):
        monkeypatch.setenv(key, environment(template)[key])

    assert RuntimeSettings().bedrock_guardrail == ("gr7x2kq9abcd", "3")


def test_the_bedrock_guardrail_context_key_gives_the_functions_a_guardrail(app_factory: Callable[..., cdk.App]) -> None:
    config = AppConfig.from_context(app_factory(context={"bedrock_guardrail": "true"}), tuple(PATTERN_STACKS))
    plain = AppConfig.from_context(app_factory(), tuple(PATTERN_STACKS))

    assert config.function_options().guardrail_options == GuardrailOptions()
    assert plain.function_options().guardrail_options is None


def test_a_guardrail_under_a_customer_managed_key_lets_the_function_decrypt_with_that_key_only(stack) -> None:
    key = kms.Key(stack, "GuardrailKey", enable_key_rotation=True)
    template, _ = synth(stack, guardrail_options=GuardrailOptions(encryption_key=key))
    key_arn = {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}  # type: ignore[arg-type]

    template.has_resource_properties("AWS::Bedrock::Guardrail", {"KmsKeyArn": key_arn})
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {"PolicyDocument": {"Statement": Match.array_with([{"Action": "kms:Decrypt", "Effect": "Allow", "Resource": key_arn}])}},
    )


def test_the_canary_hook_applies_the_functions_guardrail_and_creates_none_of_its_own(stack) -> None:
    function = AgentFunction(stack, "Agent", options=AgentFunctionOptions(guardrail_options=GuardrailOptions()))
    template = Template.from_stack(stack)
    guardrail = stack.get_logical_id(function.guardrail.guardrail)  # type: ignore[union-attr]

    assert function.pre_traffic_hook is not None
    template.resource_count_is("AWS::Bedrock::Guardrail", 1)
    hook = template.to_json()["Resources"][stack.get_logical_id(function.pre_traffic_hook.function.node.default_child)]  # type: ignore[arg-type]
    assert hook["Properties"]["Environment"]["Variables"]["AGENT_BEDROCK_GUARDRAIL_ID"] == {
        "Fn::GetAtt": [guardrail, "GuardrailId"]
    }


@pytest.mark.parametrize(
    "guardrail",
    [{"guardrail_options": GuardrailOptions()}, {"existing_guardrail": ExistingGuardrail(guardrail=EXISTING_ARN, version="3")}],
    ids=["created", "existing"],
)
def test_the_canary_hook_applies_the_same_guardrail_version_with_the_same_grant_as_its_function(
    stack, guardrail: dict[str, Any]
) -> None:
    # Given an agent function with a guardrail, created or existing, and its canary's pre-traffic hook,
    function = AgentFunction(stack, "Agent", options=AgentFunctionOptions(**guardrail))
    # when it synthesizes,
    synthesized = SynthesizedStack(stack)
    # then the hook evaluates under the very guardrail and version the function applies, granted as the function is.
    assert function.pre_traffic_hook is not None
    hook, agent = synthesized.environment(function.pre_traffic_hook), synthesized.environment(function)
    for setting in ("AGENT_BEDROCK_GUARDRAIL_ID", "AGENT_BEDROCK_GUARDRAIL_VERSION"):
        assert hook[setting] == agent[setting]
    applies = {grant for grant in synthesized.grants(function) if grant[0] == "bedrock:ApplyGuardrail"}
    assert len(applies) == 1
    assert applies <= synthesized.grants(function.pre_traffic_hook)


def test_the_canary_hook_may_decrypt_the_functions_guardrail_under_a_customer_managed_key(stack) -> None:
    # Given a function whose guardrail is under a customer managed key, with its canary's pre-traffic hook,
    key = kms.Key(stack, "GuardrailKey", enable_key_rotation=True)
    function = AgentFunction(stack, "Agent", options=AgentFunctionOptions(guardrail_options=GuardrailOptions(encryption_key=key)))
    # when it synthesizes,
    synthesized = SynthesizedStack(stack)
    # then the hook, which applies that guardrail, may decrypt it with that key (or its ApplyGuardrail fails closed).
    assert function.pre_traffic_hook is not None
    key_arn = token_text({"Fn::GetAtt": [synthesized.logical_id(key), "Arn"]})
    assert ("kms:Decrypt", key_arn) in synthesized.grants(function.pre_traffic_hook)


def test_an_existing_guardrail_with_its_key_lets_the_function_decrypt_with_that_key(stack) -> None:
    key = kms.Key(stack, "GuardrailKey", enable_key_rotation=True)
    function = AgentFunction(
        stack,
        "Agent",
        options=AgentFunctionOptions(
            deployment_options=None,
            existing_guardrail=ExistingGuardrail(guardrail="gr7x2kq9abcd", version="1", encryption_key=key),
        ),
    )
    synthesized = SynthesizedStack(stack)
    key_arn = token_text({"Fn::GetAtt": [synthesized.logical_id(key), "Arn"]})
    assert ("kms:Decrypt", key_arn) in synthesized.grants(function)


def test_a_pattern_creates_one_guardrail_that_every_agent_function_applies_and_no_agentless_one(app_factory) -> None:
    # Given the async pattern (API, queue worker, long-task step, approvals, webhook notifier) with guardrail options,
    stack = AsyncAgentStack(
        app_factory(), "Guarded", env=TEST_ENV, function_options=AgentFunctionOptions(guardrail_options=GuardrailOptions())
    )
    # when it synthesizes,
    template = Template.from_stack(stack)
    # then there is one guardrail and one version, applied by every function that runs the agent, by none other.
    template.resource_count_is("AWS::Bedrock::Guardrail", 1)
    template.resource_count_is("AWS::Bedrock::GuardrailVersion", 1)
    applying = {
        function["Metadata"]["agentrail:handler"]
        for function in template.find_resources("AWS::Lambda::Function").values()
        if "AGENT_BEDROCK_GUARDRAIL_ID" in function["Properties"].get("Environment", {}).get("Variables", {})
    }
    handlers = {f["Metadata"].get("agentrail:handler") for f in template.find_resources("AWS::Lambda::Function").values()}
    assert {"task_notifier", "approval_metrics"} <= handlers  # they notify and count: no agent
    assert applying == handlers - {"task_notifier", "approval_metrics", None}
