"""Step Functions state machines and activities, CloudWatch Logs log groups, and what local mode skips with a notice
(CloudWatch alarms and dashboards, CodeDeploy)."""

from __future__ import annotations

import json
from typing import Any

from agentrail_local.cloudformation.resources.base import (
    DeployedResource,
    ResourceContext,
    TemplateError,
    record_only,
    resource,
    resource_handler,
    skip_with_notice,
    tags_list,
)

record_only("AWS::Logs::MetricFilter", "log processing is not emulated locally")
record_only("AWS::Logs::SubscriptionFilter", "log processing is not emulated locally")
record_only("AWS::Logs::ResourcePolicy", "log permissions are not enforced locally")
skip_with_notice("AWS::CloudWatch::Alarm", "CloudWatch alarm", "CloudWatch alarms", "local mode has no CloudWatch alarms")
skip_with_notice(
    "AWS::CloudWatch::CompositeAlarm",
    "CloudWatch composite alarm",
    "CloudWatch composite alarms",
    "local mode has no CloudWatch alarms",
)
skip_with_notice(
    "AWS::CloudWatch::Dashboard",
    "CloudWatch dashboard",
    "CloudWatch dashboards",
    "local mode has no CloudWatch dashboards (`agentrail metrics` shows what the functions emitted)",
)

# A canary needs CodeDeploy's traffic shifting, which moto lacks: locally the alias moves at once (its routing weights,
# if any, still split the traffic) and the pre-traffic hook is deployed but never called.
skip_with_notice(
    "AWS::CodeDeploy::Application",
    "CodeDeploy application",
    "CodeDeploy applications",
    "local mode has no CodeDeploy: a new version takes the live alias at once, with no canary or pre-traffic hook",
)
skip_with_notice(
    "AWS::CodeDeploy::DeploymentGroup",
    "CodeDeploy deployment group",
    "CodeDeploy deployment groups",
    "local mode has no CodeDeploy: a new version takes the live alias at once, with no canary or pre-traffic hook",
)


def state_machine_definition(context: ResourceContext, properties: dict[str, Any]) -> str:
    """The definition text with ``DefinitionSubstitutions`` applied."""
    if properties.get("DefinitionString") is not None:
        text = str(properties["DefinitionString"])
    elif properties.get("Definition") is not None:
        text = json.dumps(properties["Definition"])
    elif properties.get("DefinitionS3Location"):
        text = context.asset(str(properties["DefinitionS3Location"]["Key"])).read_text()
    else:
        raise TemplateError(f"{context.logical_id}: a state machine needs DefinitionString or Definition")
    for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + key + "}", str(value))
    return text


@resource_handler("AWS::StepFunctions::StateMachine")
def state_machine(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = context.name("StateMachineName", 80)
    params: dict[str, Any] = {
        "name": name,
        "definition": state_machine_definition(context, p),
        "roleArn": p["RoleArn"],
        "type": p.get("StateMachineType", "STANDARD"),
    }
    if p.get("Tags"):
        params["tags"] = tags_list(p["Tags"], "key", "value")
    if p.get("TracingConfiguration"):
        params["tracingConfiguration"] = {"enabled": bool(p["TracingConfiguration"].get("Enabled"))}
    arn = context.clients("stepfunctions").create_state_machine(**params)["stateMachineArn"]
    return resource(context, arn, arn, Arn=arn, Name=name, StateMachineRevisionId="INITIAL")


@resource_handler("AWS::StepFunctions::Activity")
def activity(context: ResourceContext) -> DeployedResource:
    name = context.name("Name", 80)
    arn = context.clients("stepfunctions").create_activity(name=name)["activityArn"]
    return resource(context, arn, arn, Name=name)


@resource_handler("AWS::Logs::LogGroup")
def log_group(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = context.name("LogGroupName", 512)
    client = context.clients("logs")
    params: dict[str, Any] = {"logGroupName": name}
    if p.get("KmsKeyId"):
        params["kmsKeyId"] = p["KmsKeyId"]
    if p.get("Tags"):
        params["tags"] = {t["Key"]: t["Value"] for t in p["Tags"]}
    client.create_log_group(**params)
    if p.get("RetentionInDays"):
        client.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
    return resource(context, name, name, Arn=context.arn("logs", f"log-group:{name}:*"))


__all__ = ["state_machine_definition"]
