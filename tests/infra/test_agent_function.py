"""AgentFunction: the Lambda function, its layers, role, logs and grants, as synthesized."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Match, Template

from agentrail_constructs import AgentFunction, AgentFunctionOptions, ApprovalOptions, AsyncAgent, StatefulAgent

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-key-AbCdEf"
OPENAI_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-api-key-GhIjKl"
#: What reading a secret takes (``ISecret.grant_read``): its value and its metadata.
READ_SECRET = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
#: Every default but the canary deployment, whose role and hook function are tested in test_canary_deployment.py.
ALONE = AgentFunctionOptions(deployment_options=None)
MODEL_ACTIONS = ["bedrock:InvokeModel", "bedrock:GetFoundationModel", "bedrock:GetInferenceProfile"]


def only_logical_id(template: Template, resource_type: str, props: dict | None = None) -> str:
    found = template.find_resources(resource_type, props or {})
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found))


def layer_id(template: Template, kind: str) -> str:
    return only_logical_id(template, "AWS::Lambda::LayerVersion", {"Metadata": {"agentrail:layer": kind}})


def function_environment(template: Template) -> dict[str, object]:
    function = template.find_resources("AWS::Lambda::Function")
    assert len(function) == 1
    return next(iter(function.values()))["Properties"]["Environment"]["Variables"]


def function_layers(template: Template) -> set[str]:
    function = template.find_resources("AWS::Lambda::Function")
    assert len(function) == 1
    layers = next(iter(function.values()))["Properties"]["Layers"]
    assert all(set(layer) == {"Ref"} for layer in layers), layers
    return {layer["Ref"] for layer in layers}


def policy_statements(template: Template) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy")
    assert len(policies) == 1, "the function's role has exactly one (default) policy"
    return next(iter(policies.values()))["Properties"]["PolicyDocument"]["Statement"]


def granted(template: Template) -> set[tuple[str, str]]:
    """Every (action, resource) pair the role's policy allows.

    ``@aws-cdk/aws-iam:minimizePolicies`` merges and sorts statements, so tests
    compare pairs, not statements. A token resource is its JSON.
    """
    pairs = set()
    for statement in policy_statements(template):
        assert statement["Effect"] == "Allow"
        for action in _listed(statement["Action"]):
            for resource in _listed(statement["Resource"]):
                pairs.add((action, resource if isinstance(resource, str) else json.dumps(resource, sort_keys=True)))
    return pairs


def synth_function(stack: cdk.Stack, construct_id: str = "Agent", **options: object) -> tuple[AgentFunction, Template]:
    """The function alone: its canary deployment (a second role, the hook function) is in test_canary_deployment.py."""
    options.setdefault("deployment_options", None)
    function = AgentFunction(stack, construct_id, options=AgentFunctionOptions(**options))
    return function, Template.from_stack(stack)


@pytest.fixture(scope="module")
def default_template(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> Template:
    stack = cdk.Stack(app_factory(), "Test", env=stack_env)
    AgentFunction(stack, "ResearchAgent", options=ALONE)
    return Template.from_stack(stack)


# -- the function --------------------------------------------------------------------


def test_default_function_runs_python_3_13_the_newest_runtime_whose_interpreter_compiles_its_layers_on_arm64(
    default_template: Template,
) -> None:
    default_template.has_resource_properties("AWS::Lambda::Function", {"Runtime": "python3.13", "Architectures": ["arm64"]})


def test_architecture_option_is_applied_to_the_function(stack: cdk.Stack) -> None:
    _, template = synth_function(stack, architecture=lambda_.Architecture.X86_64)

    template.has_resource_properties("AWS::Lambda::Function", {"Architectures": ["x86_64"]})


def test_memory_size_and_timeout_are_always_explicit(default_template: Template) -> None:
    default_template.has_resource_properties("AWS::Lambda::Function", {"MemorySize": 1024, "Timeout": 60})


def test_function_has_active_tracing(default_template: Template) -> None:
    default_template.has_resource_properties("AWS::Lambda::Function", {"TracingConfig": {"Mode": "Active"}})


def test_function_logs_json_into_its_own_log_group_kept_30_days(default_template: Template) -> None:
    log_group = only_logical_id(default_template, "AWS::Logs::LogGroup")

    default_template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
    default_template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "LoggingConfig": Match.object_like(
                {"LogFormat": "JSON", "LogGroup": {"Ref": log_group}, "ApplicationLogLevel": "INFO"}
            )
        },
    )


def test_log_retention_option_is_applied(stack: cdk.Stack) -> None:
    _, template = synth_function(stack, log_retention=logs.RetentionDays.ONE_YEAR)

    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 365})


def test_powertools_environment_defaults_name_the_service_after_the_construct(default_template: Template) -> None:
    environment = function_environment(default_template)

    assert environment["POWERTOOLS_SERVICE_NAME"] == "research-agent"
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == "Agentrail"
    assert environment["AGENT_MODEL"] == "local"
    assert environment["AGENT_DEFINITION"] == "agentrail_runtime.demo:definition"


def test_agent_options_become_agent_environment_variables(stack: cdk.Stack) -> None:
    _, template = synth_function(
        stack,
        model="bedrock:amazon.nova-lite-v1:0",
        allowed_models=["bedrock:amazon.nova-pro-v1:0"],
        agent_definition="my_agent.definition:agent",
        system_prompt="Answer in French.",
        max_steps=3,
        token_budget=5000,
        max_output_tokens=256,
        max_request_bytes=4096,
        max_tool_result_bytes=8192,
        prices={"bedrock:amazon.nova-lite": (0.06, 0.24)},
        service_name="support-bot",
        metrics_namespace="Support",
        environment={"EXTRA_FLAG": "on"},
    )
    environment = function_environment(template)

    assert isinstance(environment.pop("AGENT_VERSION"), str)
    assert environment == {
        "POWERTOOLS_SERVICE_NAME": "support-bot",
        "POWERTOOLS_METRICS_NAMESPACE": "Support",
        "AGENT_MODEL": "bedrock:amazon.nova-lite-v1:0",
        "AGENT_ALLOWED_MODELS": "bedrock:amazon.nova-pro-v1:0",
        "AGENT_DEFINITION": "my_agent.definition:agent",
        "AGENT_SYSTEM_PROMPT": "Answer in French.",
        "AGENT_MAX_STEPS": "3",
        "AGENT_TOKEN_BUDGET": "5000",
        "AGENT_MAX_OUTPUT_TOKENS": "256",
        "AGENT_MAX_REQUEST_BYTES": "4096",
        "AGENT_MAX_TOOL_RESULT_BYTES": "8192",
        "AGENT_PRICE_TABLE": json.dumps({"bedrock:amazon.nova-lite": {"input_per_million": 0.06, "output_per_million": 0.24}}),
        "EXTRA_FLAG": "on",
    }


def test_synthesized_environment_is_accepted_by_the_runtime_settings(stack: cdk.Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # The construct writes AGENT_* and the runtime reads them: a rename on either side breaks here, not at cold start.
    from agentrail_runtime.config import RuntimeSettings

    _, template = synth_function(
        stack,
        model="bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0",
        allowed_models=["openai:gpt-4o-mini"],
        openai_api_key_secret=secretsmanager.Secret.from_secret_complete_arn(stack, "Key", SECRET_ARN),
        max_steps=5,
        prices={"openai:gpt-4o-mini": (0.15, 0.6)},
    )
    for name, value in function_environment(template).items():
        assert isinstance(value, str), f"{name} must be a literal in this test, got {value!r}"
        monkeypatch.setenv(name, value)

    settings = RuntimeSettings()

    assert settings.model == "bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0"
    assert settings.max_steps == 5
    assert settings.openai_api_key_secret == SECRET_ARN
    assert settings.price_table["openai:gpt-4o-mini"].output_per_million == 0.6
    assert [(check.kind, check.name) for check in settings.health_checks] == [("secretsmanager", SECRET_ARN)]


def test_store_redaction_is_off_and_log_redaction_on_by_default_and_both_reach_the_runtime_when_switched(
    default_template: Template, stack: cdk.Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentrail_runtime.config import RuntimeSettings

    _, switched = synth_function(stack, store_redacted=True, log_redaction=False)
    environment = function_environment(switched)
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = RuntimeSettings()

    assert not {"AGENT_STORE_REDACTED", "AGENT_LOG_REDACTION"} & set(function_environment(default_template))
    assert (environment["AGENT_STORE_REDACTED"], environment["AGENT_LOG_REDACTION"]) == ("true", "false")
    assert (settings.store_redacted, settings.log_redaction) == (True, False)


def test_reserved_concurrency_is_unset_by_default_and_applied_when_given(default_template: Template, stack: cdk.Stack) -> None:
    _, capped = synth_function(stack, reserved_concurrent_executions=5)

    default_template.has_resource_properties("AWS::Lambda::Function", {"ReservedConcurrentExecutions": Match.absent()})
    capped.has_resource_properties("AWS::Lambda::Function", {"ReservedConcurrentExecutions": 5})


# -- layers and alias ----------------------------------------------------------------


def test_function_carries_the_dependencies_and_runtime_layers(default_template: Template) -> None:
    layers = function_layers(default_template)

    default_template.resource_count_is("AWS::Lambda::LayerVersion", 2)
    assert layers == {layer_id(default_template, "dependencies"), layer_id(default_template, "runtime")}


def test_agent_code_adds_a_third_layer(stack: cdk.Stack, tmp_path: Path) -> None:
    agent_code = tmp_path / "agent_code"
    (agent_code / "my_agent").mkdir(parents=True)
    (agent_code / "my_agent" / "__init__.py").write_text("definition = None\n")

    function, template = synth_function(stack, agent_code=str(agent_code))

    assert function.agent_code_layer is not None
    template.resource_count_is("AWS::Lambda::LayerVersion", 3)
    # CDK orders a function's layers by construct path (@aws-cdk/aws-lambda:recognizeLayerVersion), so compare sets.
    assert function_layers(template) == {
        layer_id(template, "dependencies"),
        layer_id(template, "runtime"),
        layer_id(template, "agent"),
    }


def test_agent_code_that_is_not_a_folder_is_refused(stack: cdk.Stack, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="agent_code must be a folder"):
        AgentFunction(stack, "Agent", options=AgentFunctionOptions(agent_code=str(tmp_path / "missing")))


def test_functions_of_one_stack_share_its_layers(stack: cdk.Stack) -> None:
    AgentFunction(stack, "First", options=ALONE)
    AgentFunction(stack, "Second", options=ALONE)

    Template.from_stack(stack).resource_count_is("AWS::Lambda::LayerVersion", 2)


def test_live_alias_points_at_a_published_version(default_template: Template) -> None:
    function = only_logical_id(default_template, "AWS::Lambda::Function")
    version = only_logical_id(default_template, "AWS::Lambda::Version")

    default_template.has_resource_properties("AWS::Lambda::Version", {"FunctionName": {"Ref": function}})
    default_template.has_resource_properties(
        "AWS::Lambda::Alias",
        {"Name": "live", "FunctionName": {"Ref": function}, "FunctionVersion": {"Fn::GetAtt": [version, "Version"]}},
    )


# -- role and grants -----------------------------------------------------------------


def test_role_has_no_managed_policies(default_template: Template) -> None:
    default_template.resource_count_is("AWS::IAM::Role", 1)
    default_template.has_resource_properties("AWS::IAM::Role", {"ManagedPolicyArns": Match.absent()})


def test_log_write_grant_is_scoped_to_the_functions_log_group(default_template: Template) -> None:
    log_group = json.dumps({"Fn::GetAtt": [only_logical_id(default_template, "AWS::Logs::LogGroup"), "Arn"]})

    logs_grants = {pair for pair in granted(default_template) if pair[0].startswith("logs:")}

    assert logs_grants == {("logs:CreateLogStream", log_group), ("logs:PutLogEvents", log_group)}


def test_only_xray_is_granted_on_every_resource(default_template: Template) -> None:
    wildcard_actions = {action for action, resource in granted(default_template) if resource == "*"}

    assert wildcard_actions == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_default_local_model_grants_no_bedrock_access(default_template: Template) -> None:
    assert not {action for action, _ in granted(default_template) if action.startswith("bedrock:")}


def test_bedrock_foundation_model_is_granted_in_the_stacks_region(stack: cdk.Stack) -> None:
    _, template = synth_function(stack, model="bedrock:anthropic.claude-3-haiku-20240307-v1:0")

    assert model_grants(template) == {"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"}


def test_inference_profile_grants_the_profile_and_the_model_in_any_region(stack: cdk.Stack) -> None:
    _, template = synth_function(stack, model="bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0")

    assert model_grants(template) == {
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
    }


def test_allowed_bedrock_models_are_granted_with_the_default_model(stack: cdk.Stack) -> None:
    _, template = synth_function(
        stack, model="bedrock:amazon.nova-lite-v1:0", allowed_models=["bedrock:amazon.nova-pro-v1:0", "local"]
    )

    assert model_grants(template) == {
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
    }


def test_step_models_are_granted_and_named_in_the_environment(stack: cdk.Stack) -> None:
    _, template = synth_function(
        stack, model="bedrock:amazon.nova-pro-v1:0", step_models={"routing": "bedrock:amazon.nova-micro-v1:0", "review": "local"}
    )

    assert model_grants(template) == {
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0",
    }
    environment = function_environment(template)
    assert json.loads(str(environment["AGENT_STEP_MODELS"])) == {"review": "local", "routing": "bedrock:amazon.nova-micro-v1:0"}


@pytest.mark.parametrize(
    ("step_models", "sentence"),
    [
        (
            {"summarizing": "local"},
            "step_models names an unknown kind of step 'summarizing'; choose from routing, planning, review",
        ),
        ({"routing": "claude"}, "step_models['routing'] is 'claude': use 'local', 'bedrock:<model-id>' or 'openai:<model>'"),
    ],
)
def test_a_step_model_of_an_unknown_kind_or_spec_is_refused_in_one_sentence(step_models: dict, sentence: str) -> None:
    with pytest.raises(ValueError, match="step_models") as refused:
        AgentFunctionOptions(step_models=step_models).validate()

    assert str(refused.value) == sentence


def test_prompt_caching_off_and_cache_prices_reach_the_environment(stack: cdk.Stack) -> None:
    _, template = synth_function(
        stack, prompt_caching=False, prices={"bedrock:anthropic.claude-sonnet-4": (3.0, 15.0, 0.3, 3.75), "local": (0.0, 0.0)}
    )

    environment = function_environment(template)
    assert environment["AGENT_PROMPT_CACHING"] == "false"
    assert json.loads(str(environment["AGENT_PRICE_TABLE"])) == {
        "bedrock:anthropic.claude-sonnet-4": {
            "input_per_million": 3.0,
            "output_per_million": 15.0,
            "cache_read_per_million": 0.3,
            "cache_write_per_million": 3.75,
        },
        "local": {"input_per_million": 0.0, "output_per_million": 0.0},
    }


def test_a_price_of_three_figures_is_refused() -> None:
    with pytest.raises(ValueError, match=r"must be \(input, output\) or \(input, output, cache_read, cache_write\)"):
        AgentFunctionOptions(prices={"local": (1.0, 2.0, 3.0)}).validate()


def test_grant_model_access_called_later_adds_the_models(stack: cdk.Stack) -> None:
    function = AgentFunction(stack, "Agent", options=ALONE)

    function.grant_model_access("eu.amazon.nova-micro-v1:0")

    assert model_grants(Template.from_stack(stack)) == {
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.amazon.nova-micro-v1:0",
        "arn:aws:bedrock:*::foundation-model/amazon.nova-micro-v1:0",
    }


def test_grant_secret_read_grants_the_secret_and_adds_a_health_check(stack: cdk.Stack) -> None:
    function = AgentFunction(stack, "Agent", options=ALONE)
    secret = secretsmanager.Secret.from_secret_complete_arn(stack, "Key", SECRET_ARN)

    function.grant_secret_read(secret)

    template = Template.from_stack(stack)
    secret_grants = {pair for pair in granted(template) if pair[0].startswith("secretsmanager:")}
    assert secret_grants == {("secretsmanager:GetSecretValue", SECRET_ARN), ("secretsmanager:DescribeSecret", SECRET_ARN)}
    checks = json.loads(function_environment(template)["AGENT_HEALTH_CHECKS"])  # type: ignore[arg-type]
    assert checks == [{"kind": "secretsmanager", "name": SECRET_ARN}]
    assert "secretsmanager" in function.called_services


def test_a_secret_read_without_a_health_check_is_still_a_call_to_secrets_manager(stack: cdk.Stack) -> None:
    # Given an agent function,
    function = AgentFunction(stack, "Agent", options=ALONE)
    secret = secretsmanager.Secret.from_secret_complete_arn(stack, "Key", SECRET_ARN)
    # when it may read a secret that GET /health should not probe,
    function.grant_secret_read(secret, health_check=False)
    # then it may read it, calls Secrets Manager (its VPC endpoint in a hardened stack), and /health leaves it out.
    template = Template.from_stack(stack)
    assert ("secretsmanager:GetSecretValue", SECRET_ARN) in granted(template)
    assert "secretsmanager" in function.called_services
    assert "AGENT_HEALTH_CHECKS" not in function_environment(template)


def test_openai_model_with_a_secret_reads_the_secret_and_names_it_in_the_environment(stack: cdk.Stack) -> None:
    secret = secretsmanager.Secret.from_secret_complete_arn(stack, "Key", SECRET_ARN)

    _, template = synth_function(stack, model="openai:gpt-4o-mini", openai_api_key_secret=secret)

    environment = function_environment(template)
    assert environment["AGENT_OPENAI_API_KEY_SECRET"] == SECRET_ARN
    assert json.loads(environment["AGENT_HEALTH_CHECKS"]) == [{"kind": "secretsmanager", "name": SECRET_ARN}]  # type: ignore[arg-type]
    assert ("secretsmanager:GetSecretValue", SECRET_ARN) in granted(template)


# -- options validation --------------------------------------------------------------


@pytest.mark.parametrize("spec", ["gpt-4o", "bedrock:", "anthropic:claude-3", "local:tiny", "bedrock:model id"])
def test_unknown_model_spec_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"unknown model .*use 'local', 'bedrock:<model-id>' or 'openai:<model>'"):
        AgentFunctionOptions(model=spec).validate()


def test_unknown_allowed_model_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model 'claude'"):
        AgentFunctionOptions(allowed_models=["claude"]).validate()


def test_openai_model_without_a_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="needs openai_api_key_secret"):
        AgentFunctionOptions(allowed_models=["openai:gpt-4o-mini"]).validate()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_steps", 0),
        ("max_steps", 101),
        ("token_budget", 0),
        ("token_budget", 10_000_001),
        ("max_output_tokens", 0),
        ("max_output_tokens", 64_001),
        ("max_request_bytes", 255),
        ("max_request_bytes", 6_000_001),
        ("max_tool_result_bytes", 255),
        ("max_tool_result_bytes", 6_000_001),
        ("memory_size", 127),
        ("memory_size", 10_241),
    ],
)
def test_out_of_range_number_is_refused(name: str, value: int) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be between \d+ and \d+, got {value}$"):
        AgentFunctionOptions(**{name: value}).validate()  # type: ignore[arg-type]


def test_non_python_runtime_is_refused() -> None:
    with pytest.raises(ValueError, match="runtime must be a Python 3 runtime, got nodejs"):
        AgentFunctionOptions(runtime=lambda_.Runtime.NODEJS_22_X).validate()


def test_construct_validates_its_options(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="max_steps must be between"):
        AgentFunction(stack, "Agent", options=AgentFunctionOptions(max_steps=0))


def _listed(value: object) -> list:
    return list(value) if isinstance(value, list) else [value]


def model_grants(template: Template) -> set[str]:
    """The resources of the Bedrock grant, checking that each carries exactly the Converse actions."""
    by_resource: dict[str, set[str]] = {}
    for action, resource in granted(template):
        if action.startswith("bedrock:"):
            by_resource.setdefault(resource, set()).add(action)
    assert all(actions == set(MODEL_ACTIONS) for actions in by_resource.values()), by_resource
    return set(by_resource)


# -- secrets for tools -----------------------------------------------------------------


def test_tool_secrets_grant_get_secret_value_on_exactly_those_secrets_and_decrypt_through_secrets_manager_only(
    stack: cdk.Stack,
) -> None:
    # given: one secret known by its ARN, one made here with a customer managed key
    key = kms.Key(stack, "CrmKey", enable_key_rotation=True)
    crm = secretsmanager.Secret(stack, "Crm", encryption_key=key)
    billing = secretsmanager.Secret.from_secret_complete_arn(stack, "Billing", SECRET_ARN)
    # when: the function's tools are granted both
    _, template = synth_function(stack, tool_secrets={"crm": crm, "billing": billing})
    # then: reading exactly these two (their value and its metadata), nothing else of Secrets Manager
    crm_ref = json.dumps({"Ref": stack.get_logical_id(crm.node.default_child)}, sort_keys=True)  # type: ignore[arg-type]
    assert {pair for pair in granted(template) if pair[0].startswith("secretsmanager:")} == {
        (action, secret) for action in READ_SECRET for secret in (crm_ref, SECRET_ARN)
    }
    # and: the secret's key lets the function's role decrypt, only when Secrets Manager asks for it
    key_policy = template.to_json()["Resources"][stack.get_logical_id(key.node.default_child)]["Properties"]["KeyPolicy"]  # type: ignore[arg-type]
    [decrypt] = [s for s in key_policy["Statement"] if "Fn::GetAtt" in s["Principal"]["AWS"]]
    assert (decrypt["Action"], decrypt["Condition"]) == (
        "kms:Decrypt",
        {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
    )
    assert not any(action.startswith("kms:") for action, _ in granted(template))
    # and: the runtime learns their names
    environment = json.dumps(function_environment(template)["AGENT_TOOL_SECRETS"])
    assert '\\"billing\\":\\"' + SECRET_ARN in environment and "crm" in environment


def test_tool_secrets_known_by_name_are_granted_with_the_suffix_secrets_manager_adds(stack: cdk.Stack) -> None:
    secret = secretsmanager.Secret.from_secret_name_v2(stack, "Crm", "crm-api-key")

    _, template = synth_function(stack, tool_secrets={"crm": secret})

    assert {pair for pair in granted(template) if pair[0].startswith("secretsmanager:")} == {
        (action, "arn:aws:secretsmanager:us-east-1:123456789012:secret:crm-api-key-??????") for action in READ_SECRET
    }


def test_the_tool_secrets_environment_is_read_by_the_runtime_settings(stack: cdk.Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentrail_runtime.config import RuntimeSettings

    billing = secretsmanager.Secret.from_secret_complete_arn(stack, "Billing", SECRET_ARN)
    _, template = synth_function(stack, tool_secrets={"billing": billing})
    monkeypatch.setenv("AGENT_TOOL_SECRETS", function_environment(template)["AGENT_TOOL_SECRETS"])  # type: ignore[arg-type]

    assert RuntimeSettings().tool_secrets == {"billing": SECRET_ARN}


@pytest.mark.parametrize("name", ["", "crm key", "crm/key", "k" * 65])
def test_a_tool_secret_name_a_tool_could_not_pass_is_refused(stack: cdk.Stack, name: str) -> None:
    secret = secretsmanager.Secret.from_secret_complete_arn(stack, "Crm", SECRET_ARN)

    with pytest.raises(ValueError, match=r"tool_secrets name .* must be 1-64 letters"):
        AgentFunctionOptions(tool_secrets={name: secret}).validate()


# -- functions that run no agent -----------------------------------------------------------


def test_functions_that_run_no_agent_get_no_model_no_api_key_and_no_tool_secret(synthesize: Callable[..., Any]) -> None:
    # given: an async agent with approvals metrics and a stateful agent, on Bedrock, an OpenAI key and a tool secret
    def build(stack: cdk.Stack) -> tuple[AsyncAgent, StatefulAgent]:
        crm = secretsmanager.Secret.from_secret_complete_arn(stack, "Crm", SECRET_ARN)
        openai = secretsmanager.Secret.from_secret_complete_arn(stack, "OpenAi", OPENAI_SECRET_ARN)
        options = AgentFunctionOptions(
            model="bedrock:us.amazon.nova-lite-v1:0",
            allowed_models=("openai:gpt-4o-mini",),
            openai_api_key_secret=openai,
            tool_secrets={"crm": crm},
            deployment_options=None,
        )
        approvals = ApprovalOptions(pending_metrics_every=cdk.Duration.minutes(5))
        return (
            AsyncAgent(stack, "Async", function_options=options, approval_options=approvals),
            StatefulAgent(stack, "Stateful", function_options=options),
        )

    (tasks, sessions), synth = synthesize(build)
    assert tasks.approval_workflow is not None and tasks.approval_workflow.pending_metrics_function is not None
    assert sessions.session_table.cleanup_function is not None
    agentless = {
        "approval_metrics": tasks.approval_workflow.pending_metrics_function,
        "task_notifier": tasks.notifier,
        "session_cleanup": sessions.session_table.cleanup_function,
    }
    # when: each function's grants are read
    # then: the agent may call Bedrock and read both secrets
    agent_actions = {action for action, _ in synth.grants(tasks.agent_function)}
    assert {"bedrock:InvokeModel", "secretsmanager:GetSecretValue"} <= agent_actions
    # and: a function that runs no agent calls no model and reads neither the API key nor the tool secret
    for name, function in agentless.items():
        assert not function.runs_agent, name
        grants = synth.grants(function)
        assert not {action for action, _ in grants if action.startswith("bedrock:")}, name
        assert not {resource for _, resource in grants if resource in (SECRET_ARN, OPENAI_SECRET_ARN)}, name
        assert not {"AGENT_TOOL_SECRETS", "AGENT_OPENAI_API_KEY_SECRET"} & set(synth.environment(function)), name
