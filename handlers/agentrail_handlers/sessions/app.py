"""Stateful agent: API Gateway REST to sessions and turns stored in DynamoDB; the shadow worker's direct invocations
(through the ``shadow`` alias) replay a sampled turn on this version, dry-run, reading the session and never writing it."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.api.sessions import create_sessions_app
from agentrail_runtime.config import load_settings
from agentrail_runtime.observability import observed
from agentrail_runtime.sessions.service import SessionAgent
from agentrail_runtime.sessions.settings import load_session_settings
from agentrail_runtime.shadow import is_shadow_event
from agentrail_runtime.shadow.candidate import ShadowCandidate

settings, session_settings = load_settings(), load_session_settings()
sessions = SessionAgent.from_settings(session_settings, settings)
app = create_sessions_app(sessions=sessions, settings=settings, session_settings=session_settings)
candidate = ShadowCandidate(sessions.agents, sessions=sessions.store, history_detail=session_settings.history_detail)


@observed(correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    if is_shadow_event(event):
        return candidate(event)
    return app.resolve(event, context)
