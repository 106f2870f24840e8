"""Session memory: a store interface, its DynamoDB implementation, S3 offload and the turn logic."""

from agentrail.sessions.dynamodb import DynamoDBSessionStore
from agentrail.sessions.offload import S3TurnOffload
from agentrail.sessions.service import SessionAgent, TurnOutcome, principal_of
from agentrail.sessions.store import (
    SESSION_ID_PATTERN,
    SessionInfo,
    SessionNotFound,
    SessionStore,
    StateConflict,
    StateDocument,
    Turn,
    TurnConflict,
    TurnTooLarge,
    Window,
)

__all__ = [
    "SESSION_ID_PATTERN",
    "DynamoDBSessionStore",
    "S3TurnOffload",
    "SessionAgent",
    "SessionInfo",
    "SessionNotFound",
    "SessionStore",
    "StateConflict",
    "StateDocument",
    "Turn",
    "TurnConflict",
    "TurnOutcome",
    "TurnTooLarge",
    "Window",
    "principal_of",
]
