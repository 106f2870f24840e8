"""SessionTable clean-up: when DynamoDB deletes an expired session's metadata (TTL), purge its other items."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from agentrail_runtime.delivery import batch_handler
from agentrail_runtime.observability import logger
from agentrail_runtime.sessions import DynamoDBSessionStore
from agentrail_runtime.sessions.settings import load_session_settings

store = DynamoDBSessionStore.from_settings(load_session_settings())
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    # The event source mapping filters to REMOVE events of "~meta" items, whose stream record carries the keys.
    assert record.dynamodb is not None
    session_id = record.dynamodb.keys["pk"]
    purged = store.purge(session_id)
    logger.info("session purged", extra={"event": "session_purged", "session_id": session_id, "items": purged})


handler = batch_handler(record_handler, processor)
