"""DynamoDB tables and S3 buckets with agentrail's defaults: on-demand, point-in-time recovery, encryption,
SSL only, no public access. One place, so every pattern stores data the same way."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from agentrail_constructs.nag import acknowledge, default_resource
from constructs import Construct


def string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def secure_table(
    scope: Construct,
    construct_id: str,
    *,
    partition_key: str,
    sort_key: str | None = None,
    time_to_live_attribute: str | None = None,
    encryption_key: kms.IKey | None = None,
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    stream: dynamodb.StreamViewType | None = None,
) -> dynamodb.Table:
    """A table with string keys, on-demand billing, point-in-time recovery and encryption
    (the given customer managed key, else an AWS managed one)."""
    encryption = (
        {"encryption": dynamodb.TableEncryption.CUSTOMER_MANAGED, "encryption_key": encryption_key}
        if encryption_key is not None
        else {"encryption": dynamodb.TableEncryption.AWS_MANAGED}
    )
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=string_key(partition_key),
        sort_key=string_key(sort_key) if sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
        time_to_live_attribute=time_to_live_attribute,
        stream=stream,
        removal_policy=removal_policy,
        **encryption,
    )


def private_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_log_reason: str,
    encryption_key: kms.IKey | None = None,
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    lifecycle_rules: Sequence[s3.LifecycleRule] = (),
) -> s3.Bucket:
    """An encrypted, SSL-only bucket with public access blocked and ACLs disabled.

    ``access_log_reason`` says why server access logs are not needed (cdk-nag S1), for this bucket only.
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
    )
    acknowledge(default_resource(bucket), "S1", access_log_reason)
    return bucket
