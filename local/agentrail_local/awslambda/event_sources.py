"""Lambda's SQS event source mappings, run locally: poll the queue, invoke with batches, delete only what succeeded.

moto's own SQS trigger is not used: it invokes synchronously on ``send_message``
and deletes the message even when the function reports it failed, so retries
and dead-letter redrive would silently never happen. Here a failed batch, or
the items a function lists in ``batchItemFailures``, stay in the queue: they
become visible again after the visibility timeout, and SQS moves them to the
dead-letter queue after ``maxReceiveCount`` receives, as in AWS.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from agentrail_local.awslambda.definitions import InvocationResult, Throttled
from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.console import Console

#: How long one receive waits for messages; also bounds how long stopping takes.
WAIT_SECONDS = 1


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda builds from received messages."""
    records = []
    for message in messages:
        attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        }
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": attributes,
                "md5OfBody": message.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def failed_message_ids(result: InvocationResult, message_ids: list[str], *, partial: bool) -> set[str]:
    """Which messages must stay in the queue after an invocation.

    A function error fails the whole batch. With ``ReportBatchItemFailures``,
    the listed ``itemIdentifier`` values fail; a response Lambda cannot read
    fails the whole batch too.
    """
    if not result.ok:
        return set(message_ids)
    if not partial:
        return set()
    try:
        body = result.json()
    except ValueError:
        return set(message_ids)
    if body is None or body == {} or (isinstance(body, dict) and not body.get("batchItemFailures")):
        return set()
    failures = body.get("batchItemFailures") if isinstance(body, dict) else None
    if not isinstance(failures, list):
        return set(message_ids)
    failed = {str(item.get("itemIdentifier")) for item in failures if isinstance(item, dict)}
    if not failed <= set(message_ids):
        return set(message_ids)
    return failed


class SqsPoller:
    """One ``AWS::Lambda::EventSourceMapping`` from an SQS queue.

    Parameters
    ----------
    mapping:
        The mapping's resolved template properties.
    sqs:
        A boto3 SQS client pointed at moto.
    environments:
        Runs the function.
    """

    def __init__(
        self,
        mapping: Mapping[str, Any],
        *,
        sqs: Any,
        environments: ExecutionEnvironments,
        region: str = "us-east-1",
        console: Console | None = None,
    ) -> None:
        self.queue_arn = str(mapping["EventSourceArn"])
        self.function = str(mapping["FunctionName"])
        self.batch_size = min(int(mapping.get("BatchSize", 10)), 10)
        self.partial = "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or [])
        self._sqs = sqs
        self._environments = environments
        self._region = region
        self._console = console
        self._queue_url = sqs.get_queue_url(QueueName=self.queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-poller-{self.queue_arn.rsplit(':', 1)[-1]}", daemon=True)

    def start(self) -> SqsPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT_SECONDS + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as error:
                if self._stop.is_set():
                    return
                if self._console is not None:
                    self._console(f"sqs poller for {self.function}: {type(error).__name__}: {error}")
                time.sleep(1)

    def poll_once(self) -> int:
        """Receive one batch and hand it to the function; returns how many messages were received."""
        received = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received or self._stop.is_set():
            return len(received)
        event = sqs_event(received, self.queue_arn, self._region)
        try:
            # The batch continues the trace of its first message's sender (Lambda links the others).
            trace = received[0].get("Attributes", {}).get("AWSTraceHeader")
            result = self._environments.invoke(self.function, json.dumps(event), trace_header=trace)
        except Throttled:
            # Left in flight: the messages come back after the visibility timeout, as when Lambda throttles.
            return len(received)
        ids = [m["MessageId"] for m in received]
        failed = failed_message_ids(result, ids, partial=self.partial)
        done = [
            {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]}
            for index, m in enumerate(received)
            if m["MessageId"] not in failed
        ]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=done)
        return len(received)


def start_pollers(
    deployments: Iterable[Any],
    *,
    sqs: Any,
    environments: ExecutionEnvironments,
    console: Console | None,
    warn: Console,
) -> list[SqsPoller]:
    """Start one poller per enabled SQS event source mapping of ``deployments`` (``StackDeployment``s: the import would
    make a cycle); ``warn`` about the mappings that cannot run."""
    pollers = []
    for deployment in deployments:
        for mapping in deployment.of_type("AWS::Lambda::EventSourceMapping"):
            spec = mapping.local["mapping"]
            if str(spec.get("Enabled", True)).lower() == "false":
                continue
            if ":sqs:" not in str(spec.get("EventSourceArn", "")):
                warn(
                    f"{deployment.stack_name}/{mapping.logical_id}: only SQS event sources are polled locally; "
                    f"{str(spec.get('EventSourceArn', '?')).split(':')[2]} records will not reach {spec.get('FunctionName')}"
                )
                continue
            if spec.get("FilterCriteria"):
                warn(
                    f"{deployment.stack_name}/{mapping.logical_id}: FilterCriteria are not applied locally; every message is delivered"
                )
            pollers.append(SqsPoller(spec, sqs=sqs, environments=environments, console=console).start())
    return pollers


__all__ = ["SqsPoller", "failed_message_ids", "sqs_event", "start_pollers"]
