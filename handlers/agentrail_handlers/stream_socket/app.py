"""Streaming API, every WebSocket route: ``$connect``, ``$disconnect``, ``sendMessage``, ``resume`` and ``$default``."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.config import load_settings
from agentrail_runtime.observability import observed
from agentrail_runtime.sessions.dynamodb import DynamoDBSessionStore
from agentrail_runtime.sessions.settings import load_session_settings
from agentrail_runtime.streaming import ConnectionPublisher, ConnectionStore, EventLog, load_stream_settings
from agentrail_runtime.streaming.settings import required as required_setting
from agentrail_runtime.streams.socket import StreamSocket

settings, stream_settings, session_settings = load_settings(), load_stream_settings(), load_session_settings()
connections = ConnectionStore.from_settings(stream_settings)
socket = StreamSocket(
    connections=connections,
    log=EventLog.from_settings(stream_settings),
    publisher=ConnectionPublisher.from_settings(stream_settings, connections),
    sessions=DynamoDBSessionStore.from_settings(session_settings),
    concurrency=session_settings.concurrency,
    queue_url=(
        required_setting(session_settings.queue_url, "AGENT_SESSION_QUEUE_URL")
        if session_settings.concurrency == "enqueue"
        else required_setting(stream_settings.queue_url, "AGENT_STREAM_QUEUE_URL")
    ),
    lease_seconds=stream_settings.turn_lease_seconds,
    store_redacted=settings.store_redacted,
    iam_identity=settings.iam_identity,
)


@observed(correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    return socket.handle(event)
