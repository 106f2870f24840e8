"""Streaming API, ``reject`` policy: takes the turn of each queued WebSocket message and streams its events."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.config import load_settings
from agentrail_runtime.delivery import batch_handler
from agentrail_runtime.sessions import SessionAgent
from agentrail_runtime.sessions.settings import load_session_settings
from agentrail_runtime.streaming import load_stream_settings
from agentrail_runtime.streams.turns import StreamedTurns, process_streamed_message

sessions = SessionAgent.from_settings(load_session_settings(), load_settings())
turns = StreamedTurns.from_settings(sessions, load_stream_settings())
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    process_streamed_message(turns, record.body, exclusive=False, context=lambda_context)


handler = batch_handler(record_handler, processor)
