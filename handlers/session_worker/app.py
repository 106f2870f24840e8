"""Stateful agent, enqueue policy: one session's turns in order from an SQS FIFO queue."""

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail.config import load_settings
from agentrail.observability import logger, metrics, tracer
from agentrail.sessions import SessionAgent
from agentrail.sessions.queue import process_queued_message
from agentrail.sessions.settings import load_session_settings

settings = load_session_settings()
sessions = SessionAgent.from_settings(settings, load_settings())
# FIFO: after a failure the rest of that message group is returned too, so order holds.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)


def record_handler(record: SQSRecord) -> None:
    process_queued_message(sessions, record.body, conflict_retries=settings.max_conflict_retries)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
