"""The worker baseline: a bare Powertools batch handler over the same SQS records as the task worker, without agentrail.

Same decorators in the same order as the task worker, a ``BatchProcessor`` with
partial batch responses, and a record handler that reads the task id from the
message and writes one DynamoDB item (``BASELINE_TABLE``). No agent, no
idempotency, no status transitions, no events: the least a queue consumer that
records something per message does.
"""

import json
import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["handler"]

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
TABLE = os.environ["BASELINE_TABLE"]
dynamodb = boto3.client("dynamodb")


def record_handler(record: SQSRecord) -> None:
    task_id = json.loads(record.body)["task_id"]
    dynamodb.put_item(TableName=TABLE, Item={"task_id": {"S": task_id}, "status": {"S": "done"}})


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
