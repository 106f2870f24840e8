"""The batch lane as infrastructure: the task table's ``by_batch`` index, the lane's bucket, Bedrock's service role
(trusted for this account's jobs only, scoped to the bucket and the lane's models), the lane function's grants and
environment, its EventBridge Scheduler schedule with a dead-letter queue, the API function's environment, each synth-time
refusal in one sentence, cdk-nag and checkov, and ``-c batch_lane=...`` from the context to the stack."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

from agentrail_constructs import (
    PATTERN_STACKS,
    AgentFunctionOptions,
    AsyncAgent,
    AsyncOptions,
    BatchLane,
    BatchLaneOptions,
    TaskTableOptions,
)
from agentrail_constructs.app_config import AppConfig
from agentrail_constructs.task_table import TaskTable
from agentrail_runtime import contract
from tests.infra.conftest import TEST_ENV, CloudAssembly, SynthesizedStack, listed, synthesize_real_app, token_text
from tests.infra.test_cdk_nag import violations
from tests.infra.test_checkov import SKIPPABLE, run_checkov

#: An agent without tools: what a Bedrock batch job can run.
PLAIN_AGENT = """
from agentrail_runtime.agent import AgentDefinition

definition = AgentDefinition(name="summarizer", system_prompt="Summarize the text in one sentence.")
"""
NOVA_LITE = "bedrock:us.amazon.nova-lite-v1:0"
JOBS_ARN = f"arn:aws:bedrock:{TEST_ENV.region}:{TEST_ENV.account}:model-invocation-job/*"
LANE = BatchLaneOptions(check_every=cdk.Duration.minutes(2), default_lane="batch", below_minimum="fail")


@pytest.fixture(scope="module")
def plain_agent_code(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("batch-agent-code")
    (folder / "plain_agent").mkdir()
    (folder / "plain_agent" / "__init__.py").write_text(PLAIN_AGENT)
    return str(folder)


def plain(code: str, **overrides: Any) -> AgentFunctionOptions:
    """The options of an agent without tools (no canary: nothing here is about deployments)."""
    settings: dict[str, Any] = {
        "agent_code": code,
        "agent_definition": "plain_agent:definition",
        "model": NOVA_LITE,
        "deployment_options": None,
        **overrides,
    }
    return AgentFunctionOptions(**settings)


@pytest.fixture(scope="module")
def lane_stack(app_factory: Callable[..., cdk.App], plain_agent_code: str) -> SynthesizedStack:
    """The async pattern's stack in the test account with a batch lane on Nova Lite (a cross-Region inference profile),
    Nova Pro allowed too."""
    stack = PATTERN_STACKS["async"](
        app_factory(),
        "Batch",
        env=TEST_ENV,
        function_options=plain(plain_agent_code, allowed_models=("bedrock:amazon.nova-pro-v1:0",)),
        options=AsyncOptions(batch_lane=LANE),
    )
    return SynthesizedStack(stack)


def lane_of(synthesized: SynthesizedStack) -> BatchLane:
    lane = synthesized.stack.agent.batch_lane  # type: ignore[attr-defined]
    assert isinstance(lane, BatchLane)
    return lane


def arn_of(synthesized: SynthesizedStack, construct: Any) -> str:
    return str(synthesized.render({"Fn::GetAtt": [synthesized.logical_id(construct), "Arn"]}))


def rendered_grants(synthesized: SynthesizedStack, agent_function: Any) -> set[tuple[str, str]]:
    return {
        (action, str(synthesized.render(json.loads(resource) if resource.startswith("{") else resource)))
        for action, resource in synthesized.grants(agent_function)
    }


def role_statements(synthesized: SynthesizedStack, role: Any) -> list[dict[str, Any]]:
    policy = role.node.find_child("DefaultPolicy")
    return list(synthesized.properties(policy)["PolicyDocument"]["Statement"])


# -- the task table ----------------------------------------------------------------------------


def test_the_task_table_gets_a_sparse_keys_only_by_batch_index_sorted_by_the_number_created_at(
    lane_stack: SynthesizedStack,
) -> None:
    # Given the async stack with a batch lane, when the task table's indexes are read,
    table = lane_stack.properties(lane_stack.stack.agent.task_table.table)  # type: ignore[attr-defined]
    [index] = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == contract.TASK_BATCH_INDEX]
    # then by_batch is keyed by the string batch_queue, sorted by the number created_at, keys only.
    assert index["KeySchema"] == [
        {"AttributeName": contract.TASK_BATCH_ATTRIBUTE, "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert {"AttributeName": "batch_queue", "AttributeType": "S"} in table["AttributeDefinitions"]
    assert {"AttributeName": "created_at", "AttributeType": "N"} in table["AttributeDefinitions"]


def test_adding_the_batch_index_twice_adds_it_once(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> TaskTable:
        table = TaskTable(stack, "Tasks")
        table.add_batch_index()
        table.add_batch_index()
        return table

    table, synthesized = synthesize(build)

    names = [i["IndexName"] for i in synthesized.properties(table.table)["GlobalSecondaryIndexes"]]
    assert names.count(contract.TASK_BATCH_INDEX) == 1


def test_without_a_batch_lane_the_task_table_has_no_by_batch_index_and_the_api_no_batch_setting(synthesize: Any) -> None:
    agent, synthesized = synthesize(
        lambda stack: AsyncAgent(stack, "Agent", function_options=AgentFunctionOptions(deployment_options=None))
    )

    indexes = [i["IndexName"] for i in synthesized.properties(agent.task_table.table)["GlobalSecondaryIndexes"]]
    assert contract.TASK_BATCH_INDEX not in indexes
    assert agent.batch_lane is None
    assert contract.BATCH_ENABLED_ENV not in synthesized.environment(agent.agent_function)
    assert synthesized.of_type("AWS::Scheduler::Schedule") == {}


# -- the bucket ---------------------------------------------------------------------------------


def test_the_lane_bucket_is_encrypted_blocks_public_access_and_expires_job_files_with_their_tasks(
    lane_stack: SynthesizedStack,
) -> None:
    # Given the lane's bucket
    bucket = lane_stack.properties(lane_of(lane_stack).bucket)
    # then it is encrypted, blocks every kind of public access and disables ACLs,
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    # and expires a job's files a day after their tasks' records (30 days), aborting unfinished uploads.
    [lifecycle] = bucket["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == 31
    assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert lifecycle["Status"] == "Enabled"


def test_the_lane_bucket_refuses_every_request_without_tls(lane_stack: SynthesizedStack) -> None:
    bucket = lane_stack.logical_id(lane_of(lane_stack).bucket)
    [policy] = [p for p in lane_stack.of_type("AWS::S3::BucketPolicy").values() if p["Bucket"] == {"Ref": bucket}]

    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# -- Bedrock's service role ---------------------------------------------------------------------


def test_bedrock_may_assume_the_service_role_only_for_batch_jobs_of_this_account_and_region(
    lane_stack: SynthesizedStack,
) -> None:
    # Given the lane's service role, when its trust policy is read,
    role = lane_stack.properties(lane_of(lane_stack).service_role)
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    # then only Bedrock may assume it, for a model invocation job of this account in this Region.
    assert statement["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": TEST_ENV.account},
        "ArnLike": {"aws:SourceArn": JOBS_ARN},
    }
    assert "ManagedPolicyArns" not in role


def test_the_service_role_may_read_and_write_only_the_lane_bucket_and_invoke_only_the_lane_models(
    lane_stack: SynthesizedStack,
) -> None:
    # Given the lane's service role
    lane = lane_of(lane_stack)
    bucket = arn_of(lane_stack, lane.bucket)
    statements = role_statements(lane_stack, lane.service_role)
    pairs = {
        (action, str(lane_stack.render(resource)))
        for statement in statements
        for action in listed(statement["Action"])
        for resource in listed(statement["Resource"])
    }
    # then it may get and put objects of the lane bucket and list it, in this account only,
    assert {("s3:GetObject", f"{bucket}/*"), ("s3:PutObject", f"{bucket}/*"), ("s3:ListBucket", bucket)} <= pairs
    for statement in statements:
        if any(action.startswith("s3:") for action in listed(statement["Action"])):
            assert statement["Condition"] == {"StringEquals": {"aws:ResourceAccount": TEST_ENV.account}}
    # and invoke Nova Lite (its inference profile, and the model in the Regions the profile routes to) and Nova Pro,
    # the allowed model that takes batch jobs, nothing else,
    assert {resource for action, resource in pairs if action == "bedrock:InvokeModel"} == {
        f"arn:aws:bedrock:{TEST_ENV.region}:{TEST_ENV.account}:inference-profile/us.amazon.nova-lite-v1:0",
        "arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0",
        f"arn:aws:bedrock:{TEST_ENV.region}::foundation-model/amazon.nova-pro-v1:0",
    }
    assert {action for action, _ in pairs} == {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "bedrock:InvokeModel"}
    # and no statement names every resource.
    assert all(resource != "*" for _, resource in pairs)


def test_a_customer_managed_key_encrypts_the_bucket_and_the_queue_and_the_roles_may_use_it(
    synthesize: Any, plain_agent_code: str
) -> None:
    def build(stack: cdk.Stack) -> tuple[AsyncAgent, kms.Key]:
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        agent = AsyncAgent(
            stack,
            "Agent",
            function_options=plain(plain_agent_code),
            task_table_options=TaskTableOptions(encryption_key=key),
            options=AsyncOptions(batch_lane=BatchLaneOptions()),
        )
        return agent, key

    (agent, key), synthesized = synthesize(build)
    lane = agent.batch_lane
    assert lane is not None
    key_id = synthesized.logical_id(key)

    [rule] = synthesized.properties(lane.bucket)["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert key_id in json.dumps(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"])
    assert key_id in json.dumps(synthesized.properties(lane.dead_letter_queue)["KmsMasterKeyId"])
    for role in (lane.service_role, lane.schedule_role, lane.agent_function.role):
        statements = role_statements(synthesized, role)
        kms_actions = {action for s in statements if key_id in json.dumps(s["Resource"]) for action in listed(s["Action"])}
        assert {"kms:Decrypt", "kms:GenerateDataKey"} <= {a.rstrip("*") for a in kms_actions}, role.node.path


def test_a_local_model_has_no_bedrock_model_to_grant(synthesize: Any, plain_agent_code: str) -> None:
    agent, synthesized = synthesize(
        lambda stack: AsyncAgent(
            stack,
            "Agent",
            function_options=plain(plain_agent_code, model="local"),
            options=AsyncOptions(batch_lane=BatchLaneOptions(flush_size=1)),
        )
    )
    lane = agent.batch_lane

    actions = {a for s in role_statements(synthesized, lane.service_role) for a in listed(s["Action"])}
    assert actions == {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}
    grants = synthesized.grants(lane.agent_function)
    assert {resource for action, resource in grants if action == "bedrock:CreateModelInvocationJob"} == {JOBS_ARN}


# -- the lane function -------------------------------------------------------------------------


def test_the_lane_function_may_pass_only_the_service_role_and_only_to_bedrock(lane_stack: SynthesizedStack) -> None:
    # Given the lane function's policy, when its PassRole statements are read,
    lane = lane_of(lane_stack)
    passing = [s for s in role_statements(lane_stack, lane.agent_function.role) if "iam:PassRole" in listed(s["Action"])]
    # then one statement passes exactly the service role, and only to Bedrock,
    [statement] = passing
    assert statement["Action"] == "iam:PassRole"
    assert statement["Resource"] == {"Fn::GetAtt": [lane_stack.logical_id(lane.service_role), "Arn"]}
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    # and no other function of the stack may pass any role.
    others = [s for s in lane_stack.policy_statements() if "iam:PassRole" in listed(s["Action"]) and s is not statement]
    assert all(s == statement for s in others)


def test_the_lane_function_starts_and_describes_jobs_finds_waiting_tasks_and_sends_the_too_few_on_demand(
    lane_stack: SynthesizedStack,
) -> None:
    # Given the lane function's grants
    lane = lane_of(lane_stack)
    agent = lane_stack.stack.agent  # type: ignore[attr-defined]
    grants = rendered_grants(lane_stack, lane.agent_function)
    bucket, table = arn_of(lane_stack, lane.bucket), arn_of(lane_stack, agent.task_table.table)
    profile = f"arn:aws:bedrock:{TEST_ENV.region}:{TEST_ENV.account}:inference-profile/us.amazon.nova-lite-v1:0"
    # then it may start a job on the lane's models and describe any job of this account and Region,
    assert {("bedrock:CreateModelInvocationJob", JOBS_ARN), ("bedrock:CreateModelInvocationJob", profile)} <= grants
    assert {r for a, r in grants if a == "bedrock:GetModelInvocationJob"} == {JOBS_ARN}
    # query the by_batch index (and no index wildcard), read and write the job files,
    assert ("dynamodb:Query", f"{table}/index/by_batch") in grants
    assert not any(a == "dynamodb:Query" and r.endswith("/index/*") for a, r in grants)
    assert {("s3:GetObject", f"{bucket}/*"), ("s3:PutObject", f"{bucket}/*"), ("s3:ListBucket", bucket)} <= grants
    # update tasks, and send a message to the on-demand task queue.
    assert ("dynamodb:UpdateItem", table) in grants
    queue = arn_of(lane_stack, agent.queue)
    assert ("sqs:SendMessage", queue) in grants


def test_the_lane_function_runs_the_workers_agent_within_its_timeout_without_a_reservation(lane_stack: SynthesizedStack) -> None:
    # Given the lane and worker functions
    agent = lane_stack.stack.agent  # type: ignore[attr-defined]
    lane = lane_of(lane_stack)
    function = lane_stack.properties(lane.function)
    lane_env, worker_env = lane_stack.environment(lane.agent_function), lane_stack.environment(agent.worker)
    # then the lane runs for at most its timeout, in the account pool,
    assert "ReservedConcurrentExecutions" not in function  # overlapping ticks are safe; a reservation can fail a deploy
    assert function["Timeout"] == 300
    assert function["Handler"] == "app.handler"
    assert lane.agent_function.handler_code.name == "batch_lane"
    # with the worker's agent: the same definition, model and version.
    for name in ("AGENT_DEFINITION", "AGENT_MODEL", "AGENT_ALLOWED_MODELS", "AGENT_VERSION"):
        assert lane_env[name] == worker_env[name], name


def test_the_lane_function_is_told_the_lane_settings_bucket_role_and_queue(lane_stack: SynthesizedStack) -> None:
    lane = lane_of(lane_stack)
    agent = lane_stack.stack.agent  # type: ignore[attr-defined]

    environment = lane_stack.environment(lane.agent_function)

    assert {name: environment[name] for name in environment if name.startswith(contract.BATCH_ENV_PREFIX)} == {
        contract.BATCH_ENABLED_ENV: "true",
        contract.BATCH_DEFAULT_LANE_ENV: "batch",
        contract.BATCH_BUCKET_ENV: {"Ref": lane_stack.logical_id(lane.bucket)},
        contract.BATCH_ROLE_ARN_ENV: {"Fn::GetAtt": [lane_stack.logical_id(lane.service_role), "Arn"]},
        contract.BATCH_FLUSH_SIZE_ENV: "100",
        contract.BATCH_MAX_AGE_ENV: "3600",
        contract.BATCH_BELOW_MINIMUM_ENV: "fail",
    }
    assert environment["AGENT_TASK_QUEUE_URL"] == {"Ref": lane_stack.logical_id(agent.queue)}
    assert environment["AGENT_TASK_TABLE"] == {"Ref": lane_stack.logical_id(agent.task_table.table)}
    checks = json.loads(str(lane_stack.render(environment["AGENT_HEALTH_CHECKS"])))
    assert {"kind": "s3", "name": lane_stack.logical_id(lane.bucket)} in checks


def test_the_api_function_learns_that_the_lane_exists_and_the_default_lane(lane_stack: SynthesizedStack) -> None:
    agent = lane_stack.stack.agent  # type: ignore[attr-defined]

    environment = lane_stack.environment(agent.agent_function)

    assert environment[contract.BATCH_ENABLED_ENV] == "true"
    assert environment[contract.BATCH_DEFAULT_LANE_ENV] == "batch"
    assert contract.BATCH_BUCKET_ENV not in environment
    assert contract.BATCH_ENABLED_ENV not in lane_stack.environment(agent.worker)


# -- the schedule -------------------------------------------------------------------------------


def test_the_schedule_invokes_the_live_alias_every_check_every_with_retries_and_a_dead_letter_queue(
    lane_stack: SynthesizedStack,
) -> None:
    # Given the lane's schedule
    lane = lane_of(lane_stack)
    [schedule] = lane_stack.of_type("AWS::Scheduler::Schedule").values()
    target = schedule["Target"]
    # then it runs at check_every (2 minutes), on time,
    assert schedule["ScheduleExpression"] == "rate(2 minutes)"
    assert schedule["State"] == "ENABLED"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    # invokes the lane function's live alias with the lane's input, with its own role,
    assert target["Arn"] == {"Ref": lane_stack.logical_id(lane.alias)}
    assert json.loads(target["Input"]) == {"source": "agentrail.batch-lane"}
    assert target["RoleArn"] == {"Fn::GetAtt": [lane_stack.logical_id(lane.schedule_role), "Arn"]}
    # retries twice within one period, then dead-letters the tick in an encrypted queue.
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 120}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [lane_stack.logical_id(lane.dead_letter_queue), "Arn"]}}
    queue = lane_stack.properties(lane.dead_letter_queue)
    assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue


def test_only_the_scheduler_of_this_account_may_invoke_the_lane_and_only_its_alias(lane_stack: SynthesizedStack) -> None:
    lane = lane_of(lane_stack)
    role = lane_stack.properties(lane.schedule_role)

    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": TEST_ENV.account}}
    pairs = {
        (action, token_text(resource))
        for statement in role_statements(lane_stack, lane.schedule_role)
        for action in listed(statement["Action"])
        for resource in listed(statement["Resource"])
    }
    assert pairs == {
        ("lambda:InvokeFunction", token_text({"Ref": lane_stack.logical_id(lane.alias)})),
        ("sqs:SendMessage", token_text({"Fn::GetAtt": [lane_stack.logical_id(lane.dead_letter_queue), "Arn"]})),
    }


def test_a_tick_that_fails_is_dead_lettered_by_lambda_not_retried(lane_stack: SynthesizedStack) -> None:
    lane = lane_of(lane_stack)
    function = lane_stack.properties(lane.function)
    function_id = lane_stack.logical_id(lane.function)
    [config] = [c for c in lane_stack.of_type("AWS::Lambda::EventInvokeConfig").values() if function_id in json.dumps(c)]

    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [lane_stack.logical_id(lane.dead_letter_queue), "Arn"]}}
    assert config["MaximumRetryAttempts"] == 0
    assert config["MaximumEventAgeInSeconds"] == 120
    skips = lane_stack.resources[lane_stack.logical_id(lane.function)]["Metadata"].get("checkov", {}).get("skip", [])
    assert "CKV_AWS_116" not in {skip["id"] for skip in skips}


# -- cdk-nag and checkov ------------------------------------------------------------------------


@pytest.mark.parametrize("key", [False, True], ids=["aws-managed-keys", "customer-managed-key"])
def test_a_stack_with_a_batch_lane_has_no_unacknowledged_cdk_nag_finding_and_no_failed_checkov_check(
    app_factory: Callable[..., cdk.App], plain_agent_code: str, key: bool
) -> None:
    # Given the async stack with a batch lane on a cross-Region inference profile, checked by cdk-nag as app.py checks
    # every stack (environment-agnostic, as app.py synthesizes without credentials)
    app = app_factory()
    stack = cdk.Stack(app, "Batch")
    encryption_key = kms.Key(stack, "Key", enable_key_rotation=True) if key else None
    AsyncAgent(
        stack,
        "AsyncAgent",
        function_options=plain(plain_agent_code, allowed_models=("bedrock:amazon.nova-pro-v1:0",)),
        task_table_options=TaskTableOptions(encryption_key=encryption_key),
        # The webhook notifier's grants under a customer managed key are not this test's subject.
        options=AsyncOptions(batch_lane=LANE, webhooks=not key),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    # when it is synthesized
    assembly = app.synth()

    # then cdk-nag leaves nothing unacknowledged,
    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    assert violations(report, "Batch") == []
    # and checkov fails nothing and skips only the reviewed kinds, passing the lane's bucket, role and function.
    template = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
    results = run_checkov([template])[template.name]
    assert not results["failed"], [(c["check_id"], c["resource"]) for c in results["failed"]]
    assert {c["check_id"] for c in results["skipped"]} <= set(SKIPPABLE)
    passed = {c["resource"] for c in results["passed"]}
    for part in ("BatchLaneBucket", "BatchLaneServiceRole", "BatchLaneFunction"):
        assert any(part in resource for resource in passed), part


# -- refusals at synth -------------------------------------------------------------------------


def one_sentence(message: str) -> bool:
    return "\n" not in message and ". " not in message


def test_a_model_without_batch_inference_fails_the_synth_in_one_sentence_naming_the_lane(
    synthesize: Any, plain_agent_code: str
) -> None:
    with pytest.raises(
        ValueError, match=r"^Test/Agent/BatchLane: The model bedrock:cohere.command-r-v1:0 does not take"
    ) as error:
        synthesize(
            lambda stack: AsyncAgent(
                stack,
                "Agent",
                function_options=plain(plain_agent_code, model="bedrock:cohere.command-r-v1:0"),
                options=AsyncOptions(batch_lane=BatchLaneOptions()),
            )
        )

    assert one_sentence(str(error.value))


def test_a_flush_size_below_the_models_minimum_fails_the_synth_naming_the_minimum_and_the_model(
    synthesize: Any, plain_agent_code: str
) -> None:
    with pytest.raises(ValueError, match=r"^Test/Agent/BatchLane: flush_size 20 is below") as error:
        synthesize(
            lambda stack: AsyncAgent(
                stack,
                "Agent",
                function_options=plain(plain_agent_code, model="bedrock:amazon.nova-lite-v1:0"),
                options=AsyncOptions(batch_lane=BatchLaneOptions(flush_size=20)),
            )
        )

    message = str(error.value)
    assert message.startswith("Test/Agent/BatchLane: ")
    assert "flush_size 20 is below the 100 records per job Bedrock sets for bedrock:amazon.nova-lite-v1:0" in message
    assert one_sentence(message)


def test_a_max_age_whose_tasks_could_outlive_their_records_fails_the_synth(synthesize: Any, plain_agent_code: str) -> None:
    with pytest.raises(ValueError, match=r"^Test/Agent/BatchLane: max_age \(86400 seconds\) plus Bedrock's 24-hour") as error:
        synthesize(
            lambda stack: AsyncAgent(
                stack,
                "Agent",
                function_options=plain(plain_agent_code),
                task_table_options=TaskTableOptions(retention=cdk.Duration.days(1)),
                options=AsyncOptions(batch_lane=BatchLaneOptions(max_age=cdk.Duration.days(1))),
            )
        )

    assert one_sentence(str(error.value))


def test_an_agent_with_tools_fails_the_synth_naming_the_lane_and_the_tools(synthesize: Any) -> None:
    # Given the demo agent (it has tools) on a model that takes batch jobs
    options = AgentFunctionOptions(model=NOVA_LITE, deployment_options=None)

    with pytest.raises(ValueError, match=r"^Test/Agent/BatchLane: the agent has tools") as error:
        synthesize(
            lambda stack: AsyncAgent(
                stack, "Agent", function_options=options, options=AsyncOptions(batch_lane=BatchLaneOptions())
            )
        )

    message = str(error.value)
    assert message.startswith("Test/Agent/BatchLane: the agent has tools ('calculator', 'convert_units'")
    assert "a Bedrock batch inference job runs no tools" in message
    assert one_sentence(message)


def test_when_the_runtime_cannot_load_the_definition_at_synth_the_lane_is_built_with_a_warning(synthesize: Any) -> None:
    options = AgentFunctionOptions(agent_definition="no_such_agent_module:definition", deployment_options=None)

    agent, synthesized = synthesize(
        lambda stack: AsyncAgent(stack, "Agent", function_options=options, options=AsyncOptions(batch_lane=BatchLaneOptions()))
    )

    assert agent.batch_lane is not None
    Annotations.from_stack(synthesized.stack).has_warning(
        "*", Match.string_like_regexp("could not check at synth that the agent of Test/Agent/BatchLane has no tools")
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (BatchLaneOptions(flush_size=0), r"flush_size must be between 1 and 50000 tasks per job, got 0"),
        (BatchLaneOptions(flush_size=50_001), r"flush_size must be between 1 and 50000 tasks per job, got 50001"),
        (BatchLaneOptions(max_age=cdk.Duration.seconds(30)), r"max_age must be between 1 minute and 7 days, got 30 seconds"),
        (BatchLaneOptions(max_age=cdk.Duration.days(8)), r"max_age must be between 1 minute and 7 days, got 691200 seconds"),
        (BatchLaneOptions(check_every=cdk.Duration.seconds(90)), r"check_every must be a whole number of minutes, at least 1"),
        (BatchLaneOptions(check_every=cdk.Duration.seconds(30)), r"check_every must be a whole number of minutes, at least 1"),
        (
            BatchLaneOptions(max_age=cdk.Duration.minutes(10), check_every=cdk.Duration.minutes(15)),
            r"check_every \(900 seconds\) must be at most max_age \(600 seconds\)",
        ),
        (BatchLaneOptions(below_minimum="drop"), r"below_minimum must be one of on_demand, fail, got 'drop'"),  # type: ignore[arg-type]
        (BatchLaneOptions(default_lane="later"), r"default_lane must be one of on_demand, batch, got 'later'"),  # type: ignore[arg-type]
        (BatchLaneOptions(timeout=cdk.Duration.minutes(16)), r"timeout must be between 1 second and 15 minutes, got 960"),
    ],
)
def test_each_bad_option_is_refused_in_one_sentence(options: BatchLaneOptions, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^batch lane {message}") as error:
        AsyncOptions(batch_lane=options).validate()

    assert one_sentence(str(error.value))


# -- the context key ---------------------------------------------------------------------------


def settings_of(options: BatchLaneOptions) -> dict[str, Any]:
    """The options as plain values (a Duration compares by identity)."""
    return {name: value.to_seconds() if isinstance(value, cdk.Duration) else value for name, value in vars(options).items()}


def config_of(app_factory: Callable[..., cdk.App], **context: str) -> AppConfig:
    return AppConfig.from_context(app_factory(context=context), tuple(PATTERN_STACKS))


def test_batch_lane_true_gives_the_async_pattern_a_lane_with_every_default(app_factory: Callable[..., cdk.App]) -> None:
    config = config_of(app_factory, patterns="async", batch_lane="true")

    options = config.stack_options("async")["options"]

    assert settings_of(options.batch_lane) == settings_of(BatchLaneOptions())
    assert options.webhooks is True


def test_batch_lane_pairs_set_each_option_and_keep_webhooks_off(app_factory: Callable[..., cdk.App]) -> None:
    config = config_of(
        app_factory,
        patterns="async",
        webhooks="false",
        batch_lane="flush_size=20,max_age_minutes=60,check_every_minutes=1,below_minimum=fail,default_lane=batch",
    )

    options = config.stack_options("async")["options"]

    lane = options.batch_lane
    assert (lane.flush_size, lane.max_age.to_minutes(), lane.check_every.to_minutes()) == (20, 60, 1)
    assert (lane.below_minimum, lane.default_lane) == ("fail", "batch")
    assert options.webhooks is False


@pytest.mark.parametrize("value", ["false", ""])
def test_batch_lane_false_or_empty_gives_no_lane(app_factory: Callable[..., cdk.App], value: str) -> None:
    config = config_of(app_factory, patterns="async", batch_lane=value)

    assert config.batch_lane is None
    assert "options" not in config.stack_options("async")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("flush_size", r"context 'batch_lane' takes true or key=value pairs, comma-separated, with keys flush_size, "),
        ("size=20", r"context 'batch_lane' takes true or key=value pairs.*got 'size=20'"),
        ("flush_size=many", r"context 'batch_lane': flush_size must be a whole number, got 'many'"),
        (
            "flush_size=0",
            r"context 'batch_lane': batch lane flush_size must be between 1 and 50000 .*\(for example -c batch_lane=",
        ),
        ("below_minimum=drop", r"context 'batch_lane': batch lane below_minimum must be one of on_demand, fail, got 'drop'"),
    ],
)
def test_a_wrong_batch_lane_value_fails_in_one_sentence(app_factory: Callable[..., cdk.App], value: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^{message}") as error:
        config_of(app_factory, patterns="async", batch_lane=value)

    assert one_sentence(str(error.value))


def test_batch_lane_without_the_async_pattern_fails_naming_the_fix(app_factory: Callable[..., cdk.App]) -> None:
    with pytest.raises(
        ValueError, match=r"context 'batch_lane' configures the async pattern's batch lane.*add async to patterns"
    ):
        config_of(app_factory, patterns="stateless", batch_lane="true")


def test_the_context_key_builds_the_lane_in_the_async_stack(app_factory: Callable[..., cdk.App], plain_agent_code: str) -> None:
    # Given app.py's config for -c batch_lane=... and an agent without tools
    app = app_factory(context={"patterns": "async", "batch_lane": "flush_size=100,check_every_minutes=1,default_lane=batch"})
    config = AppConfig.from_context(app, tuple(PATTERN_STACKS))
    options = {**config.stack_options("async"), "function_options": plain(plain_agent_code), "env": TEST_ENV}

    # when the async stack is built with the stack options app.py would pass
    stack = PATTERN_STACKS["async"](app, "Configured", **options)
    synthesized = SynthesizedStack(stack)

    # then it has the lane, ticking every minute, and the API function defaults to it.
    [schedule] = synthesized.of_type("AWS::Scheduler::Schedule").values()
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert synthesized.environment(stack.agent.agent_function)[contract.BATCH_DEFAULT_LANE_ENV] == "batch"  # type: ignore[attr-defined]


def test_app_py_with_batch_lane_on_the_demo_agent_fails_the_synth_naming_its_tools(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Given app.py's async pattern (the demo agent, which has tools) with -c batch_lane=true
    assembly: CloudAssembly = synthesize_real_app(
        tmp_path_factory.mktemp("real-app-batch") / "cdk.out",
        patterns=("async",),
        bundling=False,
        context={"batch_lane": "true"},
    )

    # then the synth fails, in one sentence naming the lane and the tools.
    assert assembly.returncode != 0
    assert "Agentrail-Async/AsyncAgent/BatchLane: the agent has tools ('calculator'" in assembly.stderr


def test_a_hardened_stack_with_a_batch_lane_has_no_unacknowledged_cdk_nag_finding_and_reaches_bedrock_privately(
    app_factory: Callable[..., cdk.App], plain_agent_code: str, hardened_lookups: dict[str, Any]
) -> None:
    # Given the hardened async stack (webhooks off: no egress path) with a batch lane, checked by cdk-nag
    app = app_factory(context=hardened_lookups)
    stack = PATTERN_STACKS["async"](
        app,
        "Hardened",
        env=TEST_ENV,
        security="hardened",
        function_options=plain(plain_agent_code, model="bedrock:amazon.nova-lite-v1:0"),
        options=AsyncOptions(batch_lane=LANE, webhooks=False),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    # when it is synthesized
    app.synth()

    # then cdk-nag leaves nothing unacknowledged,
    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    assert violations(report, "Hardened") == []
    # and the VPC has the Bedrock control plane's endpoint the lane starts its jobs through.
    synthesized = SynthesizedStack(stack)
    endpoints = synthesized.of_type("AWS::EC2::VPCEndpoint").values()
    services = {str(synthesized.render(props["ServiceName"])) for props in endpoints}
    assert f"com.amazonaws.{TEST_ENV.region}.bedrock" in services, services


# -- monitoring --------------------------------------------------------------------------------


def test_the_dashboard_graphs_the_lane_and_an_alarm_fires_when_a_task_waits_past_max_age_and_two_ticks(
    lane_stack: SynthesizedStack,
) -> None:
    lane = lane_of(lane_stack)
    alarms = {lid: props for lid, props in lane_stack.of_type("AWS::CloudWatch::Alarm").items() if "BatchLaneStalled" in lid}

    [stalled] = alarms.values()
    assert (stalled["MetricName"], stalled["Statistic"], stalled["ComparisonOperator"]) == (
        "OldestBatchTaskAgeSeconds",
        "Maximum",
        "GreaterThanOrEqualToThreshold",
    )
    assert stalled["Threshold"] == 3600 + 2 * 120  # max_age, then two ticks of check_every (2 minutes)
    assert stalled["Period"] == 300  # the dashboard's period: at least two ticks in each
    assert stalled["Dimensions"] == [{"Name": "service", "Value": lane.agent_function.service_name}]
    assert lane.node.path in stalled["AlarmDescription"]
    (dashboard,) = lane_stack.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["DashboardBody"])
    assert all(name in body for name in ("BatchTasksWaiting", "BatchJobsOpen", "OldestBatchTaskAgeSeconds"))


def test_every_lane_metric_the_dashboard_or_the_alarm_names_is_what_the_lanes_function_emits(
    lane_stack: SynthesizedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    from aws_lambda_powertools import Metrics

    from agentrail_runtime.metering import emit_batch_lane
    from tests.infra.test_monitoring import emitted_as, named_metrics

    environment = lane_stack.environment(lane_of(lane_stack).agent_function)
    metrics = Metrics(namespace=environment["POWERTOOLS_METRICS_NAMESPACE"], service=environment["POWERTOOLS_SERVICE_NAME"])
    capsys.readouterr()
    emit_batch_lane(metrics, waiting=3, oldest_age_seconds=60, jobs_open=1)
    lines = capsys.readouterr().out.splitlines()
    records = [r for r in (json.loads(line) for line in lines if line.startswith("{")) if "_aws" in r]

    lane_references = [ref for ref in named_metrics(lane_stack.template) if ref.name.startswith(("Batch", "OldestBatch"))]

    assert {ref.name for ref in lane_references} == {"BatchTasksWaiting", "BatchJobsOpen", "OldestBatchTaskAgeSeconds"}
    assert [ref for ref in lane_references if not emitted_as(ref, records)] == []
