"""API Gateway HTTP and WebSocket APIs (``AWS::ApiGatewayV2::*``), which moto's CloudFormation has no model for: created
here through moto's apigatewayv2 API, so ids are real; the local gateways serve them from the template (HTTP APIs through
:mod:`agentrail_local.apigateway.server`, WebSocket APIs through :mod:`agentrail_local.apigateway.websocket_server`)."""

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
    resource_updater,
    tags_dict,
)
from agentrail_local.cloudformation.resources.updates import updated_record

record_only("AWS::ApiGatewayV2::Deployment", "a local HTTP or WebSocket API serves its routes as soon as they are deployed")
#: The protocols local mode serves.
PROTOCOLS = ("HTTP", "WEBSOCKET")


def _client(context: ResourceContext) -> Any:
    return context.clients("apigatewayv2")


@resource_handler("AWS::ApiGatewayV2::Api")
def http_api(context: ResourceContext) -> DeployedResource:
    p = context.properties
    if p.get("Body") or p.get("BodyS3Location"):
        context.warn(f"{context.logical_id}: routes defined in an OpenAPI Body are not served locally; only Route resources are")
    protocol = str(p.get("ProtocolType", "HTTP"))
    if protocol not in PROTOCOLS:
        raise TemplateError(f"{context.logical_id}: local mode serves HTTP and WEBSOCKET APIs, not {protocol} APIs")
    params: dict[str, Any] = {"Name": p.get("Name") or context.logical_id, "ProtocolType": protocol}
    params.update(pick(p, "Description", "DisableExecuteApiEndpoint", "RouteSelectionExpression", "ApiKeySelectionExpression"))
    if p.get("Tags"):
        params["Tags"] = tags_dict(p["Tags"])
    created = _client(context).create_api(**params)
    api_id = created["ApiId"]
    scheme = "wss" if protocol == "WEBSOCKET" else "https"
    endpoint = f"{scheme}://{api_id}.execute-api.{REGION}.amazonaws.com"
    return resource(context, api_id, api_id, ApiId=api_id, ApiEndpoint=endpoint)


@resource_handler("AWS::ApiGatewayV2::Integration")
def integration(context: ResourceContext) -> DeployedResource:
    p = context.properties
    created = _client(context).create_integration(
        ApiId=p["ApiId"],
        IntegrationType=p["IntegrationType"],
        **pick(
            p,
            "IntegrationUri",
            "IntegrationMethod",
            "PayloadFormatVersion",
            "TimeoutInMillis",
            "Description",
            "ContentHandlingStrategy",
            "PassthroughBehavior",
            "TemplateSelectionExpression",
        ),
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
    # A Lambda REQUEST authorizer (a WebSocket API's on $connect, or an HTTP API's).
    params.update(
        pick(
            p,
            "AuthorizerUri",
            "AuthorizerCredentialsArn",
            "AuthorizerPayloadFormatVersion",
            "AuthorizerResultTtlInSeconds",
            "EnableSimpleResponses",
            "IdentityValidationExpression",
        )
    )
    created = _client(context).create_authorizer(**params)
    return resource(context, created["AuthorizerId"], created["AuthorizerId"], AuthorizerId=created["AuthorizerId"])


@resource_handler("AWS::ApiGatewayV2::Route")
def route(context: ResourceContext) -> DeployedResource:
    p = context.properties
    created = _client(context).create_route(
        ApiId=p["ApiId"],
        RouteKey=p["RouteKey"],
        **pick(
            p,
            "Target",
            "AuthorizationType",
            "AuthorizerId",
            "AuthorizationScopes",
            "OperationName",
            "ApiKeyRequired",
            "RouteResponseSelectionExpression",
            "ModelSelectionExpression",
        ),
    )
    return resource(context, created["RouteId"], created["RouteId"], RouteId=created["RouteId"])


@resource_handler("AWS::ApiGatewayV2::RouteResponse")
def route_response(context: ResourceContext) -> DeployedResource:
    """A WebSocket route's response: with one, the route is two-way and its integration's answer goes back to the client."""
    p = context.properties
    created = _client(context).create_route_response(
        ApiId=p["ApiId"], RouteId=p["RouteId"], RouteResponseKey=p["RouteResponseKey"], **pick(p, "ModelSelectionExpression")
    )
    response_id = created["RouteResponseId"]
    return resource(context, response_id, response_id, RouteResponseId=response_id)


@resource_handler("AWS::ApiGatewayV2::IntegrationResponse")
def integration_response(context: ResourceContext) -> DeployedResource:
    p = context.properties
    created = _client(context).create_integration_response(
        ApiId=p["ApiId"],
        IntegrationId=p["IntegrationId"],
        IntegrationResponseKey=p["IntegrationResponseKey"],
        **pick(p, "ContentHandlingStrategy", "TemplateSelectionExpression"),
    )
    response_id = created["IntegrationResponseId"]
    return resource(context, response_id, response_id, IntegrationResponseId=response_id)


@resource_updater(
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::RouteResponse",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::IntegrationResponse",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::Stage",
)
def update_v2_record(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    # The local gateways serve these from the record: the API keeps its id (and so its URLs, which functions and outputs
    # hold) while its routes, integrations, authorizers and stage settings change.
    return updated_record(context, previous)


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
