"""What every queue or stream consumer needs: partial batch failures, once-only processing, knowing the last delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BasePartialBatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.observability import observed


def batch_handler(
    record_handler: Callable[..., Any],
    processor: BasePartialBatchProcessor,
    *,
    idempotency: IdempotencyConfig | None = None,
) -> Callable[[dict, LambdaContext], PartialItemFailureResponse]:
    """The Lambda handler of a consumer: each record through ``record_handler``, the failed ones reported back
    (``batchItemFailures``) so only they are retried. With ``idempotency`` (from :func:`once_per`), in-progress
    records expire with the invocation's remaining time."""

    @observed()
    def handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
        if idempotency is not None:
            idempotency.register_lambda_context(context)
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

    return handler


def final_delivery(record: SQSRecord, max_receive_count: int) -> bool:
    """True on the last delivery before SQS moves the message to its dead-letter queue."""
    return int(record.attributes.approximate_receive_count or 1) >= max_receive_count


def once_per(key_path: str, table_name: str | None) -> tuple[IdempotencyConfig, DynamoDBPersistenceLayer]:
    """Powertools idempotency keyed on ``key_path`` (JMESPath into the message).

    A duplicate delivery returns the first outcome. Register the Lambda context on the config in the
    handler: in-progress records then expire with the invocation's remaining time, so a crashed attempt
    is retried instead of blocking the message.
    """
    config = IdempotencyConfig(event_key_jmespath=key_path, raise_on_no_idempotency_key=True)
    return config, DynamoDBPersistenceLayer(table_name=table_name or "")
