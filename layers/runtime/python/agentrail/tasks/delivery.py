"""What every SQS consumer of a task needs: once-only processing and knowing the last delivery."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig


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
