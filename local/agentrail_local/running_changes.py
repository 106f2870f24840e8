"""A redeploy's changes applied to what runs: functions registered, updated (warm environments recycled) or
forgotten, and the API gateways of changed APIs served anew."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from agentrail_local.apigateway.model import RestApi
from agentrail_local.apigateway.server import LocalApiGateway
from agentrail_local.awslambda.definitions import FunctionDefinition
from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.cloudformation.deployer import StackDeployment
from agentrail_local.cloudformation.redeploy import AppliedChange

__all__ = ["apply_to_functions", "gateways_after", "keep_running_code"]


def apply_to_functions(
    environments: ExecutionEnvironments,
    changes: list[AppliedChange],
    before: dict[str, StackDeployment],
    after: list[StackDeployment],
) -> set[str]:
    """Register, update or forget the functions that changed in a redeploy; returns the names of those that run anew."""
    now = {d.stack_name: d for d in after}
    touched: set[str] = set()
    for change in changes:
        if change.action == "not applied":
            continue
        old = before.get(change.stack, None)
        old_resource = old.resources.get(change.logical_id) if old else None
        new_deployment = now.get(change.stack)
        new_resource = new_deployment.resources.get(change.logical_id) if new_deployment else None
        if change.type == "AWS::Lambda::Function":
            if old_resource is not None and "function" in old_resource.local and change.action in ("removed", "replaced"):
                environments.remove_function(old_resource.local["function"].name)
            if new_resource is None or "function" not in new_resource.local:
                continue
            definition: FunctionDefinition = new_resource.local["function"]
            if change.action == "updated" and environments.knows(definition.name):
                definition = keep_running_code(environments, definition, change)
                environments.update_function(definition)
            else:
                environments.add_function(definition)
            touched.add(definition.name)
        elif change.type == "AWS::Lambda::Version" and new_resource is not None:
            environments.add_version(new_resource.local["function_name"], new_resource.local["version"])
        elif change.type == "AWS::Lambda::Alias" and new_resource is not None:
            local = new_resource.local
            environments.add_alias(local["function_name"], local["alias"], local["version"], local.get("weights"))
    return touched


def keep_running_code(
    environments: ExecutionEnvironments, definition: FunctionDefinition, change: AppliedChange
) -> FunctionDefinition:
    """The new definition, running the code and layers it runs now (live copies included) where they did not change."""
    running = environments.definition(definition.name)
    code_dir = definition.code_dir if "Code" in change.properties else running.code_dir
    by_arn = {layer.arn: layer for layer in running.layers}
    layers = tuple(by_arn.get(layer.arn, layer) for layer in definition.layers)
    return replace(definition, code_dir=code_dir, layers=layers)


def gateways_after(
    changes: list[AppliedChange],
    gateways: list[LocalApiGateway],
    apis: list[RestApi],
    serve: Callable[[RestApi, int], LocalApiGateway],
    *,
    first_port: int,
) -> list[LocalApiGateway]:
    """The gateways to serve after a redeploy: each API of a stack whose API Gateway resources changed is served
    anew on its port (stopped, then ``serve(api, port)``), new APIs on new ports (``first_port`` 0: free ones), removed
    ones stopped."""
    changed_stacks = {c.stack for c in changes if c.type.startswith("AWS::ApiGateway::") and c.action != "not applied"}
    if not changed_stacks:
        return gateways
    running = {(g.api.stack_name, g.api.logical_id): g for g in gateways}
    served: list[LocalApiGateway] = []
    for api in apis:
        current = running.pop((api.stack_name, api.logical_id), None)
        if current is not None and api.stack_name not in changed_stacks:
            served.append(current)
            continue
        port = current.port if current is not None else 0 if first_port == 0 else first_port + len(gateways) + len(served)
        if current is not None:
            current.stop()
        served.append(serve(api, port))
    for gone in running.values():
        gone.stop()
    return served
