"""Fixtures of the task tests: the task and idempotency tables, queue and DLQ, bus and secret in moto; handlers and events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from agentrail_runtime.models.local import LocalModel

TASK_TABLE = "agentrail-tasks"
IDEMPOTENCY_TABLE = "agentrail-task-idempotency"
BUCKET = "agentrail-task-results"
BUS = "agentrail-task-events"
SECRET = "agentrail/webhook-signing"
SECRET_VALUE = "whsec-9c1f4e7a2b5d8e0f3a6c9d2e5f8a1b4c"
MAX_RECEIVE_COUNT = 5


@dataclass
class Aws:
    """The moto account of a task test: what the AsyncAgent construct creates."""

    dynamodb: Any
    sqs: Any
    s3: Any
    events: Any
    sfn: Any
    queue_url: str
    queue_arn: str
    dlq_url: str
    captured: Any
    state_machine_arn: str
    secret_arn: str
    table: str = TASK_TABLE
    bucket: str = BUCKET

    def task_item(self, task_id: str) -> dict[str, Any] | None:
        return self.dynamodb.get_item(TableName=self.table, Key={"task_id": {"S": task_id}}).get("Item")

    def task_items(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=self.table)["Items"]

    def idempotency_items(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]

    def queued(self, url: str | None = None) -> list[dict[str, Any]]:
        """Receive (and leave in flight) every message on a queue: what the task queue or DLQ holds now."""
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url or self.queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)

    def task_events(self) -> list[dict[str, Any]]:
        """The task events the bus delivered, through its rule, to the capture queue."""
        return self.captured.events()


@pytest.fixture
def aws(task_event_capture) -> Iterator[Aws]:
    # Step Functions that execute, and Lambda without Docker: a rendered workflow's Lambda tasks are answered in
    # process (``workflow_function``).
    with mock_aws(config={"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}):
        dynamodb = boto3.client("dynamodb")
        for name, key, ttl in ((TASK_TABLE, "task_id", "expires_at"), (IDEMPOTENCY_TABLE, "id", "expiration")):
            dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs")
        dlq_url = sqs.create_queue(QueueName="agentrail-tasks-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="agentrail-tasks",
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
                "VisibilityTimeout": "0",
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        captured = task_event_capture(BUS, "agentrail-task-events-capture")
        sfn = boto3.client("stepfunctions")
        state_machine_arn = sfn.create_state_machine(
            name="agentrail-long-tasks",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/agentrail-long-tasks",
        )["stateMachineArn"]
        secret_arn = boto3.client("secretsmanager").create_secret(Name=SECRET, SecretString=SECRET_VALUE)["ARN"]
        parameters.clear_caches()
        yield Aws(
            dynamodb=dynamodb,
            sqs=sqs,
            s3=s3,
            events=boto3.client("events"),
            sfn=sfn,
            queue_url=queue_url,
            queue_arn=queue_arn,
            dlq_url=dlq_url,
            captured=captured,
            state_machine_arn=state_machine_arn,
            secret_arn=secret_arn,
        )
        parameters.clear_caches()


@pytest.fixture
def task_handler(aws: Aws, handler_module) -> Callable[..., Any]:
    """``agentrail_handlers.<name>.app`` initialized with the construct's ``AGENT_TASK_*`` settings (moto must be running)."""

    def initialized(name: str, **settings: str) -> Any:
        environment = {
            "TABLE": TASK_TABLE,
            "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
            "BUCKET": BUCKET,
            "QUEUE_URL": aws.queue_url,
            "EVENT_BUS": BUS,
            "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
            "ROUTES": json.dumps({"default": "queue", "report": "queue", "long": aws.state_machine_arn}),
            "WEBHOOK_SECRET": SECRET,
        } | {key.upper(): value for key, value in settings.items()}
        return handler_module(name, {f"AGENT_TASK_{key}": value for key, value in environment.items()})

    return initialized


@pytest.fixture
def api_event(load_event, aimed_event) -> Callable[..., dict[str, Any]]:
    """An events/tasks/<name>.json event, aimed at ``task_id``, with another body, caller or idempotency key if given."""

    def build(
        name: str,
        *,
        task_id: str | None = None,
        body: Any = ...,
        caller: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        path = {"task_id": task_id} if task_id is not None else None
        event = aimed_event(load_event(f"tasks/{name}.json"), path_parameters=path, body=body)
        if idempotency_key is not None:
            event["headers"]["Idempotency-Key"] = idempotency_key
            event["multiValueHeaders"]["Idempotency-Key"] = [idempotency_key]
        if caller is not None:
            event["requestContext"]["identity"]["userArn"] = caller.get("userArn")
        return event

    return build


@pytest.fixture
def receive(aws: Aws) -> Callable[..., list[dict[str, Any]]]:
    """One poll of the task queue as Lambda's poller makes it: up to 10 messages with their attributes."""

    def poll(url: str | None = None) -> list[dict[str, Any]]:
        return aws.sqs.receive_message(
            QueueUrl=url or aws.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])

    return poll


@pytest.fixture
def sqs_event(
    aws: Aws, sqs_event: Callable[[list[dict[str, Any]], str], dict[str, Any]]
) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """The event Lambda builds from messages received from the task queue (the shape of events/tasks/sqs-batch.json)."""
    return lambda messages: sqs_event(messages, aws.queue_arn)


@pytest.fixture
def settle(aws: Aws) -> Callable[[dict[str, Any], dict[str, Any] | None], None]:
    """What Lambda's poller does after the handler: delete the records that did not fail (none if it raised)."""

    def delete(event: dict[str, Any], result: dict[str, Any] | None) -> None:
        if result is None:
            return
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=record["receiptHandle"])

    return delete


class CountingModel(LocalModel):
    """The local model, counting its calls per request; a request containing ``fail_on`` raises ``failure`` instead."""

    def __init__(self, *, fail_on: str | None = None, failure: BaseException | None = None) -> None:
        self.calls: dict[str, int] = {}
        self.fail_on = fail_on
        self.failure = failure

    def converse(self, **request: Any) -> Any:
        prompt = next(m.text for m in request["messages"] if m.role == "user")
        self.calls[prompt] = self.calls.get(prompt, 0) + 1
        if self.failure is not None and self.fail_on is not None and self.fail_on in prompt:
            raise self.failure
        return super().converse(**request)


@pytest.fixture
def counting_model() -> Callable[..., CountingModel]:
    return CountingModel
