"""IAM roles and policies, KMS keys, Secrets Manager secrets, SSM parameters and Cognito user pools."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from agentrail_local.account import ACCOUNT_ID, REGION
from agentrail_local.cloudformation.resources.base import (
    DeployedResource,
    ResourceContext,
    json_text,
    pick,
    record_only,
    resource,
    resource_handler,
    tags_dict,
    tags_list,
)

record_only("AWS::SecretsManager::SecretTargetAttachment", "no database to attach to locally")
record_only("AWS::SecretsManager::RotationSchedule", "secrets are not rotated locally")
record_only("AWS::SecretsManager::ResourcePolicy", "resource policies are not enforced locally")
record_only("AWS::KMS::ReplicaKey", "one Region locally")
record_only("AWS::Cognito::UserPoolDomain", "the hosted UI is not served locally")
record_only("AWS::WAFv2::WebACLAssociation", "no WAF locally")


def _short_random(length: int = 12) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


@resource_handler("AWS::IAM::Role")
def role(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = context.name("RoleName", 64)
    client = context.clients("iam")
    created = client.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json_text(p["AssumeRolePolicyDocument"]),
        Tags=tags_list(p.get("Tags")),
        **pick(p, "Path", "Description", "MaxSessionDuration", "PermissionsBoundary"),
    )["Role"]
    for policy in p.get("Policies", ()):
        client.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json_text(policy["PolicyDocument"]))
    for policy_arn in p.get("ManagedPolicyArns", ()):
        # moto does not load AWS managed policies (arn:aws:iam::aws:policy/...); only attach the account's own.
        if f":{ACCOUNT_ID}:" in str(policy_arn):
            client.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    return resource(context, name, name, Arn=created["Arn"], RoleId=created["RoleId"])


@resource_handler("AWS::IAM::Policy")
def policy(context: ResourceContext) -> DeployedResource:
    p = context.properties
    client = context.clients("iam")
    document = json_text(p["PolicyDocument"])
    for role_name in p.get("Roles", ()):
        client.put_role_policy(RoleName=role_name, PolicyName=p["PolicyName"], PolicyDocument=document)
    for user in p.get("Users", ()):
        client.put_user_policy(UserName=user, PolicyName=p["PolicyName"], PolicyDocument=document)
    for group in p.get("Groups", ()):
        client.put_group_policy(GroupName=group, PolicyName=p["PolicyName"], PolicyDocument=document)
    physical_id = context.physical_name(128)
    return resource(context, physical_id, physical_id, Id=physical_id)


@resource_handler("AWS::IAM::ManagedPolicy")
def managed_policy(context: ResourceContext) -> DeployedResource:
    p = context.properties
    client = context.clients("iam")
    arn = client.create_policy(
        PolicyName=context.name("ManagedPolicyName", 128),
        PolicyDocument=json_text(p["PolicyDocument"]),
        **pick(p, "Path", "Description"),
    )["Policy"]["Arn"]
    for role_name in p.get("Roles", ()):
        client.attach_role_policy(RoleName=role_name, PolicyArn=arn)
    return resource(context, arn, arn, PolicyArn=arn)


@resource_handler("AWS::KMS::Key")
def key(context: ResourceContext) -> DeployedResource:
    p = context.properties
    client = context.clients("kms")
    params: dict[str, Any] = pick(p, "Description", "KeyUsage", "KeySpec", "MultiRegion")
    if p.get("KeyPolicy"):
        params["Policy"] = json_text(p["KeyPolicy"])
    if p.get("Tags"):
        params["Tags"] = tags_list(p["Tags"], "TagKey", "TagValue")
    metadata = client.create_key(**params)["KeyMetadata"]
    key_id = metadata["KeyId"]
    if p.get("EnableKeyRotation"):
        client.enable_key_rotation(KeyId=key_id)
    if p.get("Enabled") is False or str(p.get("Enabled")).lower() == "false":
        client.disable_key(KeyId=key_id)
    return resource(context, key_id, key_id, Arn=metadata["Arn"], KeyId=key_id)


@resource_handler("AWS::KMS::Alias")
def key_alias(context: ResourceContext) -> DeployedResource:
    p = context.properties
    context.clients("kms").create_alias(AliasName=p["AliasName"], TargetKeyId=p["TargetKeyId"])
    return resource(context, p["AliasName"], p["AliasName"])


def generated_secret_string(context: ResourceContext, spec: dict[str, Any]) -> str:
    """The value ``GenerateSecretString`` describes, made by Secrets Manager's own ``GetRandomPassword``."""
    options = pick(
        spec,
        "PasswordLength", "ExcludeCharacters", "ExcludeNumbers", "ExcludePunctuation",
        "ExcludeUppercase", "ExcludeLowercase", "IncludeSpace", "RequireEachIncludedType",
    )  # fmt: skip
    if "PasswordLength" in options:
        options["PasswordLength"] = int(options["PasswordLength"])
    password = context.clients("secretsmanager").get_random_password(**options)["RandomPassword"]
    template = spec.get("SecretStringTemplate")
    key_name = spec.get("GenerateStringKey")
    if template is None or key_name is None:
        return password
    document = json.loads(template)
    document[key_name] = password
    return json.dumps(document)


@resource_handler("AWS::SecretsManager::Secret")
def secret(context: ResourceContext) -> DeployedResource:
    p = context.properties
    # CloudFormation names an unnamed secret <LogicalId>-<random>.
    name = p.get("Name") or f"{context.logical_id[:243]}-{_short_random()}"
    if p.get("SecretString") is not None:
        value = str(p["SecretString"])
    elif p.get("GenerateSecretString") is not None:
        value = generated_secret_string(context, p["GenerateSecretString"])
    else:
        value = generated_secret_string(context, {})
    arn = context.clients("secretsmanager").create_secret(
        Name=name, SecretString=value, Tags=tags_list(p.get("Tags")), **pick(p, "Description", "KmsKeyId")
    )["ARN"]
    return resource(context, arn, arn, Id=arn)


@resource_handler("AWS::SSM::Parameter")
def parameter(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = p.get("Name") or f"CFN-{context.logical_id}-{_short_random()}"
    params: dict[str, Any] = {"Name": name, "Value": str(p["Value"]), "Type": p.get("Type", "String")}
    params.update(pick(p, "Description", "AllowedPattern", "Tier", "DataType"))
    if p.get("Tags"):
        params["Tags"] = tags_list(tags_dict(p["Tags"]))
    context.clients("ssm").put_parameter(**params)
    return resource(context, name, name, Type=params["Type"], Value=params["Value"])


_USER_POOL_KEYS = (
    "Policies", "AutoVerifiedAttributes", "AliasAttributes", "UsernameAttributes", "MfaConfiguration",
    "AdminCreateUserConfig", "UsernameConfiguration", "AccountRecoverySetting", "Schema", "DeletionProtection",
)  # fmt: skip
_CLIENT_KEYS = (
    "GenerateSecret", "ExplicitAuthFlows", "AllowedOAuthFlows", "AllowedOAuthScopes", "AllowedOAuthFlowsUserPoolClient",
    "CallbackURLs", "LogoutURLs", "SupportedIdentityProviders", "AccessTokenValidity", "IdTokenValidity",
    "RefreshTokenValidity", "TokenValidityUnits", "PreventUserExistenceErrors", "ReadAttributes", "WriteAttributes",
    "EnableTokenRevocation",
)  # fmt: skip


@resource_handler("AWS::Cognito::UserPool")
def user_pool(context: ResourceContext) -> DeployedResource:
    p = context.properties
    params: dict[str, Any] = {"PoolName": context.name("UserPoolName", 128), **pick(p, *_USER_POOL_KEYS)}
    if p.get("UserPoolTags"):
        params["UserPoolTags"] = tags_dict(p["UserPoolTags"])
    pool = context.clients("cognito-idp").create_user_pool(**params)["UserPool"]
    pool_id = pool["Id"]
    provider = f"cognito-idp.{REGION}.amazonaws.com/{pool_id}"
    return resource(
        context, pool_id, pool_id, Arn=pool["Arn"], UserPoolId=pool_id, ProviderName=provider, ProviderURL=f"https://{provider}"
    )


@resource_handler("AWS::Cognito::UserPoolClient")
def user_pool_client(context: ResourceContext) -> DeployedResource:
    p = context.properties
    client = context.clients("cognito-idp").create_user_pool_client(
        UserPoolId=p["UserPoolId"], ClientName=context.name("ClientName", 128), **pick(p, *_CLIENT_KEYS)
    )["UserPoolClient"]
    client_id = client["ClientId"]
    return resource(
        context, client_id, client_id, ClientId=client_id, ClientSecret=client.get("ClientSecret"), Name=client["ClientName"]
    )


@resource_handler("AWS::Cognito::UserPoolGroup")
def user_pool_group(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = context.name("GroupName", 128)
    context.clients("cognito-idp").create_group(
        GroupName=name, UserPoolId=p["UserPoolId"], **pick(p, "Description", "Precedence", "RoleArn")
    )
    return resource(context, name, name)


__all__ = ["generated_secret_string"]
