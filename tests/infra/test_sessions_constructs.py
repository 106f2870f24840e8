"""SessionTable and StatefulAgent: the table, its clean-up, the offload bucket, routes, grants and the enqueue mode."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match

from agentrail_constructs import SessionOptions, SessionTable, SessionTableOptions, StatefulAgent

SESSION_ROUTES = {
    ("POST", "/sessions"),
    ("POST", "/sessions/{session_id}/messages"),
    ("GET", "/sessions/{session_id}"),
    ("DELETE", "/sessions/{session_id}"),
    ("PUT", "/sessions/{session_id}/state"),
    ("POST", "/sessions/{session_id}/feedback"),
    # the operator console's reads
    ("GET", "/sessions"),
    ("GET", "/sessions/{session_id}/turns/{number}/timeline"),
    ("POST", "/erase"),
    ("GET", "/health"),
    ("GET", "/openapi.json"),
}


@pytest.fixture(scope="module")
def stateful(pattern_stacks: dict[str, Any]) -> Any:
    """The stateful pattern stack with every default (concurrency ``reject``)."""
    return pattern_stacks["stateful"]


@pytest.fixture(scope="module")
def enqueue(pattern_stacks: dict[str, Any]) -> Any:
    """The stateful pattern stack with ``concurrency="enqueue"``."""
    return pattern_stacks["stateful-enqueue"]


@pytest.fixture(scope="module")
def with_key(synthesize: Any) -> tuple[StatefulAgent, Any]:
    """A StatefulAgent in enqueue mode whose SessionTable has a customer managed key."""

    def build(stack: cdk.Stack) -> StatefulAgent:
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        return StatefulAgent(
            stack,
            "Agent",
            session_options=SessionOptions(concurrency="enqueue"),
            session_table_options=SessionTableOptions(encryption_key=key),
        )

    return synthesize(build)


def agent_of(synth: Any) -> StatefulAgent:
    return synth.stack.agent


def s3_grants(synth: Any, agent_function: Any) -> set[tuple[str, str]]:
    return {pair for pair in synth.grants(agent_function) if pair[0].startswith("s3:")}


# -- the table -------------------------------------------------------------------------


def test_session_table_has_string_pk_and_sk_keys_billed_per_request(stateful: Any) -> None:
    stateful.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": Match.array_equals(
                [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                    {"AttributeName": "owner", "AttributeType": "S"},
                ]
            ),
            "BillingMode": "PAY_PER_REQUEST",
            # Erasure finds a principal's sessions here: only ~meta carries owner, so the index holds one key per session.
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "by_owner",
                    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
        },
    )


def test_session_table_has_point_in_time_recovery_and_server_side_encryption(stateful: Any) -> None:
    props = stateful.properties(agent_of(stateful).table)

    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_session_table_expires_items_on_expires_at(stateful: Any) -> None:
    props = stateful.properties(agent_of(stateful).table)

    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_session_table_is_retained_when_the_stack_is_deleted(stateful: Any) -> None:
    table = stateful.resources[stateful.logical_id(agent_of(stateful).table)]

    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_session_table_streams_only_keys_for_the_cleanup(stateful: Any) -> None:
    props = stateful.properties(agent_of(stateful).table)

    assert props["StreamSpecification"] == {"StreamViewType": "KEYS_ONLY"}


def test_cleanup_function_only_receives_removed_session_metadata(stateful: Any) -> None:
    sessions = agent_of(stateful).session_table
    table, cleanup = stateful.logical_id(sessions.table), stateful.logical_id(sessions.cleanup_function.function)

    mappings = [p for p in stateful.of_type("AWS::Lambda::EventSourceMapping").values() if p["FunctionName"] == {"Ref": cleanup}]

    assert len(mappings) == 1
    assert mappings[0]["EventSourceArn"] == {"Fn::GetAtt": [table, "StreamArn"]}
    patterns = [json.loads(f["Pattern"]) for f in mappings[0]["FilterCriteria"]["Filters"]]
    assert patterns == [{"eventName": ["REMOVE"], "dynamodb": {"Keys": {"sk": {"S": ["~meta"]}}}}]


def test_cleanup_mapping_reports_batch_item_failures_and_sends_failures_to_an_encrypted_queue(stateful: Any) -> None:
    sessions = agent_of(stateful).session_table
    cleanup = stateful.logical_id(sessions.cleanup_function.function)
    failures = stateful.logical_id(sessions.cleanup_dead_letter_queue)

    stateful.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": cleanup},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": Match.any_value(),
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [failures, "Arn"]}}},
        },
    )
    assert stateful.properties(sessions.cleanup_dead_letter_queue)["SqsManagedSseEnabled"] is True


def test_offload_bucket_is_encrypted_private_and_ssl_only(stateful: Any) -> None:
    bucket = agent_of(stateful).session_table.offload_bucket
    props = stateful.properties(bucket)

    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    stateful.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": stateful.logical_id(bucket)},
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {"Effect": "Deny", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                            )
                        ]
                    )
                }
            ),
        },
    )


def test_customer_managed_key_encrypts_the_table_the_bucket_and_the_queues(with_key: tuple[StatefulAgent, Any]) -> None:
    agent, synth = with_key
    key_arn = {"Fn::GetAtt": [synth.logical_id(agent.session_table.encryption_key), "Arn"]}
    queues = [agent.queue, agent.dead_letter_queue, agent.session_table.cleanup_dead_letter_queue]

    table = synth.properties(agent.table)
    bucket = synth.properties(agent.session_table.offload_bucket)

    assert table["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}
    ]
    for queue in queues:
        assert synth.properties(queue)["KmsMasterKeyId"] == key_arn


def test_customer_managed_key_is_usable_by_the_session_functions(with_key: tuple[StatefulAgent, Any]) -> None:
    agent, synth = with_key
    key_arn = json.dumps({"Fn::GetAtt": [synth.logical_id(agent.session_table.encryption_key), "Arn"]}, sort_keys=True)

    for agent_function in (agent.agent_function, agent.worker, agent.session_table.cleanup_function):
        grants = synth.grants(agent_function)
        assert {("kms:Decrypt", key_arn), ("kms:GenerateDataKey*", key_arn)} <= grants, agent_function.node.path


def test_offload_and_cleanup_can_be_turned_off(synthesize: Any) -> None:
    table, synth = synthesize(
        lambda stack: SessionTable(
            stack, "Sessions", table_options=SessionTableOptions(offload_large_turns=False, cleanup_on_expiry=False)
        )
    )

    assert table.offload_bucket is None
    assert table.cleanup_function is None
    synth.template.resource_count_is("AWS::S3::Bucket", 0)
    synth.template.resource_count_is("AWS::Lambda::EventSourceMapping", 0)
    assert "StreamSpecification" not in synth.properties(table.table)


def test_existing_table_with_table_options_is_refused_naming_the_fix(stack: cdk.Stack) -> None:
    existing = dynamodb.Table.from_table_name(stack, "Mine", "my-sessions")

    with pytest.raises(ValueError, match="pass either existing_table or table_options, not both"):
        SessionTable(stack, "Sessions", existing_table=existing, table_options=SessionTableOptions())


def test_session_table_with_table_options_is_refused_naming_the_fix(stack: cdk.Stack) -> None:
    sessions = SessionTable(stack, "Sessions")

    with pytest.raises(ValueError, match="pass either existing_session_table or session_table_options, not both"):
        StatefulAgent(stack, "Agent", existing_session_table=sessions, session_table_options=SessionTableOptions())


def test_existing_table_is_used_and_no_table_is_created(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> StatefulAgent:
        existing = dynamodb.Table.from_table_name(stack, "Mine", "my-sessions")
        return StatefulAgent(stack, "Agent", existing_session_table=SessionTable(stack, "Sessions", existing_table=existing))

    agent, synth = synthesize(build)

    synth.template.resource_count_is("AWS::DynamoDB::Table", 0)
    assert synth.environment(agent.agent_function)["AGENT_SESSION_TABLE"] == "my-sessions"


# -- routes ----------------------------------------------------------------------------


def test_stateful_agent_serves_exactly_the_session_routes(stateful: Any) -> None:
    assert set(stateful.routes()) == SESSION_ROUTES


def test_every_session_route_requires_iam_authorization(stateful: Any) -> None:
    unauthenticated = {route for route, method in stateful.routes().items() if method["AuthorizationType"] != "AWS_IAM"}

    assert unauthenticated == set()


def test_every_session_route_invokes_the_live_alias(stateful: Any) -> None:
    alias = stateful.logical_id(agent_of(stateful).alias)

    for route, method in stateful.routes().items():
        uri = json.dumps(method["Integration"]["Uri"])
        assert method["Integration"]["Type"] == "AWS_PROXY", route
        assert f'"Ref": "{alias}"' in uri, route


def test_send_message_body_must_carry_a_message_and_nothing_unknown(stateful: Any) -> None:
    model_ref = stateful.routes()[("POST", "/sessions/{session_id}/messages")]["RequestModels"]["application/json"]

    schema = stateful.resources[model_ref["Ref"]]["Properties"]["Schema"]

    assert schema["required"] == ["message"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["message"] == {"type": "string", "minLength": 1, "maxLength": 8000, "pattern": r"\S"}


def test_put_state_body_must_carry_data_and_expected_version(stateful: Any) -> None:
    model_ref = stateful.routes()[("PUT", "/sessions/{session_id}/state")]["RequestModels"]["application/json"]

    schema = stateful.resources[model_ref["Ref"]]["Properties"]["Schema"]

    assert sorted(schema["required"]) == ["data", "expected_version"]
    assert {k: schema["properties"]["expected_version"][k] for k in ("type", "minimum")} == {"type": "integer", "minimum": 0}


# -- environment and grants ------------------------------------------------------------


def test_api_function_is_told_the_session_settings(stateful: Any) -> None:
    agent = agent_of(stateful)

    environment = stateful.environment(agent.agent_function)

    assert {k: v for k, v in environment.items() if k.startswith("AGENT_SESSION_")} == {
        "AGENT_SESSION_TABLE": {"Ref": stateful.logical_id(agent.table)},
        "AGENT_SESSION_OFFLOAD_BUCKET": {"Ref": stateful.logical_id(agent.session_table.offload_bucket)},
        "AGENT_SESSION_TTL_SECONDS": "86400",
        "AGENT_SESSION_WINDOW_TURNS": "20",
        "AGENT_SESSION_WINDOW_TOKENS": "8000",
        "AGENT_SESSION_TRUNCATION": "truncate",
        "AGENT_SESSION_HISTORY_DETAIL": "compact",
        "AGENT_SESSION_CONCURRENCY": "reject",
    }


def test_session_options_reach_the_environment(synthesize: Any) -> None:
    options = SessionOptions(
        ttl=Duration.hours(2), window_turns=6, window_tokens=2_000, truncation="summary", history_detail="full"
    )

    agent, synth = synthesize(lambda stack: StatefulAgent(stack, "Agent", session_options=options))

    environment = synth.environment(agent.agent_function)
    assert environment["AGENT_SESSION_TTL_SECONDS"] == "7200"
    assert environment["AGENT_SESSION_WINDOW_TURNS"] == "6"
    assert environment["AGENT_SESSION_WINDOW_TOKENS"] == "2000"
    assert environment["AGENT_SESSION_TRUNCATION"] == "summary"
    assert environment["AGENT_SESSION_HISTORY_DETAIL"] == "full"


@pytest.mark.parametrize("variant", ["stateful", "stateful-enqueue"])
def test_synthesized_session_environment_is_accepted_by_the_runtime_settings(
    pattern_stacks: dict[str, Any], variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The construct writes AGENT_SESSION_* and the runtime reads them: a rename on either side breaks here.
    from agentrail_runtime.sessions.settings import SessionSettings

    synth = pattern_stacks[variant]
    agent = agent_of(synth)
    functions = [agent.agent_function] + ([agent.worker] if agent.worker else [])
    for agent_function in functions:
        for name, value in synth.render(synth.environment(agent_function)).items():
            monkeypatch.setenv(name, value)

        settings = SessionSettings()  # type: ignore[call-arg]

        assert settings.table == synth.logical_id(agent.table)
        assert settings.concurrency == ("enqueue" if variant == "stateful-enqueue" else "reject")


def test_api_function_reaches_offloaded_turns_only_under_the_sessions_prefix(stateful: Any) -> None:
    agent = agent_of(stateful)
    bucket = stateful.logical_id(agent.session_table.offload_bucket)
    objects = json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/sessions/*"]]}, sort_keys=True)
    listing = json.dumps({"Fn::GetAtt": [bucket, "Arn"]}, sort_keys=True)

    assert s3_grants(stateful, agent.agent_function) == {
        ("s3:PutObject", objects),
        ("s3:GetObject", objects),
        ("s3:DeleteObject", objects),
        ("s3:ListBucket", listing),
    }


def test_bucket_listing_is_limited_to_the_sessions_prefix(stateful: Any) -> None:
    agent = agent_of(stateful)
    policy = agent.agent_function.role.node.find_child("DefaultPolicy")

    statements = stateful.properties(policy)["PolicyDocument"]["Statement"]

    listing = [s for s in statements if "s3:ListBucket" in s["Action"]]
    assert [s["Condition"] for s in listing] == [{"StringLike": {"s3:prefix": ["sessions/*"]}}]


def test_api_function_uses_dynamodb_only_on_the_session_table(stateful: Any) -> None:
    agent = agent_of(stateful)
    table = stateful.logical_id(agent.table)

    resources = {resource for action, resource in stateful.grants(agent.agent_function) if action.startswith("dynamodb:")}

    arn = {"Fn::GetAtt": [table, "Arn"]}
    owner_index = {"Fn::Join": ["", [arn, "/index/by_owner"]]}
    assert resources == {json.dumps(arn, sort_keys=True), json.dumps(owner_index, sort_keys=True)}
    # The owner index (erasure's) is queried, nothing else is done on it.
    assert {a for a, r in stateful.grants(agent.agent_function) if "by_owner" in r} == {"dynamodb:Query"}


# -- SessionOptions --------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [Duration.seconds(59), Duration.days(366)])
def test_ttl_outside_one_minute_to_365_days_is_refused(ttl: Duration) -> None:
    with pytest.raises(ValueError, match="ttl must be between 1 minute and 365 days"):
        SessionOptions(ttl=ttl).validate()


@pytest.mark.parametrize("turns", [0, 201])
def test_window_turns_outside_1_to_200_is_refused(turns: int) -> None:
    with pytest.raises(ValueError, match="window_turns must be between 1 and 200"):
        SessionOptions(window_turns=turns).validate()


def test_window_tokens_below_100_is_refused() -> None:
    with pytest.raises(ValueError, match="window_tokens must be at least 100"):
        SessionOptions(window_tokens=99).validate()


@pytest.mark.parametrize("concurrency", [1, 1001])
def test_worker_max_concurrency_outside_the_mappings_limits_is_refused(concurrency: int) -> None:
    with pytest.raises(ValueError, match="worker_max_concurrency must be between 2 and 1000"):
        SessionOptions(worker_max_concurrency=concurrency).validate()


def test_stateful_agent_validates_its_session_options(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="window_turns"):
        StatefulAgent(stack, "Agent", session_options=SessionOptions(window_turns=0))


# -- concurrency="enqueue" ------------------------------------------------------------


def test_reject_mode_has_no_turn_queue_and_no_worker(stateful: Any) -> None:
    agent = agent_of(stateful)
    mappings = stateful.of_type("AWS::Lambda::EventSourceMapping").values()
    sqs_mappings = [p for p in mappings if "sqs" in json.dumps(p["EventSourceArn"]).lower()]

    assert (agent.queue, agent.dead_letter_queue, agent.worker) == (None, None, None)
    assert sqs_mappings == []
    assert not any(p.get("FifoQueue") for p in stateful.of_type("AWS::SQS::Queue").values())


def test_enqueue_adds_a_fifo_queue_whose_dead_letter_queue_is_fifo_too(enqueue: Any) -> None:
    agent = agent_of(enqueue)

    queue = enqueue.properties(agent.queue)

    assert queue["FifoQueue"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [enqueue.logical_id(agent.dead_letter_queue), "Arn"]},
        "maxReceiveCount": 5,
    }
    assert enqueue.properties(agent.dead_letter_queue)["FifoQueue"] is True


def test_turn_queue_visibility_timeout_is_six_times_the_workers_timeout(enqueue: Any) -> None:
    agent = agent_of(enqueue)

    worker_timeout = enqueue.properties(agent.worker.function)["Timeout"]

    assert enqueue.properties(agent.queue)["VisibilityTimeout"] >= 6 * worker_timeout


def test_worker_live_alias_consumes_the_turn_queue_with_partial_failures_and_a_concurrency_cap(enqueue: Any) -> None:
    agent = agent_of(enqueue)
    queue, alias = enqueue.logical_id(agent.queue), enqueue.logical_id(agent.worker.alias)

    source = {"Fn::GetAtt": [queue, "Arn"]}
    mappings = [p for p in enqueue.of_type("AWS::Lambda::EventSourceMapping").values() if p["EventSourceArn"] == source]

    assert len(mappings) == 1
    assert f'"Ref": "{alias}"' in json.dumps(mappings[0]["FunctionName"])
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mappings[0]["ScalingConfig"] == {"MaximumConcurrency": 10}


def test_worker_max_concurrency_option_caps_the_mapping(synthesize: Any) -> None:
    options = SessionOptions(concurrency="enqueue", worker_max_concurrency=25)

    _, synth = synthesize(lambda stack: StatefulAgent(stack, "Agent", session_options=options))

    synth.template.has_resource_properties("AWS::Lambda::EventSourceMapping", {"ScalingConfig": {"MaximumConcurrency": 25}})


def test_api_function_may_only_send_to_the_turn_queue_and_is_told_its_url(enqueue: Any) -> None:
    agent = agent_of(enqueue)
    queue = enqueue.logical_id(agent.queue)

    sqs_grants = {pair for pair in enqueue.grants(agent.agent_function) if pair[0].startswith("sqs:")}

    assert sqs_grants == {
        (action, json.dumps({"Fn::GetAtt": [queue, "Arn"]}, sort_keys=True))
        for action in ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")
    }
    assert enqueue.environment(agent.agent_function)["AGENT_SESSION_QUEUE_URL"] == {"Ref": queue}
    assert enqueue.environment(agent.agent_function)["AGENT_SESSION_CONCURRENCY"] == "enqueue"


def test_worker_gets_the_same_session_settings_and_grants_as_the_api_function(enqueue: Any) -> None:
    agent = agent_of(enqueue)

    def session_settings(agent_function: Any) -> dict[str, Any]:
        return {k: v for k, v in enqueue.environment(agent_function).items() if k.startswith("AGENT_SESSION_")}

    assert session_settings(agent.worker) == session_settings(agent.agent_function)
    assert s3_grants(enqueue, agent.worker) == s3_grants(enqueue, agent.agent_function)
