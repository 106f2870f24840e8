"""The operator console's reads on the stateful agent's API: ``GET /sessions`` (the caller's sessions, most recently
updated first) and ``GET /sessions/{id}/turns/{number}/timeline`` (one turn's model steps and tool calls). A session
belongs to the principal that created it: anyone else gets 404, as for a session that never existed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, Field

from agentrail_runtime.agent.loop import AgentCheckpoint
from agentrail_runtime.agent.results import UsageOut
from agentrail_runtime.agent.timeline import MAX_TEXT_CHARS, TimelineEvent, cut, transcript_events
from agentrail_runtime.api.errors import AgentResolver, error_responses
from agentrail_runtime.api.feedback import FeedbackOut
from agentrail_runtime.redaction import redact
from agentrail_runtime.sessions.store import SESSION_ID_PATTERN, SessionStore, Turn

#: The largest ``limit`` of ``GET /sessions`` (the store reads at most its own ``MAX_LISTED_SESSIONS`` keys).
MAX_SESSIONS_LIMIT = 200


class TurnOut(BaseModel):
    number: int
    created_at: int
    message_id: str | None
    message: str
    answer: str | None
    status: str
    model: str
    usage: UsageOut
    cost_usd: float | None
    feedback: FeedbackOut | None = Field(default=None, description="The owner's rating of this turn, once given")

    @classmethod
    def of(cls, turn: Turn) -> TurnOut:
        return cls(
            number=turn.number,
            created_at=turn.created_at,
            message_id=turn.message_id,
            message=turn.user_text,
            answer=turn.answer,
            status=turn.status,
            model=turn.model,
            usage=UsageOut.of(turn.usage),
            cost_usd=turn.cost_usd,
            feedback=FeedbackOut.of(turn.feedback),
        )


class SessionSummary(BaseModel):
    session_id: str
    created_at: int
    updated_at: int
    expires_at: int
    turns: int


class SessionList(BaseModel):
    sessions: list[SessionSummary]


class TurnTimeline(BaseModel):
    session_id: str
    turn: TurnOut
    events: list[TimelineEvent]


def add_session_console_routes(app: AgentResolver, store: SessionStore, owner: Callable[[], str]) -> None:
    """Register the console's session reads on ``app``."""

    @app.get("/sessions", summary="Your live sessions, most recently updated first", responses={200: {"description": "Success"}})
    def list_sessions(limit: Annotated[int, Query(ge=1, le=MAX_SESSIONS_LIMIT)] = 50) -> SessionList:
        found = store.recent_sessions(owner(), limit=limit)
        return SessionList(sessions=[SessionSummary(**info.model_dump(exclude={"owner"})) for info in found])

    @app.get(
        "/sessions/<session_id>/turns/<number>/timeline",
        summary="One turn's model steps and tool calls (the session's owner only)",
        responses={200: {"description": "Success"}, **error_responses("session_not_found", "turn_not_found")},
    )
    def turn_timeline(
        session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="32 lowercase hex characters")],
        number: Annotated[int, Path(ge=1, description="The turn's number, from 1")],
    ) -> TurnTimeline:
        turn = store.read_turn(session_id, owner=owner(), number=number)
        ran = AgentCheckpoint(messages=turn.messages, steps=turn.steps, usage=turn.usage, tool_calls=turn.tool_calls)
        events = [TimelineEvent(at=turn.created_at, kind="submitted", title=cut(redact(turn.user_text), MAX_TEXT_CHARS))]
        events.extend(transcript_events(ran, agent=None))
        events.append(
            TimelineEvent(
                kind="finished",
                title=f"Finished: {turn.status}",
                status=turn.status,
                result=cut(redact(turn.answer), MAX_TEXT_CHARS) if turn.answer else None,
            )
        )
        # Redacted as the events are: what the console shows of a run is what its logs would show.
        shown = TurnOut.of(turn).model_copy(
            update={"message": redact(turn.user_text), "answer": redact(turn.answer) if turn.answer else None}
        )
        return TurnTimeline(session_id=session_id, turn=shown, events=events)


__all__ = ["SessionList", "SessionSummary", "TurnOut", "TurnTimeline", "add_session_console_routes"]
