"""Shadow deployment: with ``shadow_options`` (or ``-c shadow_percent``) the stateless agent gets a ``shadow`` alias on
the new version, an encrypted queue with a dead-letter queue, a worker fed by it, and a comparison table with TTL;
without, none of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Annotations, Match, Template

from agentrail_constructs import AgentFunction, AgentFunctionOptions, SessionOptions, ShadowOptions
from agentrail_constructs import function as function_module
from agentrail_constructs.app_config import AppConfig
from agentrail_constructs.sources import handler_dir
from agentrail_constructs.stacks import StatefulAgentStack, StatelessAgentStack
from tests.infra.conftest import SynthesizedStack

MODEL = "bedrock:us.amazon.nova-lite-v1:0"
PROMPT_ARN = "arn:aws:bedrock:us-east-1:123456789012:prompt/PROMPT1234"


@pytest.fixture(scope="module")
def shadowed_stack(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> StatelessAgentStack:
    return StatelessAgentStack(app_factory(), "shadowed", env=stack_env, shadow_options=ShadowOptions(percent=10))


@pytest.fixture(scope="module")
def shadowed(shadowed_stack: StatelessAgentStack) -> Template:
    return Template.from_stack(shadowed_stack)


@pytest.fixture(scope="module")
def shadowed_grants(shadowed_stack: StatelessAgentStack) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """What the live function's role and the shadow worker's role may do: (action, resource) pairs."""
    synthesized, agent = SynthesizedStack(shadowed_stack), shadowed_stack.agent.agent_function
    assert agent.shadow_worker is not None
    return synthesized.grants(agent), synthesized.grants(agent.shadow_worker)


@pytest.fixture(scope="module")
def plain(app_factory: Callable[..., cdk.App], stack_env: cdk.Environment) -> Template:
    return Template.from_stack(StatelessAgentStack(app_factory(), "plain", env=stack_env))


def the_one(template: Template, kind: str, props: Any = None) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, found
    return next(iter(found.items()))


def agent_alias(template: Template, name: str) -> dict[str, Any]:
    """The agent function's alias ``name`` (not its pre-traffic hook's or its worker's own ``live``)."""
    found = template.find_resources("AWS::Lambda::Alias", {"Properties": {"Name": name}})
    [alias] = [
        a
        for a in found.values()
        if a["Metadata"]["aws:cdk:path"].endswith(f"/Agent/{name.capitalize()}Alias/Resource")
        or a["Metadata"]["aws:cdk:path"].endswith(f"/Agent/Shadow/{name.capitalize()}Alias/Resource")
    ]
    return alias


def test_shadow_adds_a_shadow_alias_on_the_new_version_beside_live(shadowed):
    shadow = agent_alias(shadowed, "shadow")
    live = agent_alias(shadowed, "live")

    assert shadow["Properties"]["FunctionVersion"] == live["Properties"]["FunctionVersion"]
    assert shadow["Properties"]["FunctionName"] == live["Properties"]["FunctionName"]


def test_shadow_queue_is_encrypted_ssl_only_and_dead_letters_after_three_deliveries(shadowed):
    queues = shadowed.find_resources("AWS::SQS::Queue")
    shadow = {k: v for k, v in queues.items() if "/Shadow/Queue/Queue/" in v["Metadata"]["aws:cdk:path"]}
    dead = {k: v for k, v in queues.items() if "/Shadow/Queue/DeadLetterQueue/" in v["Metadata"]["aws:cdk:path"]}
    [(_, queue)] = shadow.items()
    [(dead_id, dead_queue)] = dead.items()

    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dead_id, "Arn"]}, "maxReceiveCount": 3}
    assert dead_queue["Properties"]["MessageRetentionPeriod"] == 14 * 86_400
    policies = shadowed.find_resources("AWS::SQS::QueuePolicy")
    assert any("aws:SecureTransport" in str(p) for p in policies.values())


def test_the_worker_reads_the_queue_with_partial_batch_failures_and_capped_concurrency(shadowed):
    shadowed.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 2},
            "BatchSize": 1,
        },
    )
    functions = shadowed.find_resources("AWS::Lambda::Function")
    worker = [f for f in functions.values() if f["Metadata"].get("agentrail:handler") == "shadow_worker"]
    assert len(worker) == 1
    variables = worker[0]["Properties"]["Environment"]["Variables"]
    assert {"AGENT_SHADOW_FUNCTION", "AGENT_SHADOW_TABLE", "AGENT_SHADOW_RETENTION_DAYS"} <= set(variables)


def test_the_comparison_table_has_pitr_encryption_and_a_ttl(shadowed):
    shadowed.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "request_id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "BillingMode": "PAY_PER_REQUEST",
        },
    )


def test_the_live_function_may_only_send_to_the_shadow_queue_and_erase_comparisons_and_knows_its_share(shadowed, shadowed_grants):
    functions = shadowed.find_resources("AWS::Lambda::Function")
    [agent] = [f for f in functions.values() if f["Metadata"].get("agentrail:handler") == "stateless"]
    variables = agent["Properties"]["Environment"]["Variables"]
    assert variables["AGENT_SHADOW_PERCENT"] == "10"
    assert "AGENT_SHADOW_QUEUE_URL" in variables
    [table] = shadowed.find_resources("AWS::DynamoDB::Table")
    assert variables["AGENT_SHADOW_TABLE"] == {"Ref": table}
    actions = {action for action, _ in shadowed_grants[0]}
    assert "sqs:SendMessage" in actions
    assert "sqs:ReceiveMessage" not in actions
    # On the comparison table: a Query of the by_owner index and DeleteItem, for POST /erase; no read, no write
    on_table = sorted((a, r.count("/index/"), "by_owner" in r) for a, r in shadowed_grants[0] if table in r)
    assert on_table == [("dynamodb:DeleteItem", 0, False), ("dynamodb:Query", 1, True)]


def test_the_comparison_table_has_a_keys_only_owner_index_for_erasure(shadowed):
    [table] = shadowed.find_resources("AWS::DynamoDB::Table").values()
    [index] = table["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_owner"
    assert index["KeySchema"] == [{"AttributeName": "owner", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_the_worker_may_only_put_comparisons_its_conditional_write_deciding_a_redelivery(shadowed_grants):
    actions = {action for action, _ in shadowed_grants[1]}

    assert {action for action in actions if action.startswith("dynamodb:")} == {"dynamodb:PutItem"}


def test_the_stack_outputs_the_comparison_table_for_the_report(shadowed, plain):
    assert "ShadowTableName" in shadowed.find_outputs("*")
    assert "ShadowTableName" not in plain.find_outputs("*")


def test_without_shadow_there_is_no_shadow_alias_queue_worker_or_table(plain):
    plain.resource_count_is("AWS::DynamoDB::Table", 0)
    assert plain.find_resources("AWS::Lambda::Alias", {"Properties": {"Name": "shadow"}}) == {}
    assert plain.find_resources("AWS::SQS::Queue") == {}
    plain.resource_count_is("AWS::Lambda::EventSourceMapping", 0)


def lone_function(
    app_factory: Callable[..., cdk.App], env: cdk.Environment, name: str, handler: str = "stateless", **options: Any
) -> tuple[cdk.Stack, AgentFunction]:
    """One AgentFunction of ``handler`` with ``AgentFunctionOptions(**options)``, alone in the stack ``name``."""
    stack = cdk.Stack(app_factory(), name, env=env)
    return stack, AgentFunction(stack, "Agent", handler_code=handler_dir(handler), options=AgentFunctionOptions(**options))


def test_live_can_be_held_on_a_version_while_shadow_takes_the_new_one(app_factory, stack_env):
    stack, _ = lone_function(
        app_factory, stack_env, "held", deployment_options=None, shadow_options=ShadowOptions(percent=100, live_version="7")
    )
    template = Template.from_stack(stack)

    live = agent_alias(template, "live")
    shadow = agent_alias(template, "shadow")
    assert live["Properties"]["FunctionVersion"] == "7"
    assert shadow["Properties"]["FunctionVersion"] != "7"


@pytest.mark.parametrize("store_redacted", [True, False])
def test_the_worker_stores_comparisons_redacted_when_the_agent_stores_redacted(app_factory, stack_env, store_redacted):
    # given an agent function with shadow, storing redacted or not
    stack, agent = lone_function(
        app_factory, stack_env, "redacted", store_redacted=store_redacted, shadow_options=ShadowOptions(percent=10)
    )

    # then the worker's environment carries the agent's AGENT_STORE_REDACTED, which its comparison store follows
    assert agent.shadow_worker is not None
    variables = SynthesizedStack(stack).environment(agent.shadow_worker)
    assert variables.get("AGENT_STORE_REDACTED") == ("true" if store_redacted else None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"percent": 0}, r"percent must be above 0 and at most 100, got 0"),
        ({"percent": 100.5}, r"percent must be above 0 and at most 100"),
        ({"percent": 5, "live_version": "$LATEST"}, r"live_version must be a published version number"),
        ({"percent": 5, "max_concurrency": 1}, r"max_concurrency must be between 2 and 1000"),
        ({"percent": 5, "max_receive_count": 0}, r"max_receive_count must be between 1 and 1000"),
        ({"percent": 5, "retention": cdk.Duration.hours(1)}, r"retention must be at least 1 day"),
    ],
)
def test_shadow_options_out_of_range_fail_at_synth_naming_the_fix(options, message):
    with pytest.raises(ValueError, match=message):
        AgentFunctionOptions(shadow_options=ShadowOptions(**options)).validate()


def test_shadow_options_on_a_handler_that_serves_no_shadow_runs_warn_and_build_no_shadow(app_factory, stack_env):
    # given options passed on to a task worker (as a pattern passes its function options to its workers)
    stack, worker = lone_function(
        app_factory, stack_env, "wrong", "task_worker", deployment_options=None, shadow_options=ShadowOptions(percent=5)
    )

    # then it has no shadow, and the synth says why
    assert worker.shadow is None
    Annotations.from_stack(stack).has_warning("*", Match.string_like_regexp("the 'task_worker' handler serves no shadow runs"))


def test_the_stateful_pattern_shadows_its_sessions_api_but_not_its_queue_worker(app_factory, stack_env):
    stack = StatefulAgentStack(
        app_factory(),
        "stateful-shadowed",
        env=stack_env,
        session_options=SessionOptions(concurrency="enqueue"),
        function_options=AgentFunctionOptions(shadow_options=ShadowOptions(percent=10)),
    )
    template = Template.from_stack(stack)

    assert stack.agent.agent_function.shadow is not None and stack.agent.worker.shadow is None
    assert len(template.find_resources("AWS::Lambda::Alias", {"Properties": {"Name": "shadow"}})) == 1
    assert "ShadowTableName" in template.find_outputs("*")


def test_the_shadow_percent_context_key_turns_shadow_on_and_a_bad_value_names_the_key(app_factory):
    config = AppConfig.from_context(app_factory(context={"shadow_percent": "12.5", "patterns": "stateless"}), ("stateless",))
    assert config.stack_options("stateless")["shadow_options"].percent == 12.5
    with pytest.raises(ValueError, match=r"context 'shadow_percent': .*must be above 0 and at most 100"):
        AppConfig.from_context(app_factory(context={"shadow_percent": "0", "patterns": "stateless"}), ("stateless",))


def handler_environment(template: Template, handler: str) -> dict[str, str]:
    """The environment of the function running ``handler``, each token (a Ref, a GetAtt) as a placeholder string."""
    [function] = [
        f for f in template.find_resources("AWS::Lambda::Function").values() if f["Metadata"].get("agentrail:handler") == handler
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    return {name: value if isinstance(value, str) else f"token-of-{name}" for name, value in variables.items()}


def test_the_environment_the_construct_writes_loads_into_the_runtime_shadow_settings(shadowed, monkeypatch):
    # The construct writes AGENT_SHADOW_* and the runtime reads them: a rename on either side breaks here.
    from agentrail_runtime.shadow import ShadowSettings
    from agentrail_runtime.shadow.worker import ShadowWorkerSettings

    for name, value in handler_environment(shadowed, "stateless").items():
        monkeypatch.setenv(name, value)
    live = ShadowSettings()
    for name, value in handler_environment(shadowed, "shadow_worker").items():
        monkeypatch.setenv(name, value)
    worker = ShadowWorkerSettings()

    assert (live.percent, live.queue_url) == (10, "token-of-AGENT_SHADOW_QUEUE_URL")
    assert (worker.function, worker.table, worker.retention_days) == (
        "token-of-AGENT_SHADOW_FUNCTION",
        "token-of-AGENT_SHADOW_TABLE",
        14,
    )


def prompted_agent_code(folder: Path) -> Path:
    """Agent code whose system prompt is a Bedrock prompt (so the agent's role may GetPrompt on it)."""
    (folder / "prompted_agent").mkdir(parents=True, exist_ok=True)
    (folder / "prompted_agent" / "__init__.py").write_text(
        "from agentrail_runtime.agent import AgentDefinition, prompt_from_bedrock\n"
        f"definition = AgentDefinition(name='support', system_prompt=prompt_from_bedrock({PROMPT_ARN!r}, version='3'))\n"
    )
    return folder


def test_the_worker_runs_no_agent_so_it_may_read_no_prompt_and_asks_the_runtime_nothing(
    app_factory, stack_env, tmp_path, monkeypatch
):
    # Given a shadowed agent whose system prompt is a Bedrock prompt, and a record of what the runtime is asked,
    # (by the service name of the function whose environment each version request is made from).
    asked: list[str] = []
    request = function_module.version_request

    def recorded(environment: Any, **options: Any) -> Any:
        asked.append(environment["POWERTOOLS_SERVICE_NAME"])
        return request(environment, **options)

    monkeypatch.setattr(function_module, "version_request", recorded)
    stack = cdk.Stack(app_factory(), "prompted", env=stack_env)
    agent = AgentFunction(
        stack,
        "Agent",
        options=AgentFunctionOptions(
            model=MODEL,
            agent_code=str(prompted_agent_code(tmp_path)),
            agent_definition="prompted_agent:definition",
            deployment_options=None,
            shadow_options=ShadowOptions(percent=10),
        ),
    )
    # when it synthesizes,
    synthesized = SynthesizedStack(stack)
    # then the agent may read its prompt, the worker (which replays requests on the candidate) nothing, and the runtime
    # is asked for the agent's version only: the worker stamps the agent's.
    assert agent.shadow_worker is not None
    assert agent.bedrock_prompt_arns != [] and agent.shadow_worker.bedrock_prompt_arns == []
    assert "bedrock-agent" not in agent.shadow_worker.called_services
    assert "bedrock:GetPrompt" not in {action for action, _ in synthesized.grants(agent.shadow_worker)}
    assert asked == [agent.service_name]


def test_the_worker_logs_and_the_comparisons_stay_under_the_functions_log_key(app_factory, stack_env):
    # Given an agent whose logs are under a customer managed key, shadowed without a key of its own,
    stack = cdk.Stack(app_factory(), "keyed", env=stack_env)
    key = kms.Key(stack, "LogKey", enable_key_rotation=True)
    agent = AgentFunction(
        stack,
        "Agent",
        options=AgentFunctionOptions(deployment_options=None, log_encryption_key=key, shadow_options=ShadowOptions(percent=10)),
    )
    # when it synthesizes,
    template = Template.from_stack(stack)
    # then the worker's log group, the shadow queues and the comparison table are under that key too.
    key_arn = {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}  # type: ignore[arg-type]
    assert agent.shadow_worker is not None and agent.shadow is not None
    worker_logs = template.to_json()["Resources"][stack.get_logical_id(agent.shadow_worker.log_group.node.default_child)]  # type: ignore[arg-type]
    assert worker_logs["Properties"]["KmsKeyId"] == key_arn
    template.has_resource_properties("AWS::DynamoDB::Table", {"SSESpecification": Match.object_like({"KMSMasterKeyId": key_arn})})
    queue = template.to_json()["Resources"][stack.get_logical_id(agent.shadow.queue.node.default_child)]  # type: ignore[arg-type]
    assert queue["Properties"]["KmsMasterKeyId"] == key_arn


def test_a_data_key_set_on_the_functions_logs_later_reaches_the_workers_logs_too(app_factory, stack_env):
    # Given a shadowed agent, whose logs a table construct then puts under its data key (as SessionTable does),
    stack = cdk.Stack(app_factory(), "later", env=stack_env)
    key = kms.Key(stack, "DataKey", enable_key_rotation=True)
    agent = AgentFunction(
        stack, "Agent", options=AgentFunctionOptions(deployment_options=None, shadow_options=ShadowOptions(percent=10))
    )
    agent.encrypt_logs(key)
    # when it synthesizes,
    resources = Template.from_stack(stack).to_json()["Resources"]
    # then the worker's logs, which hold the same requests, are under that key too.
    assert agent.shadow_worker is not None
    worker_logs = resources[stack.get_logical_id(agent.shadow_worker.log_group.node.default_child)]  # type: ignore[arg-type]
    assert worker_logs["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}  # type: ignore[arg-type]
