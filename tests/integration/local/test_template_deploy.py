"""The template reader deploys a CDK app of every resource type future patterns use, and moto holds what the templates say."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentrail_local.cloud import LocalCloud
from agentrail_local.cloudformation.deployer import StackDeployment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cloud(local_cloud: Callable[..., LocalCloud], services_assembly: Path) -> LocalCloud:
    return local_cloud(services_assembly)


def _services(cloud: LocalCloud) -> StackDeployment:
    return next(d for d in cloud.deployments if d.stack_name == "Local-Services")


def _by_prefix(deployment: StackDeployment, prefix: str, resource_type: str) -> Any:
    return next(r for r in deployment.resources.values() if r.logical_id.startswith(prefix) and r.type == resource_type)


def test_dynamodb_table_has_keys_index_ttl_stream_pitr_and_the_customer_managed_key(cloud: LocalCloud) -> None:
    services = _services(cloud)
    name = _by_prefix(services, "Sessions", "AWS::DynamoDB::Table").ref
    key_arn = _by_prefix(services, "DataKey", "AWS::KMS::Key").attributes["Arn"]
    dynamodb = cloud.clients("dynamodb")

    table = dynamodb.describe_table(TableName=name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]

    assert name.startswith("Local-Services-Sessions")
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-user"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert table["SSEDescription"]["KMSMasterKeyArn"] == key_arn
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_table_v2_global_table_is_created_in_this_region_with_ttl(cloud: LocalCloud) -> None:
    name = _by_prefix(_services(cloud), "Events", "AWS::DynamoDB::GlobalTable").ref

    ttl = cloud.clients("dynamodb").describe_time_to_live(TableName=name)["TimeToLiveDescription"]

    assert ttl["AttributeName"] == "ttl"


def test_queue_has_visibility_timeout_kms_and_redrives_to_its_dead_letter_queue(cloud: LocalCloud) -> None:
    services = _services(cloud)
    url = _by_prefix(services, "Tasks0", "AWS::SQS::Queue").ref
    dlq_arn = _by_prefix(services, "TasksDlq", "AWS::SQS::Queue").attributes["Arn"]
    sqs = cloud.clients("sqs")

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    assert attributes["VisibilityTimeout"] == "90"
    assert attributes["KmsMasterKeyId"] == _by_prefix(services, "DataKey", "AWS::KMS::Key").attributes["Arn"]


def test_fifo_queue_gets_a_fifo_name_and_content_based_deduplication(cloud: LocalCloud) -> None:
    queue = _by_prefix(_services(cloud), "Ordered", "AWS::SQS::Queue")

    attributes = cloud.clients("sqs").get_queue_attributes(QueueUrl=queue.ref, AttributeNames=["All"])["Attributes"]

    assert queue.attributes["QueueName"].endswith(".fifo")
    assert (attributes["FifoQueue"], attributes["ContentBasedDeduplication"]) == ("true", "true")


def test_bucket_is_versioned_encrypted_private_ssl_only_and_expires_objects(cloud: LocalCloud) -> None:
    name = _by_prefix(_services(cloud), "Offload", "AWS::S3::Bucket").ref
    s3 = cloud.clients("s3")

    encryption = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
    policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]

    assert name == name.lower() and name.startswith("local-services-offload")
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"].values())
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert lifecycle[0]["Expiration"] == {"Days": 30}


def _receive(cloud: LocalCloud, url: str) -> list[dict[str, Any]]:
    sqs = cloud.clients("sqs")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", [])
        if messages:
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return messages
    return []


def test_topic_delivers_raw_messages_to_its_queue_subscription(cloud: LocalCloud) -> None:
    services = _services(cloud)
    topic_arn = _by_prefix(services, "Notices", "AWS::SNS::Topic").ref
    inbox = _by_prefix(services, "Inbox", "AWS::SQS::Queue").ref

    cloud.clients("sns").publish(TopicArn=topic_arn, Message='{"task": "t-1"}')

    assert [m["Body"] for m in _receive(cloud, inbox)] == ['{"task": "t-1"}']


def test_rule_on_the_custom_bus_routes_matching_events_to_the_queue(cloud: LocalCloud) -> None:
    services = _services(cloud)
    inbox = _by_prefix(services, "Inbox", "AWS::SQS::Queue").ref
    events = cloud.clients("events")

    events.put_events(
        Entries=[
            {
                "EventBusName": "local-agent-bus",
                "Source": "agentrail_runtime.tasks",
                "DetailType": "done",
                "Detail": '{"id": "t-2"}',
            }
        ]
    )
    events.put_events(
        Entries=[{"EventBusName": "local-agent-bus", "Source": "someone.else", "DetailType": "done", "Detail": "{}"}]
    )

    bodies = [json.loads(m["Body"]) for m in _receive(cloud, inbox)]
    assert [(b["source"], b["detail"]) for b in bodies] == [("agentrail_runtime.tasks", {"id": "t-2"})]


def test_secret_is_generated_from_its_template_with_the_requested_length(cloud: LocalCloud) -> None:
    arn = _by_prefix(_services(cloud), "ApiToken", "AWS::SecretsManager::Secret").ref

    value = json.loads(cloud.clients("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])

    assert value["user"] == "agent"
    assert len(value["password"]) == 24 and value["password"].isalnum()


def test_parameter_key_alias_and_log_group_retention_exist(cloud: LocalCloud) -> None:
    services = _services(cloud)
    log_group = _by_prefix(services, "Audit", "AWS::Logs::LogGroup").ref

    parameter = cloud.clients("ssm").get_parameter(Name="/agentrail/local/model")["Parameter"]
    aliases = {a["AliasName"] for a in cloud.clients("kms").list_aliases()["Aliases"]}
    groups = cloud.clients("logs").describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]

    assert parameter["Value"] == "local"
    assert "alias/local-data" in aliases
    assert groups[0]["retentionInDays"] == 7


def test_function_environment_resolves_references_and_its_alias_points_to_version_one(cloud: LocalCloud) -> None:
    services = _services(cloud)
    function = _by_prefix(services, "Doubler9", "AWS::Lambda::Function")
    lambda_client = cloud.clients("lambda")

    configuration = lambda_client.get_function_configuration(FunctionName=function.ref)
    alias = lambda_client.get_alias(FunctionName=function.ref, Name="live")

    assert len(function.ref) <= 64 and function.ref.startswith("Local-Services-Doubler")
    assert configuration["Environment"]["Variables"] == {
        "TABLE_NAME": _by_prefix(services, "Sessions", "AWS::DynamoDB::Table").ref,
        "QUEUE_URL": _by_prefix(services, "Tasks0", "AWS::SQS::Queue").ref,
    }
    assert (configuration["Handler"], configuration["Timeout"]) == ("tasks.double", 10)
    assert alias["FunctionVersion"] == "1"


def test_event_source_mapping_is_recorded_for_local_polling_not_created_in_moto(cloud: LocalCloud) -> None:
    services = _services(cloud)
    mapping = next(iter(services.of_type("AWS::Lambda::EventSourceMapping")))
    queue_arn = _by_prefix(services, "Tasks0", "AWS::SQS::Queue").attributes["Arn"]

    in_moto = cloud.clients("lambda").list_event_source_mappings()["EventSourceMappings"]

    assert in_moto == []
    assert mapping.local["mapping"]["EventSourceArn"] == queue_arn
    assert mapping.local["mapping"]["BatchSize"] == 5
    assert mapping.local["mapping"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_a_false_condition_leaves_its_resource_out_and_outputs_take_the_else_branch(cloud: LocalCloud) -> None:
    services = _services(cloud)

    assert services.skipped == ["ProdOnly"]
    assert services.outputs["Mode"] == "dev"


def test_an_unknown_type_is_skipped_with_one_warning_and_a_placeholder_arn(cloud: LocalCloud) -> None:
    services = _services(cloud)

    warnings = [w for w in cloud.warnings if "AWS::Kinesis::Stream" in w]

    assert len(warnings) == 1 and "Mystery" in warnings[0]
    assert services.outputs["MysteryArn"].startswith("arn:aws:kinesis:us-east-1:123456789012:")
    assert services.resource("Mystery").placeholder


def test_control_plane_only_types_are_recorded_without_warnings(cloud: LocalCloud) -> None:
    services = _services(cloud)

    scaling = services.of_type("AWS::ApplicationAutoScaling::ScalableTarget")

    assert scaling and scaling[0].placeholder
    assert not any("ApplicationAutoScaling" in w for w in cloud.warnings)


def test_a_cross_stack_reference_resolves_to_the_other_stacks_value(cloud: LocalCloud) -> None:
    pool_arn = _by_prefix(_services(cloud), "Users", "AWS::Cognito::UserPool").attributes["Arn"]
    edge = next(d for d in cloud.deployments if d.stack_name == "Local-Edge")

    authorizer = next(iter(edge.of_type("AWS::ApiGateway::Authorizer")))

    assert authorizer.properties["ProviderARNs"] == [pool_arn]


def test_inline_code_function_runs_through_lambda_invoke(cloud: LocalCloud) -> None:
    name = _by_prefix(_services(cloud), "Inline", "AWS::Lambda::Function").ref

    response = cloud.clients("lambda").invoke(FunctionName=name, Payload=b"{}")

    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"inline": True}


def test_a_function_with_a_role_imported_by_arn_gets_a_stand_in_role_and_runs(cloud: LocalCloud) -> None:
    name = _by_prefix(_services(cloud), "ImportedRoleFunction", "AWS::Lambda::Function").ref

    response = cloud.clients("lambda").invoke(FunctionName=name, Payload=b'{"value": 4}')
    role = cloud.clients("iam").get_role(RoleName="imported-role")["Role"]

    assert json.loads(response["Payload"].read())["value"] == 8
    assert role["Arn"] == "arn:aws:iam::123456789012:role/service/imported-role"
