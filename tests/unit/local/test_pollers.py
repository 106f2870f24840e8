"""Which SQS messages an event source mapping leaves in the queue after an invocation."""

from __future__ import annotations

import json

import pytest

from agentrail_local.awslambda.definitions import InvocationResult
from agentrail_local.awslambda.event_sources import failed_message_ids, sqs_event

IDS = ["m-1", "m-2", "m-3"]


def _result(body: object, *, error: bool = False) -> InvocationResult:
    return InvocationResult("req", json.dumps(body).encode(), "Unhandled" if error else None)


def test_a_function_error_fails_the_whole_batch() -> None:
    assert failed_message_ids(_result({"errorMessage": "boom"}, error=True), IDS, partial=True) == set(IDS)


def test_without_partial_batch_responses_a_successful_call_deletes_everything() -> None:
    assert failed_message_ids(_result({"batchItemFailures": [{"itemIdentifier": "m-2"}]}), IDS, partial=False) == set()


def test_listed_item_failures_stay_in_the_queue() -> None:
    assert failed_message_ids(_result({"batchItemFailures": [{"itemIdentifier": "m-2"}]}), IDS, partial=True) == {"m-2"}


@pytest.mark.parametrize("body", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_empty_or_null_responses_mean_complete_success(body: object) -> None:
    assert failed_message_ids(_result(body), IDS, partial=True) == set()


@pytest.mark.parametrize(
    "body", [{"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, {"batchItemFailures": "m-1"}, "ok"]
)
def test_a_response_lambda_cannot_read_fails_the_whole_batch(body: object) -> None:
    assert failed_message_ids(_result(body), IDS, partial=True) == set(IDS)


def test_the_event_has_lambdas_sqs_record_shape() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": {"kind": {"StringValue": "task", "DataType": "String"}},
    }

    (record,) = sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:jobs", "us-east-1")["Records"]

    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:jobs"
    assert (record["messageId"], record["receiptHandle"], record["body"]) == ("m-1", "rh", "hello")
    assert record["messageAttributes"]["kind"]["stringValue"] == "task"
