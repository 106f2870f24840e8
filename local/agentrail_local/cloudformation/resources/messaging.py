"""SQS queues, SNS topics and subscriptions, EventBridge buses and rules."""

from __future__ import annotations

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
    tags_list,
)

record_only("AWS::Events::EventBusPolicy", "bus permissions are not enforced locally")

_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json_text(value)
    return str(value)


def queue_attributes(properties: dict[str, Any]) -> dict[str, str]:
    """The template's queue properties as SQS attributes (all strings; policies as JSON text)."""
    return {name: _attribute_text(properties[name]) for name in _QUEUE_ATTRIBUTES if properties.get(name) is not None}


@resource_handler("AWS::SQS::Queue")
def queue(context: ResourceContext) -> DeployedResource:
    p = context.properties
    fifo = str(p.get("FifoQueue", "")).lower() == "true"
    name = context.name("QueueName", 80, suffix=".fifo" if fifo else "")
    client = context.clients("sqs")
    url = client.create_queue(QueueName=name, Attributes=queue_attributes(p), tags=tags_dict(p.get("Tags")))["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return resource(context, url, url, Arn=arn, QueueName=name, QueueUrl=url)


@resource_handler("AWS::SQS::QueuePolicy")
def queue_policy(context: ResourceContext) -> DeployedResource:
    p = context.properties
    client = context.clients("sqs")
    for url in p.get("Queues", ()):
        client.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json_text(p["PolicyDocument"])})
    return resource_with_generated_id(context)


def _subscribe(context: ResourceContext, topic_arn: str, spec: dict[str, Any]) -> str:
    attributes = {
        name: _attribute_text(spec[name])
        for name in ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy", "DeliveryPolicy")
        if spec.get(name) is not None
    }
    created = context.clients("sns").subscribe(
        TopicArn=topic_arn,
        Protocol=spec["Protocol"],
        Endpoint=spec["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    return created["SubscriptionArn"]


@resource_handler("AWS::SNS::Topic")
def topic(context: ResourceContext) -> DeployedResource:
    p = context.properties
    fifo = str(p.get("FifoTopic", "")).lower() == "true"
    name = context.name("TopicName", 256, suffix=".fifo" if fifo else "")
    attributes = {
        key: _attribute_text(p[key])
        for key in (
            "DisplayName",
            "KmsMasterKeyId",
            "FifoTopic",
            "ContentBasedDeduplication",
            "SignatureVersion",
            "TracingConfig",
        )
        if p.get(key) is not None
    }
    arn = context.clients("sns").create_topic(Name=name, Attributes=attributes, Tags=tags_list(p.get("Tags")))["TopicArn"]
    for subscription in p.get("Subscription", ()):
        _subscribe(context, arn, subscription)
    return resource(context, arn, arn, TopicArn=arn, TopicName=name)


@resource_handler("AWS::SNS::Subscription")
def subscription(context: ResourceContext) -> DeployedResource:
    arn = _subscribe(context, context.properties["TopicArn"], context.properties)
    return resource(context, arn, arn, Arn=arn)


@resource_handler("AWS::SNS::TopicPolicy")
def topic_policy(context: ResourceContext) -> DeployedResource:
    p = context.properties
    for topic_arn in p.get("Topics", ()):
        context.clients("sns").set_topic_attributes(
            TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json_text(p["PolicyDocument"])
        )
    return resource_with_generated_id(context)


@resource_handler("AWS::Events::EventBus")
def event_bus(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = context.name("Name", 256)
    created = context.clients("events").create_event_bus(
        Name=name, Tags=tags_list(p.get("Tags")), **pick(p, "Description", "KmsKeyIdentifier")
    )
    arn = created["EventBusArn"]
    return resource(context, name, name, Arn=arn, Name=name)


_TARGET_KEYS = (
    "Id", "Arn", "RoleArn", "Input", "InputPath", "InputTransformer", "DeadLetterConfig", "RetryPolicy", "SqsParameters",
)  # fmt: skip


@resource_handler("AWS::Events::Rule")
def rule(context: ResourceContext) -> DeployedResource:
    p = context.properties
    name = context.name("Name", 64)
    bus = p.get("EventBusName")
    bus_name = bus.rsplit("/", 1)[-1] if isinstance(bus, str) and bus.startswith("arn:") else bus
    params: dict[str, Any] = {"Name": name, **pick(p, "ScheduleExpression", "State", "Description", "RoleArn")}
    if p.get("EventPattern") is not None:
        params["EventPattern"] = json_text(p["EventPattern"])
    if bus_name:
        params["EventBusName"] = bus_name
    client = context.clients("events")
    arn = client.put_rule(**params)["RuleArn"]
    targets = [pick(t, *_TARGET_KEYS) for t in p.get("Targets", ())]
    if targets:
        client.put_targets(Rule=name, Targets=targets, **({"EventBusName": bus_name} if bus_name else {}))
    ref = f"{bus_name}|{name}" if bus_name and bus_name != "default" else name
    return resource(context, ref, ref, Arn=arn)


__all__ = ["queue_attributes"]
