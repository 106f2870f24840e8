"""DynamoDB tables and S3 buckets."""

from __future__ import annotations

from typing import Any

from agentrail_local.account import REGION, URL_SUFFIX
from agentrail_local.cloudformation.resources.base import (
    DeployedResource,
    ResourceContext,
    json_text,
    pick,
    resource,
    resource_handler,
    resource_with_generated_id,
    tags_list,
)

_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput")
_PROVISIONED_DEFAULT = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}


def _indexes(indexes: list[dict[str, Any]] | None, provisioned: bool) -> list[dict[str, Any]]:
    shaped = []
    for index in indexes or ():
        entry = pick(index, *_INDEX_KEYS)
        if provisioned and "ProvisionedThroughput" not in entry:
            entry["ProvisionedThroughput"] = _PROVISIONED_DEFAULT
        shaped.append(entry)
    return shaped


def _create_table(
    context: ResourceContext, name: str, spec: dict[str, Any], *, sse: dict[str, Any] | None, ttl: Any, pitr: Any, tags: Any
) -> DeployedResource:
    client = context.clients("dynamodb")
    billing = spec.get("BillingMode", "PROVISIONED")
    provisioned = billing == "PROVISIONED"
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": spec["KeySchema"],
        "AttributeDefinitions": spec["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if provisioned:
        params["ProvisionedThroughput"] = spec.get("ProvisionedThroughput") or _PROVISIONED_DEFAULT
    if spec.get("GlobalSecondaryIndexes"):
        params["GlobalSecondaryIndexes"] = _indexes(spec["GlobalSecondaryIndexes"], provisioned)
    if spec.get("LocalSecondaryIndexes"):
        params["LocalSecondaryIndexes"] = [pick(i, "IndexName", "KeySchema", "Projection") for i in spec["LocalSecondaryIndexes"]]
    stream = spec.get("StreamSpecification")
    if stream and stream.get("StreamViewType"):
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    if sse and sse.get("SSEEnabled"):
        params["SSESpecification"] = {"Enabled": True, **pick(sse, "SSEType", "KMSMasterKeyId")}
    params.update(pick(spec, "TableClass", "DeletionProtectionEnabled"))
    if tags:
        params["Tags"] = tags_list(tags)
    description = client.create_table(**params)["TableDescription"]
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    if pitr and pitr.get("PointInTimeRecoveryEnabled"):
        client.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    attributes = {"Arn": description["TableArn"]}
    if description.get("LatestStreamArn"):
        attributes["StreamArn"] = description["LatestStreamArn"]
    if description.get("TableId"):
        attributes["TableId"] = description["TableId"]
    return resource(context, name, name, **attributes)


@resource_handler("AWS::DynamoDB::Table")
def table(context: ResourceContext) -> DeployedResource:
    p = context.properties
    return _create_table(
        context,
        context.name("TableName", 255),
        p,
        sse=p.get("SSESpecification"),
        ttl=p.get("TimeToLiveSpecification"),
        pitr=p.get("PointInTimeRecoverySpecification"),
        tags=p.get("Tags"),
    )


@resource_handler("AWS::DynamoDB::GlobalTable")
def global_table(context: ResourceContext) -> DeployedResource:
    # What TableV2 synthesizes; locally only this Region's replica exists.
    p = context.properties
    replicas = p.get("Replicas") or [{}]
    replica = next((r for r in replicas if r.get("Region") == REGION), replicas[0])
    spec = dict(p)
    spec.setdefault("BillingMode", "PAY_PER_REQUEST")
    sse = dict(p.get("SSESpecification") or {})
    replica_key = (replica.get("SSESpecification") or {}).get("KMSMasterKeyId")
    if replica_key:
        sse["KMSMasterKeyId"] = replica_key
    spec.update(pick(replica, "TableClass", "DeletionProtectionEnabled"))
    return _create_table(
        context,
        context.name("TableName", 255),
        spec,
        sse=sse,
        ttl=p.get("TimeToLiveSpecification"),
        pitr=replica.get("PointInTimeRecoverySpecification"),
        tags=replica.get("Tags"),
    )


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if rule.get("Id"):
        shaped["ID"] = rule["Id"]
    shaped["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if rule.get("ExpirationInDays"):
        shaped["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if rule.get("NoncurrentVersionExpiration"):
        shaped["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
    elif rule.get("NoncurrentVersionExpirationInDays"):
        shaped["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    if rule.get("AbortIncompleteMultipartUpload"):
        shaped["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    return shaped


@resource_handler("AWS::S3::Bucket")
def bucket(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = context.name("BucketName", 63, lowercase=True)
    client = context.clients("s3")
    client.create_bucket(Bucket=name)
    if p.get("VersioningConfiguration"):
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": p["VersioningConfiguration"]["Status"]})
    encryption = p.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
    if encryption:
        rules = [
            pick(
                r,
                "ServerSideEncryptionByDefault",
                "BucketKeyEnabled",
                rename={"ServerSideEncryptionByDefault": "ApplyServerSideEncryptionByDefault"},
            )
            for r in encryption
        ]
        client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if p.get("PublicAccessBlockConfiguration"):
        client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"])
    if p.get("OwnershipControls"):
        client.put_bucket_ownership_controls(Bucket=name, OwnershipControls=p["OwnershipControls"])
    rules = p.get("LifecycleConfiguration", {}).get("Rules")
    if rules:
        client.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
        )
    cors = p.get("CorsConfiguration", {}).get("CorsRules")
    if cors:
        rename = {"ExposedHeaders": "ExposeHeaders", "Id": "ID", "MaxAge": "MaxAgeSeconds"}
        shaped = [
            pick(r, "AllowedHeaders", "AllowedMethods", "AllowedOrigins", "ExposedHeaders", "Id", "MaxAge", rename=rename)
            for r in cors
        ]
        client.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": shaped})
    if p.get("Tags"):
        client.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags_list(p["Tags"])})
    return resource(
        context,
        name,
        name,
        Arn=f"arn:aws:s3:::{name}",
        DomainName=f"{name}.s3.{URL_SUFFIX}",
        RegionalDomainName=f"{name}.s3.{REGION}.{URL_SUFFIX}",
        DualStackDomainName=f"{name}.s3.dualstack.{REGION}.{URL_SUFFIX}",
        WebsiteURL=f"http://{name}.s3-website-{REGION}.{URL_SUFFIX}",
    )


@resource_handler("AWS::S3::BucketPolicy")
def bucket_policy(context: ResourceContext) -> DeployedResource:
    p = context.properties
    context.clients("s3").put_bucket_policy(Bucket=p["Bucket"], Policy=json_text(p["PolicyDocument"]))
    return resource_with_generated_id(context)


#: Shared with a redeploy's table updates.
PROVISIONED_DEFAULT = _PROVISIONED_DEFAULT
shaped_indexes = _indexes

__all__ = ["PROVISIONED_DEFAULT", "shaped_indexes"]
