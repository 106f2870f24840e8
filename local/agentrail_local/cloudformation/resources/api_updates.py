"""In-place updates and deletions of API Gateway resources, for a redeploy (see :mod:`.updates`).

The local gateway serves what the deployment records, so most updates re-put the resource in moto and
take the new properties into the record; the gateway is then served anew from it.
"""

from __future__ import annotations

from agentrail_local.cloudformation.resources.apigateway import method
from agentrail_local.cloudformation.resources.base import (
    ClientFactory,
    DeployedResource,
    ResourceContext,
    resource_deleter,
    resource_updater,
)
from agentrail_local.cloudformation.resources.updates import refuse_replacement, updated_record

__all__: list[str] = []


@resource_updater("AWS::ApiGateway::RestApi")
def update_rest_api(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    if "Body" in changed or "BodyS3Location" in changed:
        context.warn(f"{context.logical_id}: routes defined in an OpenAPI Body are not served locally")
    return updated_record(context, previous)


@resource_updater("AWS::ApiGateway::Method")
def update_method(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    p = context.properties
    client = context.clients("apigateway")
    client.delete_method(restApiId=p["RestApiId"], resourceId=p["ResourceId"], httpMethod=p["HttpMethod"])
    method(context)
    return updated_record(context, previous)


@resource_deleter("AWS::ApiGateway::Method")
def delete_method(deployed: DeployedResource, clients: ClientFactory) -> None:
    p = deployed.properties
    clients("apigateway").delete_method(restApiId=p["RestApiId"], resourceId=p["ResourceId"], httpMethod=p["HttpMethod"])


@resource_updater("AWS::ApiGateway::Resource")
def update_api_resource(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)  # a path part or parent: every property of a resource replaces it
    return updated_record(context, previous)


@resource_deleter("AWS::ApiGateway::Resource")
def delete_api_resource(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("apigateway").delete_resource(restApiId=deployed.properties["RestApiId"], resourceId=deployed.ref)


@resource_deleter("AWS::ApiGateway::RestApi")
def delete_rest_api(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("apigateway").delete_rest_api(restApiId=deployed.ref)


@resource_deleter("AWS::ApiGateway::Deployment")
def delete_deployment(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("apigateway").delete_deployment(restApiId=deployed.properties["RestApiId"], deploymentId=deployed.ref)


@resource_updater("AWS::ApiGateway::Stage")
def update_stage(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    p = context.properties
    operations = []
    if "DeploymentId" in changed:
        operations.append({"op": "replace", "path": "/deploymentId", "value": str(p["DeploymentId"])})
    for key, value in (p.get("Variables") or {}).items():
        operations.append({"op": "replace", "path": f"/variables/{key}", "value": str(value)})
    if operations:
        context.clients("apigateway").update_stage(restApiId=p["RestApiId"], stageName=previous.ref, patchOperations=operations)
    return updated_record(context, previous)


@resource_deleter("AWS::ApiGateway::Stage")
def delete_stage(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("apigateway").delete_stage(restApiId=deployed.properties["RestApiId"], stageName=deployed.ref)


@resource_updater(
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Model",
    "AWS::ApiGateway::RequestValidator",
    "AWS::ApiGateway::GatewayResponse",
    "AWS::ApiGateway::Authorizer",
    "AWS::ApiGateway::UsagePlan",
)
def update_api_record(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    # The local gateway applies these from the record (schemas, validators, responses, authorizers, throttles).
    return updated_record(context, previous)
