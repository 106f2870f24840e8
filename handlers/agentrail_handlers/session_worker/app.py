"""Stateful agent, enqueue policy: one session's turns in order from an SQS FIFO queue."""

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from agentrail_runtime.config import load_settings
from agentrail_runtime.delivery import batch_handler
from agentrail_runtime.sessions import SessionAgent
from agentrail_runtime.sessions.queue import process_queued_message
from agentrail_runtime.sessions.settings import load_session_settings

settings = load_session_settings()
sessions = SessionAgent.from_settings(settings, load_settings())
# FIFO: after a failure the rest of that message group is returned too, so order holds.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)


def record_handler(record: SQSRecord) -> None:
    process_queued_message(sessions, record.body, conflict_retries=settings.max_conflict_retries)


handler = batch_handler(record_handler, processor)
