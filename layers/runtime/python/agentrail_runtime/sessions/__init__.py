"""Session memory: a store interface, its DynamoDB implementation, S3 offload and the turn logic."""

from agentrail_runtime.sessions.dynamodb import DynamoDBSessionStore
from agentrail_runtime.sessions.offload import S3TurnOffload
from agentrail_runtime.sessions.service import SessionAgent, TurnOutcome
from agentrail_runtime.sessions.store import (
    SESSION_ID_PATTERN,
    MessageIdReused,
    SessionInfo,
    SessionNotFound,
    SessionStore,
    StateConflict,
    StateDocument,
    Turn,
    TurnConflict,
    TurnNotFound,
    TurnTooLarge,
    Window,
)

__all__ = [
    "SESSION_ID_PATTERN",
    "DynamoDBSessionStore",
    "MessageIdReused",
    "S3TurnOffload",
    "SessionAgent",
    "SessionInfo",
    "SessionNotFound",
    "SessionStore",
    "StateConflict",
    "StateDocument",
    "Turn",
    "TurnConflict",
    "TurnNotFound",
    "TurnOutcome",
    "TurnTooLarge",
    "Window",
]
