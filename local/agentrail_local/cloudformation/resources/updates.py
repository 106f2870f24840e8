"""In-place updates and deletions of deployed resources, for a redeploy after a new synth.

An updater gets the resource's new properties (resolved) and the names of those that changed. It
changes moto where the service API can (Lambda configuration and code, queue attributes, state
machine definitions, event rules, IAM policies, log retention, table TTL and indexes...), raises
:class:`NeedsReplacement` for a change CloudFormation makes by replacing the resource (a new name,
a table's key schema), and :class:`NotApplied` for one local mode cannot make at all.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace
from typing import Any

from agentrail_local.cloudformation.resources.base import (
    ClientFactory,
    DeployedResource,
    NeedsReplacement,
    NotApplied,
    ResourceContext,
    json_text,
    pick,
    resource_deleter,
    resource_updater,
    tags_dict,
)
from agentrail_local.cloudformation.resources.compute import code_zip, function, routing_weights
from agentrail_local.cloudformation.resources.data import PROVISIONED_DEFAULT, shaped_indexes
from agentrail_local.cloudformation.resources.messaging import queue_attributes, queue_policy, rule
from agentrail_local.cloudformation.resources.security import policy as create_policy
from agentrail_local.cloudformation.resources.workflows import state_machine_definition

__all__ = ["REPLACING_PROPERTIES", "refuse_replacement", "updated_record"]

#: Properties whose change makes CloudFormation replace the resource (its name, or what identifies it).
REPLACING_PROPERTIES: dict[str, frozenset[str]] = {
    "AWS::Lambda::Function": frozenset({"FunctionName", "PackageType"}),
    "AWS::SQS::Queue": frozenset({"QueueName", "FifoQueue"}),
    "AWS::DynamoDB::Table": frozenset({"TableName", "KeySchema", "LocalSecondaryIndexes"}),
    "AWS::DynamoDB::GlobalTable": frozenset({"TableName", "KeySchema", "LocalSecondaryIndexes"}),
    "AWS::StepFunctions::StateMachine": frozenset({"StateMachineName", "StateMachineType"}),
    "AWS::Events::Rule": frozenset({"Name", "EventBusName"}),
    "AWS::Events::EventBus": frozenset({"Name"}),
    "AWS::IAM::Role": frozenset({"RoleName", "Path"}),
    "AWS::Logs::LogGroup": frozenset({"LogGroupName", "KmsKeyId"}),
    "AWS::SNS::Topic": frozenset({"TopicName", "FifoTopic"}),
    "AWS::S3::Bucket": frozenset({"BucketName"}),
    "AWS::ApiGateway::Resource": frozenset({"RestApiId", "ParentId", "PathPart"}),
    "AWS::ApiGateway::Method": frozenset({"RestApiId", "ResourceId", "HttpMethod"}),
    "AWS::SSM::Parameter": frozenset({"Name"}),
    "AWS::Scheduler::Schedule": frozenset({"Name", "GroupName"}),
    "AWS::Scheduler::ScheduleGroup": frozenset({"Name"}),
}


def refuse_replacement(context: ResourceContext, changed: tuple[str, ...]) -> None:
    replacing = sorted(REPLACING_PROPERTIES.get(context.type, frozenset()) & set(changed))
    if replacing:
        raise NeedsReplacement(", ".join(replacing))


def updated_record(context: ResourceContext, previous: DeployedResource) -> DeployedResource:
    """``previous`` with the new properties (ids, attributes and local state kept)."""
    return replace(previous, properties=context.properties, metadata=context.metadata, local=dict(previous.local))


# -- Lambda ----------------------------------------------------------------------------------------


@resource_updater("AWS::Lambda::Function")
def update_function(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    if previous.placeholder or "ImageUri" in context.properties.get("Code", {}):
        raise NotApplied("container image functions do not run locally")
    # The creation path builds the definition (layers, environment, log group...) from the properties;
    # the function itself is then updated in moto rather than created.
    fresh = _definition_of(context, previous.physical_id)
    client = context.clients("lambda")
    name = previous.physical_id
    p = context.properties
    configuration: dict[str, Any] = {
        "FunctionName": name,
        "Role": p["Role"],
        "Handler": str(p.get("Handler", "")),
        "Runtime": str(p.get("Runtime", "")),
        "Timeout": int(float(p.get("Timeout", 3))),
        "MemorySize": int(p.get("MemorySize", 128)),
        "Environment": {"Variables": dict(fresh.environment)},
        "Layers": [layer.arn for layer in fresh.layers if layer.path is not None],
    }
    configuration.update(pick(p, "Description", "TracingConfig", "EphemeralStorage", "KmsKeyArn"))
    client.update_function_configuration(**configuration)
    if "Code" in changed:
        client.update_function_code(FunctionName=name, ZipFile=code_zip(fresh.code_dir))
    if "ReservedConcurrentExecutions" in changed:
        if fresh.reserved_concurrency is None:
            client.delete_function_concurrency(FunctionName=name)
        else:
            client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=fresh.reserved_concurrency)
    if "Tags" in changed and p.get("Tags"):
        client.tag_resource(Resource=previous.attributes["Arn"], Tags=tags_dict(p["Tags"]))
    deployed = updated_record(context, previous)
    deployed.local["function"] = replace(fresh, arn=previous.attributes["Arn"])
    return deployed


def _definition_of(context: ResourceContext, name: str) -> Any:
    """The function definition the creation path would build, without creating anything in moto."""

    class _Recorder:
        def __init__(self, clients: ClientFactory) -> None:
            self._clients = clients

        def __call__(self, service: str) -> Any:
            return _NoCreate(self._clients(service)) if service == "lambda" else self._clients(service)

    planned = replace(context, clients=_Recorder(context.clients), properties={**context.properties, "FunctionName": name})
    return function(planned).local["function"]


class _NoCreate:
    """A Lambda client whose ``create_function`` only echoes: the creation path, run for its definition."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def create_function(self, **params: Any) -> dict[str, Any]:
        return {"FunctionArn": f"arn:aws:lambda:::function:{params['FunctionName']}"}

    def put_function_concurrency(self, **_: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@resource_deleter("AWS::Lambda::Function")
def delete_function(deployed: DeployedResource, clients: ClientFactory) -> None:
    if not deployed.placeholder:
        clients("lambda").delete_function(FunctionName=deployed.physical_id)


@resource_updater("AWS::Lambda::Alias")
def update_alias(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    p = context.properties
    if {"FunctionName", "Name"} & set(changed):
        raise NeedsReplacement(", ".join(sorted({"FunctionName", "Name"} & set(changed))))
    weights = routing_weights(p)
    context.clients("lambda").update_alias(
        FunctionName=previous.local["function_name"],
        Name=p["Name"],
        FunctionVersion=str(p["FunctionVersion"]),
        RoutingConfig={"AdditionalVersionWeights": weights},
    )
    deployed = updated_record(context, previous)
    deployed.local.update(version=str(p["FunctionVersion"]), weights=weights)
    return deployed


@resource_updater("AWS::Lambda::Version", "AWS::Lambda::LayerVersion")
def update_immutable(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    raise NeedsReplacement(", ".join(changed) + " (published versions never change)")


@resource_deleter("AWS::Lambda::Version")
def delete_version(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("lambda").delete_function(FunctionName=deployed.local["function_name"], Qualifier=deployed.local["version"])


@resource_deleter("AWS::Lambda::Alias")
def delete_alias(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("lambda").delete_alias(FunctionName=deployed.local["function_name"], Name=deployed.local["alias"])


@resource_deleter("AWS::Lambda::LayerVersion")
def delete_layer_version(deployed: DeployedResource, clients: ClientFactory) -> None:
    arn = str(deployed.physical_id)
    clients("lambda").delete_layer_version(LayerName=arn.rsplit(":", 1)[0], VersionNumber=int(arn.rsplit(":", 1)[1]))


@resource_updater("AWS::Lambda::EventSourceMapping")
def update_event_source_mapping(
    context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]
) -> DeployedResource:
    # Recorded, not created in moto (see compute.event_source_mapping): local mode's poller reads the record.
    deployed = updated_record(context, previous)
    deployed.local["mapping"] = dict(context.properties)
    return deployed


# -- messaging ---------------------------------------------------------------------------------------

#: SQS's values for attributes a template stops setting.
_QUEUE_DEFAULTS = {
    "DelaySeconds": "0",
    "MaximumMessageSize": "262144",
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "VisibilityTimeout": "30",
    "RedrivePolicy": "",
}


@resource_updater("AWS::SQS::Queue")
def update_queue(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    attributes = {k: v for k, v in queue_attributes(context.properties).items() if k in changed}
    attributes.update({k: v for k, v in _QUEUE_DEFAULTS.items() if k in changed and k not in context.properties})
    if attributes:
        context.clients("sqs").set_queue_attributes(QueueUrl=previous.ref, Attributes=attributes)
    if "Tags" in changed and context.properties.get("Tags"):
        context.clients("sqs").tag_queue(QueueUrl=previous.ref, Tags=tags_dict(context.properties["Tags"]))
    return updated_record(context, previous)


@resource_deleter("AWS::SQS::Queue")
def delete_queue(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("sqs").delete_queue(QueueUrl=deployed.ref)


@resource_updater("AWS::SQS::QueuePolicy")
def update_queue_policy(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    queue_policy(context)
    return updated_record(context, previous)


@resource_updater("AWS::Events::Rule")
def update_rule(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    client = context.clients("events")
    bus_name, _, name = previous.ref.rpartition("|")
    on_bus = {"EventBusName": bus_name} if bus_name else {}
    old_ids = [t["Id"] for t in previous.properties.get("Targets", ())]
    if old_ids:
        client.remove_targets(Rule=name, Ids=old_ids, **on_bus)
    rule(replace(context, properties={**context.properties, "Name": name}))
    return updated_record(context, previous)


@resource_deleter("AWS::Events::Rule")
def delete_rule(deployed: DeployedResource, clients: ClientFactory) -> None:
    bus_name, _, name = deployed.ref.rpartition("|")
    on_bus = {"EventBusName": bus_name} if bus_name else {}
    client = clients("events")
    ids = [t["Id"] for t in deployed.properties.get("Targets", ())]
    if ids:
        client.remove_targets(Rule=name, Ids=ids, **on_bus)
    client.delete_rule(Name=name, **on_bus)


@resource_deleter("AWS::Events::EventBus")
def delete_event_bus(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("events").delete_event_bus(Name=deployed.physical_id)


@resource_deleter("AWS::SNS::Topic")
def delete_topic(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("sns").delete_topic(TopicArn=deployed.ref)


@resource_deleter("AWS::SNS::Subscription")
def delete_subscription(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("sns").unsubscribe(SubscriptionArn=deployed.ref)


# -- data --------------------------------------------------------------------------------------------


@resource_updater("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
def update_table(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    client = context.clients("dynamodb")
    name = previous.physical_id
    p = context.properties
    applied = {"AttributeDefinitions", "Tags", "Replicas"}
    if "TimeToLiveSpecification" in changed:
        ttl = p.get("TimeToLiveSpecification") or {}
        old = previous.properties.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled"):
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        elif old.get("Enabled"):
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": False, "AttributeName": old["AttributeName"]}
            )
        applied.add("TimeToLiveSpecification")
    if "GlobalSecondaryIndexes" in changed:
        _update_indexes(client, name, previous.properties, p)
        applied.add("GlobalSecondaryIndexes")
    if "StreamSpecification" in changed:
        stream = p.get("StreamSpecification") or {}
        specification = (
            {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
            if stream.get("StreamViewType")
            else {"StreamEnabled": False}
        )
        client.update_table(TableName=name, StreamSpecification=specification)
        applied.add("StreamSpecification")
    if "BillingMode" in changed or "ProvisionedThroughput" in changed:
        billing = p.get("BillingMode", "PROVISIONED")
        extra = (
            {"ProvisionedThroughput": p.get("ProvisionedThroughput") or PROVISIONED_DEFAULT} if billing == "PROVISIONED" else {}
        )
        client.update_table(TableName=name, BillingMode=billing, **extra)
        applied.update({"BillingMode", "ProvisionedThroughput"})
    rest = sorted(set(changed) - applied)
    deployed = updated_record(context, previous)
    if rest:
        # The rest (encryption, point-in-time recovery, table class...) has no effect on how the table behaves locally.
        deployed.local["not_applied"] = rest
    return deployed


def _update_indexes(client: Any, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    before = {i["IndexName"]: i for i in old.get("GlobalSecondaryIndexes") or ()}
    after = {i["IndexName"]: i for i in new.get("GlobalSecondaryIndexes") or ()}
    provisioned = new.get("BillingMode", "PROVISIONED") == "PROVISIONED"
    updates: list[dict[str, Any]] = [{"Delete": {"IndexName": n}} for n in before if n not in after or before[n] != after[n]]
    updates += [
        {"Create": i} for i in shaped_indexes([i for n, i in after.items() if n not in before or before[n] != i], provisioned)
    ]
    for update in updates:  # DynamoDB takes one index change per call
        client.update_table(
            TableName=name, AttributeDefinitions=new["AttributeDefinitions"], GlobalSecondaryIndexUpdates=[update]
        )


@resource_deleter("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
def delete_table(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("dynamodb").delete_table(TableName=deployed.physical_id)


@resource_deleter("AWS::S3::Bucket")
def delete_bucket(deployed: DeployedResource, clients: ClientFactory) -> None:
    # CloudFormation fails to delete a bucket that holds objects; so does this.
    clients("s3").delete_bucket(Bucket=deployed.physical_id)


# -- workflows and logs -----------------------------------------------------------------------------


@resource_updater("AWS::StepFunctions::StateMachine")
def update_state_machine(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    params: dict[str, Any] = {
        "stateMachineArn": previous.ref,
        "definition": state_machine_definition(context, context.properties),
        "roleArn": context.properties["RoleArn"],
    }
    if context.properties.get("TracingConfiguration"):
        params["tracingConfiguration"] = {"enabled": bool(context.properties["TracingConfiguration"].get("Enabled"))}
    context.clients("stepfunctions").update_state_machine(**params)
    return updated_record(context, previous)


@resource_deleter("AWS::StepFunctions::StateMachine")
def delete_state_machine(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("stepfunctions").delete_state_machine(stateMachineArn=deployed.ref)


@resource_deleter("AWS::StepFunctions::Activity")
def delete_activity(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("stepfunctions").delete_activity(activityArn=deployed.ref)


@resource_updater("AWS::Logs::LogGroup")
def update_log_group(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    client = context.clients("logs")
    retention = context.properties.get("RetentionInDays")
    if retention:
        client.put_retention_policy(logGroupName=previous.ref, retentionInDays=int(retention))
    else:
        client.delete_retention_policy(logGroupName=previous.ref)
    return updated_record(context, previous)


@resource_deleter("AWS::Logs::LogGroup")
def delete_log_group(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("logs").delete_log_group(logGroupName=deployed.ref)


# -- security ----------------------------------------------------------------------------------------


@resource_updater("AWS::IAM::Role")
def update_role(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    client = context.clients("iam")
    name = previous.physical_id
    p = context.properties
    if "AssumeRolePolicyDocument" in changed:
        client.update_assume_role_policy(RoleName=name, PolicyDocument=json_text(p["AssumeRolePolicyDocument"]))
    new_policies = {policy["PolicyName"]: policy for policy in p.get("Policies", ())}
    for policy in previous.properties.get("Policies", ()):
        if policy["PolicyName"] not in new_policies:
            client.delete_role_policy(RoleName=name, PolicyName=policy["PolicyName"])
    for policy in new_policies.values():
        client.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json_text(policy["PolicyDocument"]))
    return updated_record(context, previous)


@resource_deleter("AWS::IAM::Role")
def delete_role(deployed: DeployedResource, clients: ClientFactory) -> None:
    client = clients("iam")
    for name in client.list_role_policies(RoleName=deployed.physical_id)["PolicyNames"]:
        client.delete_role_policy(RoleName=deployed.physical_id, PolicyName=name)
    for attached in client.list_attached_role_policies(RoleName=deployed.physical_id)["AttachedPolicies"]:
        client.detach_role_policy(RoleName=deployed.physical_id, PolicyArn=attached["PolicyArn"])
    client.delete_role(RoleName=deployed.physical_id)


@resource_updater("AWS::IAM::Policy")
def update_policy(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    delete_policy(previous, context.clients)
    create_policy(context)
    return updated_record(context, previous)


@resource_deleter("AWS::IAM::Policy")
def delete_policy(deployed: DeployedResource, clients: ClientFactory) -> None:
    client = clients("iam")
    name = deployed.properties["PolicyName"]
    for role in deployed.properties.get("Roles", ()):
        with suppress(client.exceptions.NoSuchEntityException):  # the role went first
            client.delete_role_policy(RoleName=role, PolicyName=name)


@resource_updater("AWS::SSM::Parameter")
def update_parameter(context: ResourceContext, previous: DeployedResource, changed: tuple[str, ...]) -> DeployedResource:
    refuse_replacement(context, changed)
    p = context.properties
    context.clients("ssm").put_parameter(
        Name=previous.physical_id, Value=str(p["Value"]), Type=p.get("Type", "String"), Overwrite=True, **pick(p, "Description")
    )
    deployed = updated_record(context, previous)
    deployed.attributes["Value"] = str(p["Value"])
    return deployed


@resource_deleter("AWS::SSM::Parameter")
def delete_parameter(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("ssm").delete_parameter(Name=deployed.physical_id)


@resource_deleter("AWS::SecretsManager::Secret")
def delete_secret(deployed: DeployedResource, clients: ClientFactory) -> None:
    clients("secretsmanager").delete_secret(SecretId=deployed.ref, ForceDeleteWithoutRecovery=True)
