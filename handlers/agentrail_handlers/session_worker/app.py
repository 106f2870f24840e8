"""Stateful agent, enqueue policy: one session's turns in order from an SQS FIFO queue; a message sent over the
WebSocket streaming API is streamed to the session's connections."""

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.config import load_settings
from agentrail_runtime.delivery import batch_handler
from agentrail_runtime.sessions import SessionAgent
from agentrail_runtime.sessions.settings import load_session_settings
from agentrail_runtime.streaming import load_stream_settings
from agentrail_runtime.streams.turns import StreamedTurns, process_session_message

settings, stream_settings = load_session_settings(), load_stream_settings()
sessions = SessionAgent.from_settings(settings, load_settings())
# Streaming is on when the construct gave this worker the event log.
turns = StreamedTurns.from_settings(sessions, stream_settings) if stream_settings.event_table else None
# FIFO: after a failure the rest of that message group is returned too, so order holds.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    process_session_message(sessions, turns, record.body, conflict_retries=settings.max_conflict_retries, context=lambda_context)


handler = batch_handler(record_handler, processor)
