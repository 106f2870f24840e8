"""The wrapping every handler shares: observed() and batch_handler()."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.metrics.provider import cold_start
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

from agentrail_runtime.delivery import batch_handler
from agentrail_runtime.observability import log_environment_keys, logger, metrics, observed

# These handlers add no metric of their own: an empty flush is what they should do.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics:UserWarning")


def _sqs_event(*bodies: str) -> dict:
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"r-{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def test_observed_logs_with_the_lambda_context_and_correlation_id_and_flushes_the_cold_start_metric(
    lambda_context, stdout_records
):
    cold_start.reset_cold_start_flag()

    @observed("detail.correlation_id")
    def handler(event: dict, context: object) -> str:
        logger.info("inside", extra={"event": "inside"})
        return "done"

    assert handler({"detail": {"correlation_id": "c-1"}}, lambda_context) == "done"

    records = stdout_records()
    inside = next(r for r in records if r.get("event") == "inside")
    assert inside["function_name"] == lambda_context.function_name
    assert inside["correlation_id"] == "c-1"
    assert len([r for r in records if "ColdStart" in r]) == 1


def test_observed_clears_the_keys_an_invocation_appended(lambda_context, stdout_records):
    @observed()
    def handler(event: dict, context: object) -> None:
        if event.get("tag"):
            logger.append_keys(task_id=event["tag"])
        logger.info("inside", extra={"event": "inside"})

    handler({"tag": "t-1"}, lambda_context)
    handler({}, lambda_context)

    seen = [r.get("task_id") for r in stdout_records() if r.get("event") == "inside"]
    assert seen == ["t-1", None]


def test_a_handler_keeps_the_environment_keys_it_was_built_with_when_a_later_service_registers_its_own(
    lambda_context, stdout_records
):
    # given: a handler module that built its service (version v-1), then wrapped its handler
    log_environment_keys(agent_version="v-1")

    @observed()
    def handler(event: dict, context: object) -> None:
        logger.info("inside", extra={"event": "inside"})

    # when: a service built later in the same process (another handler module's, a test's) registers v-2
    log_environment_keys(agent_version="v-2")
    handler({}, lambda_context)

    # then: the handler's lines carry the version it was built with
    assert [r.get("agent_version") for r in stdout_records() if r.get("event") == "inside"] == ["v-1"]


def test_batch_handler_reports_only_the_failed_records(lambda_context, stdout_records):
    handled: list[str] = []

    def record_handler(record: SQSRecord) -> None:
        if record.body == "bad":
            raise ValueError("refused")
        handled.append(record.body)

    handler = batch_handler(record_handler, BatchProcessor(event_type=EventType.SQS))

    response = handler(_sqs_event("one", "bad", "two"), lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert handled == ["one", "two"]
    metrics.clear_metrics()


def test_batch_handler_registers_the_context_for_idempotency(lambda_context, stdout_records):
    config = IdempotencyConfig(event_key_jmespath="task_id")
    handler = batch_handler(lambda record: None, BatchProcessor(event_type=EventType.SQS), idempotency=config)

    handler(_sqs_event("{}"), lambda_context)

    assert config.lambda_context is lambda_context
