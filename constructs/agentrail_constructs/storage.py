"""DynamoDB tables, S3 buckets and log groups with agentrail's defaults: on-demand, point-in-time recovery,
encryption, SSL only, no public access. One place, so every pattern stores data the same way."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from agentrail_constructs.nag import acknowledge, default_resource, skip_checkov, unskip_checkov

#: Why a resource is encrypted with an AWS managed or owned key rather than a customer managed one.
NO_KEY_GIVEN = (
    "Encrypted at rest with an AWS managed key, the default that costs nothing while idle; give the construct "
    "an encryption_key (a customer managed KMS key) and this resource uses it."
)


def string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def secure_table(
    scope: Construct,
    construct_id: str,
    *,
    partition_key: str,
    sort_key: str | dynamodb.Attribute | None = None,
    time_to_live_attribute: str | None = None,
    encryption_key: kms.IKey | None = None,
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    stream: dynamodb.StreamViewType | None = None,
) -> dynamodb.Table:
    """A table with string keys (or the ``dynamodb.Attribute`` given as ``sort_key``), on-demand billing, point-in-time recovery and encryption
    (the given customer managed key, else an AWS managed one)."""
    encryption = (
        {"encryption": dynamodb.TableEncryption.CUSTOMER_MANAGED, "encryption_key": encryption_key}
        if encryption_key is not None
        else {"encryption": dynamodb.TableEncryption.AWS_MANAGED}
    )
    table = dynamodb.Table(
        scope,
        construct_id,
        partition_key=string_key(partition_key),
        sort_key=string_key(sort_key) if isinstance(sort_key, str) else sort_key,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
        time_to_live_attribute=time_to_live_attribute,
        stream=stream,
        removal_policy=removal_policy,
        **encryption,
    )
    if encryption_key is None:
        skip_checkov(default_resource(table), "CKV_AWS_119", NO_KEY_GIVEN)
    return table


#: What the runtime's stores call, by table: grants name these, never ``grant_read_write_data`` (Scan, BatchGetItem, ...).
TASK_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DescribeTable")
#: Powertools idempotency's DynamoDB persistence layer.
IDEMPOTENCY_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
#: Sessions: turns are written in transactions (Put, Update), erased with DeleteItem and purged with BatchWriteItem.
SESSION_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DescribeTable",
)
APPROVAL_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DescribeTable",
)
#: The audit trail is append-only: entries are put with attribute_not_exists and read, nothing else (erasure aside:
#: :data:`AUDIT_PSEUDONYMIZED_ATTRIBUTES`).
AUDIT_TABLE_ACTIONS = ("dynamodb:PutItem", "dynamodb:Query")
#: The attributes an erasure's UpdateItem may name in the audit trail: the keys, and ``actor`` (the pseudonym).
AUDIT_PSEUDONYMIZED_ATTRIBUTES = ("approval_id", "entry", "actor")
#: Denied on the audit trail, so no later Allow (a broad managed policy) can change or remove an entry.
AUDIT_TABLE_DENIED = (
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)


def grant_table(table: dynamodb.ITable, grantee: iam.IGrantable, actions: Sequence[str]) -> iam.Grant:
    """Allow exactly ``actions`` on ``table`` (not its indexes: :func:`grant_index_query` names those one by one, so an
    index added for one function opens it to no other), and the use of its customer managed key if any."""
    grant = iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[table.table_arn])
    if table.encryption_key is not None:
        table.encryption_key.grant_encrypt_decrypt(grantee)
    return grant


def grant_index_query(table: dynamodb.ITable, grantee: iam.IGrantable, *index_names: str) -> iam.Grant:
    """Allow ``dynamodb:Query`` on exactly the named indexes of ``table`` (no wildcard)."""
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["dynamodb:Query"],
        resource_arns=[f"{table.table_arn}/index/{name}" for name in index_names],
    )


def keys_only_index(table: dynamodb.Table, name: str, partition_key: str, *, number_sort_key: str | None = None) -> None:
    """A sparse, keys-only global secondary index on ``partition_key`` (a string), sorted by ``number_sort_key`` when
    given: what erasure queries by owner, and the console's newest-first run list."""
    table.add_global_secondary_index(
        index_name=name,
        partition_key=string_key(partition_key),
        sort_key=dynamodb.Attribute(name=number_sort_key, type=dynamodb.AttributeType.NUMBER) if number_sort_key else None,
        projection_type=dynamodb.ProjectionType.KEYS_ONLY,
    )


def private_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_log_reason: str,
    encryption_key: kms.IKey | None = None,
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    lifecycle_rules: Sequence[s3.LifecycleRule] = (),
    access_log_bucket: s3.IBucket | None = None,
) -> s3.Bucket:
    """An encrypted, SSL-only bucket with public access blocked and ACLs disabled.

    With ``access_log_bucket``, S3 delivers its server access logs there (under ``<construct id>/``); without,
    ``access_log_reason`` says why they are not needed (cdk-nag S1), for this bucket only.
    """
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
        encryption_key=encryption_key,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=removal_policy,
        lifecycle_rules=list(lifecycle_rules) or None,
        server_access_logs_bucket=access_log_bucket,
        server_access_logs_prefix=f"{construct_id}/" if access_log_bucket is not None else None,
    )
    resource = default_resource(bucket)
    if access_log_bucket is None:
        acknowledge(resource, "S1", access_log_reason)
        skip_checkov(resource, "CKV_AWS_18", access_log_reason)
    skip_checkov(
        resource,
        "CKV_AWS_21",
        "Objects here are derived data with an end: results expire with their task, offloaded turns are deleted "
        "with their session. Versions would keep what retention and erasure must remove.",
    )
    return bucket


def generated_secret(
    scope: Construct, construct_id: str, *, description: str, encryption_key: kms.IKey | None, no_rotation: str
) -> secretsmanager.Secret:
    """A secret of 48 letters and digits Secrets Manager generates, under ``encryption_key`` when one is given;
    ``no_rotation`` says why it has no rotation schedule (acknowledged for cdk-nag's SMG4)."""
    secret = secretsmanager.Secret(
        scope,
        construct_id,
        description=description,
        generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
        encryption_key=encryption_key,
    )
    if encryption_key is None:
        skip_checkov(default_resource(secret), "CKV_AWS_149", NO_KEY_GIVEN)
    acknowledge(default_resource(secret), "SMG4", no_rotation)
    return secret


def log_group(
    scope: Construct, construct_id: str, *, retention: logs.RetentionDays, encryption_key: kms.IKey | None = None
) -> logs.LogGroup:
    """A log group with ``retention``, encrypted with ``encryption_key`` when one is given (see :func:`encrypt_log_group`)."""
    group = logs.LogGroup(scope, construct_id, retention=retention)
    skip_checkov(
        default_resource(group),
        "CKV_AWS_158",
        "CloudWatch Logs encrypts every log group at rest with its own key; give the construct an encryption_key "
        "(a customer managed KMS key) and this log group uses it.",
    )
    if encryption_key is not None:
        encrypt_log_group(group, encryption_key)
    return group


def encrypt_log_group(group: logs.ILogGroup, key: kms.IKey) -> None:
    """Encrypt ``group`` (one this app creates) with the customer managed ``key``.

    CloudWatch Logs needs the key's policy to allow it, for this account's log groups only: added here when the
    key is defined in this app; an imported key's policy must already allow it (see README, Encryption).
    """
    resource = default_resource(group)
    if not isinstance(resource, logs.CfnLogGroup):
        raise TypeError(f"{group.node.path} is not a log group this app creates")
    resource.kms_key_id = key.key_arn
    unskip_checkov(resource, "CKV_AWS_158")
    if isinstance(key, kms.Key):  # one statement however many log groups: CDK drops identical statements
        stack = Stack.of(key)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs", resource="log-group", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
                        )
                    }
                },
            )
        )
