"""EventBridge Scheduler's schedule groups and schedules, created in moto.

moto keeps schedules but never fires them: local mode's schedule runner
(:mod:`agentrail_local.awslambda.schedules`) reads each deployed schedule's
resolved properties and invokes its Lambda target at its rate.
"""

from __future__ import annotations

from typing import Any

from agentrail_local.cloudformation.resources.base import (
    ClientFactory,
    DeployedResource,
    ResourceContext,
    pick,
    resource,
    resource_deleter,
    resource_handler,
    resource_updater,
    tags_list,
)
from agentrail_local.cloudformation.resources.updates import refuse_replacement, updated_record

#: The ``Target`` fields Scheduler's API takes (a template's other keys would fail the call).
_TARGET_KEYS = (
    "Arn", "RoleArn", "Input", "RetryPolicy", "DeadLetterConfig", "SqsParameters", "EventBridgeParameters",
    "KinesisParameters", "EcsParameters", "SageMakerPipelineParameters",
)  # fmt: skip
DEFAULT_GROUP = "default"


def schedule_parameters(properties: dict[str, Any]) -> dict[str, Any]:
    """The template's schedule properties as ``CreateSchedule``/``UpdateSchedule`` parameters (numbers as numbers)."""
    target = pick(properties.get("Target") or {}, *_TARGET_KEYS)
    if target.get("RetryPolicy"):
        target["RetryPolicy"] = {key: int(value) for key, value in target["RetryPolicy"].items()}
    window = dict(properties.get("FlexibleTimeWindow") or {"Mode": "OFF"})
    if "MaximumWindowInMinutes" in window:
        window["MaximumWindowInMinutes"] = int(window["MaximumWindowInMinutes"])
    return {
        "ScheduleExpression": str(properties["ScheduleExpression"]),
        "FlexibleTimeWindow": window,
        "Target": target,
        **pick(properties, "ScheduleExpressionTimezone", "State", "Description", "StartDate", "EndDate", "KmsKeyArn"),
    }


def _group_exists(client: Any, name: str) -> bool:
    try:
        client.get_schedule_group(Name=name)
    except client.exceptions.ResourceNotFoundException:
        return False
    return True


@resource_handler("AWS::Scheduler::ScheduleGroup")
def schedule_group(context: ResourceContext) -> DeployedResource:
    name = context.name("Name", 64)
    client = context.clients("scheduler")
    # A schedule that names the group by a literal (as CDK synthesizes it) may have been created first, with its group.
    if not _group_exists(client, name):
        client.create_schedule_group(Name=name, Tags=tags_list(context.properties.get("Tags")))
    arn = client.get_schedule_group(Name=name)["Arn"]
    return resource(context, name, name, Arn=arn)


@resource_handler("AWS::Scheduler::Schedule")
def schedule(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = context.name("Name", 64)
    group = str(p.get("GroupName") or DEFAULT_GROUP)
    client = context.clients("scheduler")
    if group != DEFAULT_GROUP and not _group_exists(client, group):
        client.create_schedule_group(Name=group)
    arn = client.create_schedule(Name=name, GroupName=group, **schedule_parameters(p))["ScheduleArn"]
    return resource(context, f"{group}|{name}", name, Arn=arn)


@resource_updater("AWS::Scheduler::Schedule")
def update_schedule(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    group, _, name = previous.physical_id.partition("|")
    context.clients("scheduler").update_schedule(Name=name, GroupName=group, **schedule_parameters(context.properties))
    return updated_record(context, previous)


@resource_deleter("AWS::Scheduler::Schedule")
def delete_schedule(deployed: DeployedResource, clients: ClientFactory) -> None:
    group, _, name = deployed.physical_id.partition("|")
    clients("scheduler").delete_schedule(Name=name, GroupName=group)


@resource_updater("AWS::Scheduler::ScheduleGroup")
def update_schedule_group(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    if "Tags" in changed and context.properties.get("Tags"):
        context.clients("scheduler").tag_resource(
            ResourceArn=previous.attributes["Arn"], Tags=tags_list(context.properties["Tags"])
        )
    return updated_record(context, previous)


@resource_deleter("AWS::Scheduler::ScheduleGroup")
def delete_schedule_group(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("scheduler").delete_schedule_group(Name=deployed.physical_id)


__all__ = ["DEFAULT_GROUP", "schedule_parameters"]
