"""API Gateway HTTP APIs (``AWS::ApiGatewayV2::*``), which moto's CloudFormation has no model for: created here through
moto's apigatewayv2 API, so ids are real; the local gateway serves them from the template."""

from __future__ import annotations

from typing import Any

from agentrail_local.account import REGION
from agentrail_local.cloudformation.resources.base import (
    DeployedResource,
    ResourceContext,
    TemplateError,
    pick,
    record_only,
    resource,
    resource_handler,
    tags_dict,
)

record_only("AWS::ApiGatewayV2::Deployment", "a local HTTP API serves its routes as soon as they are deployed")


def _client(context: ResourceContext) -> Any:
    return context.clients("apigatewayv2")


@resource_handler("AWS::ApiGatewayV2::Api")
def http_api(context: ResourceContext) -> DeployedResource:
    p = context.properties
    if p.get("Body") or p.get("BodyS3Location"):
        context.warn(f"{context.logical_id}: routes defined in an OpenAPI Body are not served locally; only Route resources are")
    protocol = str(p.get("ProtocolType", "HTTP"))
    if protocol != "HTTP":
        raise TemplateError(f"{context.logical_id}: local mode serves HTTP APIs, not {protocol} APIs")
    params: dict[str, Any] = {"Name": p.get("Name") or context.logical_id, "ProtocolType": protocol}
    params.update(pick(p, "Description", "DisableExecuteApiEndpoint"))
    if p.get("Tags"):
        params["Tags"] = tags_dict(p["Tags"])
    created = _client(context).create_api(**params)
    api_id = created["ApiId"]
    endpoint = f"https://{api_id}.execute-api.{REGION}.amazonaws.com"
    return resource(context, api_id, api_id, ApiId=api_id, ApiEndpoint=endpoint)


@resource_handler("AWS::ApiGatewayV2::Integration")
def integration(context: ResourceContext) -> DeployedResource:
    p = context.properties
    created = _client(context).create_integration(
        ApiId=p["ApiId"],
        IntegrationType=p["IntegrationType"],
        **pick(p, "IntegrationUri", "IntegrationMethod", "PayloadFormatVersion", "TimeoutInMillis", "Description"),
    )
    return resource(context, created["IntegrationId"], created["IntegrationId"], IntegrationId=created["IntegrationId"])


@resource_handler("AWS::ApiGatewayV2::Authorizer")
def authorizer(context: ResourceContext) -> DeployedResource:
    p = context.properties
    params: dict[str, Any] = {
        "ApiId": p["ApiId"],
        "AuthorizerType": p["AuthorizerType"],
        "Name": p.get("Name") or context.logical_id,
        "IdentitySource": list(p.get("IdentitySource") or ["$request.header.Authorization"]),
    }
    if p.get("JwtConfiguration"):
        params["JwtConfiguration"] = p["JwtConfiguration"]
    created = _client(context).create_authorizer(**params)
    return resource(context, created["AuthorizerId"], created["AuthorizerId"], AuthorizerId=created["AuthorizerId"])


@resource_handler("AWS::ApiGatewayV2::Route")
def route(context: ResourceContext) -> DeployedResource:
    p = context.properties
    created = _client(context).create_route(
        ApiId=p["ApiId"],
        RouteKey=p["RouteKey"],
        **pick(p, "Target", "AuthorizationType", "AuthorizerId", "AuthorizationScopes", "OperationName"),
    )
    return resource(context, created["RouteId"], created["RouteId"], RouteId=created["RouteId"])


@resource_handler("AWS::ApiGatewayV2::Stage")
def stage(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = str(p.get("StageName") or "$default")
    params: dict[str, Any] = {"ApiId": p["ApiId"], "StageName": name}
    params.update(pick(p, "AutoDeploy", "Description", "StageVariables", "DefaultRouteSettings", "AccessLogSettings"))
    if p.get("Tags"):
        params["Tags"] = tags_dict(p["Tags"])
    _client(context).create_stage(**params)
    return resource(context, name, name)


__all__: list[str] = []
