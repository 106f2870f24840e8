"""API Gateway REST APIs, created in moto so ids are real; the local gateway serves them from the template."""

from __future__ import annotations

import secrets
import string
from typing import Any

from agentrail_local.cloudformation.resources.base import (
    DeployedResource,
    ResourceContext,
    json_text,
    pick,
    record_only,
    resource,
    resource_handler,
    resource_with_generated_id,
    tags_dict,
)

record_only("AWS::ApiGateway::Account", "account-level execution logging has no local effect")

_LOWER_FIRST = {
    "ApiId": "apiId", "Stage": "stage", "Throttle": "throttle", "BurstLimit": "burstLimit", "RateLimit": "rateLimit",
    "Limit": "limit", "Offset": "offset", "Period": "period",
}  # fmt: skip


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase usage-plan shapes as the API's camelCase."""
    if isinstance(value, dict):
        return {_LOWER_FIRST.get(k, k[:1].lower() + k[1:]): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def generate_api_key_value() -> str:
    """A 40-character key, the length API Gateway generates."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))


@resource_handler("AWS::ApiGateway::RestApi")
def rest_api(context: ResourceContext) -> DeployedResource:
    p = context.properties
    if p.get("Body") or p.get("BodyS3Location"):
        context.warn(
            f"{context.logical_id}: routes defined in an OpenAPI Body are not served locally; only Resource/Method resources are"
        )
    client = context.clients("apigateway")
    params: dict[str, Any] = {"name": p.get("Name") or context.logical_id}
    params.update(pick(p, "Description", "BinaryMediaTypes", "ApiKeySourceType", "MinimumCompressionSize", "DisableExecuteApiEndpoint",
                       rename={"Description": "description", "BinaryMediaTypes": "binaryMediaTypes", "ApiKeySourceType": "apiKeySource",
                               "MinimumCompressionSize": "minimumCompressionSize", "DisableExecuteApiEndpoint": "disableExecuteApiEndpoint"}))  # fmt: skip
    if p.get("EndpointConfiguration", {}).get("Types"):
        params["endpointConfiguration"] = {"types": p["EndpointConfiguration"]["Types"]}
    if p.get("Policy"):
        params["policy"] = json_text(p["Policy"])
    if p.get("Tags"):
        params["tags"] = tags_dict(p["Tags"])
    api_id = client.create_rest_api(**params)["id"]
    root_id = next(item["id"] for item in client.get_resources(restApiId=api_id)["items"] if item["path"] == "/")
    return resource(context, api_id, api_id, RootResourceId=root_id, RestApiId=api_id)


@resource_handler("AWS::ApiGateway::Resource")
def api_resource(context: ResourceContext) -> DeployedResource:
    p = context.properties
    created = context.clients("apigateway").create_resource(
        restApiId=p["RestApiId"], parentId=p["ParentId"], pathPart=p["PathPart"]
    )
    return resource(context, created["id"], created["id"], ResourceId=created["id"])


@resource_handler("AWS::ApiGateway::Method")
def method(context: ResourceContext) -> DeployedResource:
    p = context.properties
    client = context.clients("apigateway")
    where = {"restApiId": p["RestApiId"], "resourceId": p["ResourceId"], "httpMethod": p["HttpMethod"]}
    client.put_method(
        **where,
        authorizationType=p.get("AuthorizationType", "NONE"),
        **pick(
            p, "AuthorizerId", "ApiKeyRequired", "OperationName", "RequestParameters", "RequestModels", "RequestValidatorId", "AuthorizationScopes",
            rename={"AuthorizerId": "authorizerId", "ApiKeyRequired": "apiKeyRequired", "OperationName": "operationName",
                    "RequestParameters": "requestParameters", "RequestModels": "requestModels",
                    "RequestValidatorId": "requestValidatorId", "AuthorizationScopes": "authorizationScopes"},
        ),
    )  # fmt: skip
    integration = p.get("Integration")
    if integration:
        client.put_integration(
            **where,
            type=integration["Type"],
            **pick(
                integration, "IntegrationHttpMethod", "Uri", "Credentials", "RequestParameters", "RequestTemplates",
                "PassthroughBehavior", "TimeoutInMillis", "ContentHandling",
                rename={"IntegrationHttpMethod": "integrationHttpMethod", "Uri": "uri", "Credentials": "credentials",
                        "RequestParameters": "requestParameters", "RequestTemplates": "requestTemplates",
                        "PassthroughBehavior": "passthroughBehavior", "TimeoutInMillis": "timeoutInMillis",
                        "ContentHandling": "contentHandling"},
            ),
        )  # fmt: skip
    return resource_with_generated_id(context)


@resource_handler("AWS::ApiGateway::Model")
def model(context: ResourceContext) -> DeployedResource:
    p = context.properties
    # Model names must be alphanumeric.
    name = p.get("Name") or context.logical_id + "".join(secrets.choice(string.ascii_letters) for _ in range(8))
    context.clients("apigateway").create_model(
        restApiId=p["RestApiId"],
        name=name,
        contentType=p.get("ContentType", "application/json"),
        schema=json_text(p.get("Schema", {})),
        **pick(p, "Description", rename={"Description": "description"}),
    )
    return resource(context, name, name)


@resource_handler("AWS::ApiGateway::RequestValidator")
def request_validator(context: ResourceContext) -> DeployedResource:
    p = context.properties
    created = context.clients("apigateway").create_request_validator(
        restApiId=p["RestApiId"],
        name=p.get("Name") or context.logical_id,
        validateRequestBody=bool(p.get("ValidateRequestBody", False)),
        validateRequestParameters=bool(p.get("ValidateRequestParameters", False)),
    )
    return resource(context, created["id"], created["id"], RequestValidatorId=created["id"])


@resource_handler("AWS::ApiGateway::GatewayResponse")
def gateway_response(context: ResourceContext) -> DeployedResource:
    p = context.properties
    context.clients("apigateway").put_gateway_response(
        restApiId=p["RestApiId"],
        responseType=p["ResponseType"],
        **pick(p, "StatusCode", "ResponseParameters", "ResponseTemplates",
               rename={"StatusCode": "statusCode", "ResponseParameters": "responseParameters", "ResponseTemplates": "responseTemplates"}),
    )  # fmt: skip
    return resource_with_generated_id(context)


@resource_handler("AWS::ApiGateway::Deployment")
def deployment(context: ResourceContext) -> DeployedResource:
    p = context.properties
    created = context.clients("apigateway").create_deployment(
        restApiId=p["RestApiId"],
        **pick(p, "Description", "StageName", rename={"Description": "description", "StageName": "stageName"}),
    )
    return resource(context, created["id"], created["id"], DeploymentId=created["id"])


@resource_handler("AWS::ApiGateway::Stage")
def stage(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = p.get("StageName") or context.logical_id
    params: dict[str, Any] = {"restApiId": p["RestApiId"], "stageName": name, "deploymentId": p["DeploymentId"]}
    params.update(pick(p, "Description", "Variables", "TracingEnabled", "CacheClusterEnabled",
                       rename={"Description": "description", "Variables": "variables", "TracingEnabled": "tracingEnabled",
                               "CacheClusterEnabled": "cacheClusterEnabled"}))  # fmt: skip
    if p.get("Tags"):
        params["tags"] = tags_dict(p["Tags"])
    context.clients("apigateway").create_stage(**params)
    return resource(context, name, name)


@resource_handler("AWS::ApiGateway::ApiKey")
def api_key(context: ResourceContext) -> DeployedResource:
    p = context.properties
    value = str(p.get("Value") or generate_api_key_value())
    enabled = str(p.get("Enabled", False)).lower() == "true"
    created = context.clients("apigateway").create_api_key(
        name=context.name("Name", 128),
        enabled=enabled,
        value=value,
        **pick(p, "Description", "CustomerId", rename={"Description": "description", "CustomerId": "customerId"}),
    )
    deployed = resource(context, created["id"], created["id"], APIKeyId=created["id"])
    deployed.local.update(value=value, enabled=enabled)
    return deployed


@resource_handler("AWS::ApiGateway::UsagePlan")
def usage_plan(context: ResourceContext) -> DeployedResource:
    p = context.properties
    params: dict[str, Any] = {"name": context.name("UsagePlanName", 128)}
    for key in ("ApiStages", "Throttle", "Quota", "Description"):
        if p.get(key) is not None:
            params[key[:1].lower() + key[1:]] = _camel(p[key])
    if p.get("Tags"):
        params["tags"] = tags_dict(p["Tags"])
    created = context.clients("apigateway").create_usage_plan(**params)
    return resource(context, created["id"], created["id"], Id=created["id"])


@resource_handler("AWS::ApiGateway::UsagePlanKey")
def usage_plan_key(context: ResourceContext) -> DeployedResource:
    p = context.properties
    created = context.clients("apigateway").create_usage_plan_key(
        usagePlanId=p["UsagePlanId"], keyId=p["KeyId"], keyType=p.get("KeyType", "API_KEY")
    )
    return resource(context, created["id"], created["id"], Id=created["id"])


@resource_handler("AWS::ApiGateway::Authorizer")
def authorizer(context: ResourceContext) -> DeployedResource:
    p = context.properties
    created = context.clients("apigateway").create_authorizer(
        restApiId=p["RestApiId"],
        name=p.get("Name") or context.logical_id,
        type=p["Type"],
        **pick(
            p, "ProviderARNs", "AuthType", "AuthorizerUri", "AuthorizerCredentials", "IdentitySource",
            "IdentityValidationExpression", "AuthorizerResultTtlInSeconds",
            rename={"ProviderARNs": "providerARNs", "AuthType": "authType", "AuthorizerUri": "authorizerUri",
                    "AuthorizerCredentials": "authorizerCredentials", "IdentitySource": "identitySource",
                    "IdentityValidationExpression": "identityValidationExpression",
                    "AuthorizerResultTtlInSeconds": "authorizerResultTtlInSeconds"},
        ),
    )  # fmt: skip
    return resource(context, created["id"], created["id"], AuthorizerId=created["id"])


__all__ = ["generate_api_key_value"]
