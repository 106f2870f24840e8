"""The stateful agent API: sessions, turns, state and erasure.

``POST /sessions``, ``POST /sessions/{id}/messages``, ``GET /sessions/{id}``, the operator console's reads
(``GET /sessions``, ``GET /sessions/{id}/turns/{number}/timeline``, see :mod:`agentrail_runtime.api.session_console`),
``PUT /sessions/{id}/state``, ``POST /sessions/{id}/feedback``, ``DELETE /sessions/{id}`` and ``POST /erase`` (every
session of a principal, see :mod:`agentrail_runtime.erasure`). A session belongs to
the principal that created it; anyone else gets 404, as for a session that
never existed.

``Idempotency-Key`` on ``POST /sessions/{id}/messages`` names the message: a
retry with the same key returns the committed turn, or continues a turn that
died after a tool with side effects from where it was stored (the tool is not
run again).
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from agentrail_runtime import aws
from agentrail_runtime.agent.loop import AgentStatus
from agentrail_runtime.agent.results import MAX_MESSAGE_CHARS, AgentRunOut, ToolCallOut, UsageOut
from agentrail_runtime.api.erasure import add_erasure_route
from agentrail_runtime.api.errors import (
    AgentResolver,
    ApiError,
    add_operational_routes,
    error_responses,
    resource_links,
)
from agentrail_runtime.api.feedback import FeedbackOut, FeedbackRequest
from agentrail_runtime.api.session_console import TurnOut, add_session_console_routes
from agentrail_runtime.config import RuntimeSettings, load_settings
from agentrail_runtime.erasure import PrincipalEraser, load_erasure_settings
from agentrail_runtime.metering import FeedbackGiven
from agentrail_runtime.sessions.queue import QueuedMessage, send_queued
from agentrail_runtime.sessions.service import SessionAgent
from agentrail_runtime.sessions.settings import SessionSettings, load_session_settings
from agentrail_runtime.sessions.store import (
    SESSION_ID_PATTERN,
    MessageIdReused,
    SessionNotFound,
    StateConflict,
    StateDocument,
    TurnConflict,
    TurnNotFound,
    TurnTooLarge,
)
from agentrail_runtime.shadow import ShadowSampler, ShadowSettings, erasable_comparisons
from agentrail_runtime.streaming import ConnectionStore, ConnectTickets, EventLog, IssuedTicket, StreamSettings

API_TITLE = "agentrail stateful agent"
API_VERSION = "1.0.0"
MAX_STATE_BYTES = 32_768
IDEMPOTENCY_HEADER = "Idempotency-Key"

SessionId = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="32 lowercase hex characters")]


class CreateSessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: dict[str, Any] | None = Field(default=None, description="Initial state document (preferences, ...).")


class SessionCreated(BaseModel):
    session_id: str
    created_at: int
    expires_at: int


class MessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, pattern=r"\S")
    model: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")


class TurnResponse(AgentRunOut):
    session_id: str
    turn: int
    request_id: str


class MessageAccepted(BaseModel):
    session_id: str
    message_id: str
    status: str = "queued"


class SessionFeedbackRequest(FeedbackRequest):
    """A rating of one turn of the session."""

    turn: Annotated[int, Field(ge=1, strict=True)] | None = Field(
        default=None, description="The turn's number, a JSON integer from 1 (2, not 2.0). Default: the last turn"
    )


class SessionFeedbackOut(BaseModel):
    session_id: str
    turn: int
    feedback: FeedbackOut


class SessionOut(BaseModel):
    session_id: str
    created_at: int
    updated_at: int
    expires_at: int
    turns: int
    state: StateDocument
    history: list[TurnOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page of history")


class StateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any]
    expected_version: int = Field(
        ge=0,
        strict=True,
        description="The version you read, as a JSON integer (3, not 3.0: refused with 400); a mismatch is refused with 409.",
    )


def create_sessions_app(
    *,
    sessions: SessionAgent | None = None,
    settings: RuntimeSettings | None = None,
    session_settings: SessionSettings | None = None,
    queue_client: Any = None,
    shadow: ShadowSampler | None = None,
    eraser: PrincipalEraser | None = None,
    stream_settings: StreamSettings | None = None,
) -> AgentResolver:
    """Build the resolver; every dependency can be passed in. ``shadow`` copies a sample of the turns the API takes
    (the ``reject`` policy) to the shadow queue (default: as ``AGENT_SHADOW_*`` says, off without it); ``eraser`` serves
    ``POST /erase`` (default: the sessions' store and budgets, with ``AGENT_ERASE_*``). With a connect-ticket table in
    ``stream_settings`` (default: ``AGENT_STREAM_*``), the stack streams over a WebSocket API: ``POST
    /sessions/{id}/stream-ticket`` issues connect tickets, and erasure deletes the principal's tickets,
    connections and stream events too."""
    settings = settings or load_settings()
    shadow_settings = ShadowSettings()  # read once: the sampler's queue and share, and the table erasure deletes from
    shadow = shadow or ShadowSampler.from_settings(shadow_settings)
    session_settings = session_settings or load_session_settings()
    if sessions is None:
        sessions = SessionAgent.from_settings(session_settings, settings)
    store = sessions.store
    app = AgentResolver(
        max_request_bytes=settings.max_request_bytes,
        iam_identity=settings.iam_identity,
        api=settings.api_kind,
        models=settings.models,
        agent_version=sessions.agents.version,
    )
    clients: dict[str, Any] = {"sqs": queue_client} if queue_client is not None else {}

    def queue() -> Any:
        if "sqs" not in clients:
            clients["sqs"] = aws.client("sqs")
        return clients["sqs"]

    owner = app.principal

    app.answer(SessionNotFound, 404, "session_not_found", "No such session (it may have expired or been deleted).")
    app.answer(
        TurnConflict,
        409,
        "turn_in_progress",
        "Another message of this session was answered first; send yours again.",
        headers={"Retry-After": "1"},
    )
    app.answer(StateConflict, 409, "state_conflict", "The state changed since you read it; read it again and retry.")
    app.answer(TurnNotFound, 404, "turn_not_found", "The session has no such turn (yet).")
    app.answer(FeedbackGiven, 409, "feedback_already_given", "This turn already has feedback; the first feedback stands.")
    app.answer(TurnTooLarge, 413, "turn_too_large", "This turn is too large to store.")
    app.answer(MessageIdReused, 422, "idempotency_key_reused", "This Idempotency-Key was used with another message.")

    @app.post(
        "/sessions",
        summary="Create a session",
        responses={
            201: {
                "description": "Created",
                "links": resource_links(
                    "session_id",
                    {
                        "ReadSession": ("/sessions/{session_id}", "get"),
                        "SendMessage": ("/sessions/{session_id}/messages", "post"),
                        "PutState": ("/sessions/{session_id}/state", "put"),
                        "GiveFeedback": ("/sessions/{session_id}/feedback", "post"),
                        "EraseSession": ("/sessions/{session_id}", "delete"),
                        "ReadTurnTimeline": ("/sessions/{session_id}/turns/{number}/timeline", "get"),
                    },
                ),
            },
            **error_responses("state_too_large"),
        },
    )
    def create(request: Annotated[CreateSessionRequest | None, Body()] = None) -> Response[SessionCreated]:
        state = request.state if request else None
        if state is not None and len(json.dumps(state)) > MAX_STATE_BYTES:
            raise ApiError(413, "state_too_large", f"The state document exceeds {MAX_STATE_BYTES} bytes.")
        info = store.create(owner=owner(), state=state)
        body = SessionCreated(session_id=info.session_id, created_at=info.created_at, expires_at=info.expires_at)
        return Response(status_code=201, content_type="application/json", body=body)

    @app.post(
        "/sessions/<session_id>/messages",
        summary="Send one message (one turn)",
        responses={
            200: {"description": "The turn (reject policy)", "content": {"application/json": {"model": TurnResponse}}},
            202: {"description": "Queued (enqueue policy)", "content": {"application/json": {"model": MessageAccepted}}},
            **error_responses(
                "unknown_model",
                "input_blocked",
                "session_not_found",
                "invalid_idempotency_key",
                "idempotency_key_reused",
                "turn_in_progress",
                "turn_too_large",
                "budget_exceeded",
                "model_error",
                "model_rejected_request",
                "model_unavailable",
                "model_throttled",
            ),
        },
    )
    def message(session_id: SessionId, request: Annotated[MessageRequest, Body()]) -> Response[TurnResponse | MessageAccepted]:
        key = app.current_event.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not (1 <= len(key) <= 128 and key.isprintable()):
            raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 128 printable characters.")
        caller = owner()
        # A message an input guard blocks is refused (400) before the turn; a redacted one is what the turn keeps.
        request = request.model_copy(update={"message": sessions.agents.check_input(request.message)})
        if session_settings.concurrency == "enqueue":
            return _enqueue(session_id, caller, request)
        context = app.lambda_context
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        outcome = sessions.take_turn(
            session_id,
            owner=caller,
            message=request.message,
            model=request.model,
            message_id=key,
            correlation_id=app.current_event.request_context.request_id,
            # A turn this invocation leaves in flight is abandoned once the invocation is over, not before.
            deadline=sessions.now() + remaining() / 1000 if callable(remaining) else None,
            refuse_over_budget=True,
        )
        turn = outcome.turn
        result = outcome.result
        if result is not None:
            request_id = app.current_event.request_context.request_id
            shadow.offer_run(
                request_id,
                result,
                message=request.message,
                model=request.model,
                agent_version=sessions.agents.version,
                session_id=session_id,
                owner=caller,
                turn=turn.number,
            )
            run = AgentRunOut.from_result(result)
        else:  # a retry of a committed message: its turn as stored
            run = AgentRunOut(
                status=AgentStatus(turn.status),
                answer=turn.answer,
                model=turn.model,
                steps=turn.steps,
                usage=UsageOut.of(turn.usage),
                cost_usd=turn.cost_usd,
                tool_calls=[ToolCallOut.of(c) for c in turn.tool_calls],
            )
        body = TurnResponse(
            session_id=session_id,
            turn=outcome.turn.number,
            request_id=app.current_event.request_context.request_id,
            **run.model_dump(),
        )
        return Response(status_code=200, content_type="application/json", body=body)

    def _enqueue(session_id: str, caller: str, request: MessageRequest) -> Response[TurnResponse | MessageAccepted]:
        store.get_session(session_id, owner=caller)
        sessions.agents.model(request.model)  # an unknown model is refused now, not in the worker
        message_id = uuid.uuid4().hex
        queued = QueuedMessage(
            session_id=session_id,
            owner=caller,
            message=request.message,
            model=request.model,
            message_id=message_id,
            correlation_id=app.current_event.request_context.request_id,
        )
        send_queued(queue(), str(session_settings.queue_url), queued, fifo=True)
        body = MessageAccepted(session_id=session_id, message_id=message_id)
        return Response(status_code=202, content_type="application/json", body=body)

    @app.get(
        "/sessions/<session_id>",
        summary="History and state of a session",
        responses={200: {"description": "Success"}, **error_responses("invalid_cursor", "session_not_found")},
    )
    def read(
        session_id: SessionId,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> SessionOut:
        try:
            page = store.read_page(session_id, owner=owner(), limit=limit, cursor=cursor)
        except ValueError:
            raise ApiError(400, "invalid_cursor", "The cursor is not one this API issued.") from None
        info = page.session
        return SessionOut(
            session_id=info.session_id,
            created_at=info.created_at,
            updated_at=info.updated_at,
            expires_at=info.expires_at,
            turns=info.turns,
            state=page.state,
            history=[TurnOut.of(t) for t in page.turns],
            next_cursor=page.next_cursor,
        )

    @app.put(
        "/sessions/<session_id>/state",
        summary="Replace the state document (optimistic locking)",
        responses={
            200: {"description": "The new state document"},
            **error_responses("session_not_found", "state_conflict", "state_too_large"),
        },
    )
    def put_state(session_id: SessionId, request: Annotated[StateUpdate, Body()]) -> StateDocument:
        if len(json.dumps(request.data)) > MAX_STATE_BYTES:
            raise ApiError(413, "state_too_large", f"The state document exceeds {MAX_STATE_BYTES} bytes.")
        return store.update_state(session_id, owner=owner(), data=request.data, expected_version=request.expected_version)

    @app.post(
        "/sessions/<session_id>/feedback",
        summary="Rate a turn (default: the last): a 1-5 score or thumbs up/down, once",
        responses={
            201: {"description": "Stored", "content": {"application/json": {"model": SessionFeedbackOut}}},
            **error_responses("session_not_found", "turn_not_found", "feedback_already_given"),
        },
    )
    def feedback(session_id: SessionId, request: Annotated[SessionFeedbackRequest, Body()]) -> Response[SessionFeedbackOut]:
        given = request.feedback(given_at=int(sessions.now()))
        turn = store.give_feedback(session_id, owner=owner(), turn=request.turn, feedback=given)
        sessions.agents.emit_feedback(given)
        body = SessionFeedbackOut(session_id=session_id, turn=turn, feedback=FeedbackOut.model_validate(given.model_dump()))
        return Response(status_code=201, content_type="application/json", body=body)

    @app.delete(
        "/sessions/<session_id>",
        summary="Erase a session and its history now",
        responses={204: {"description": "Erased"}, **error_responses("session_not_found")},
    )
    def delete(session_id: SessionId) -> Response[None]:
        store.delete(session_id, owner=owner())
        return Response(status_code=204, body=None)

    stream_settings = stream_settings or StreamSettings()
    tickets = ConnectTickets.from_settings(stream_settings) if stream_settings.ticket_table else None
    if tickets is not None:

        @app.post(
            "/sessions/<session_id>/stream-ticket",
            summary="A connect ticket for the streaming WebSocket API: single use, valid for a minute",
            responses={
                201: {"description": "Issued", "content": {"application/json": {"model": IssuedTicket}}},
                **error_responses("session_not_found"),
            },
        )
        def stream_ticket(session_id: SessionId) -> Response[IssuedTicket]:
            caller = owner()
            store.get_session(session_id, owner=caller)
            issued = tickets.issue(caller, session_id=session_id)
            return Response(status_code=201, content_type="application/json", body=issued, headers={"Cache-Control": "no-store"})

    eraser = eraser or PrincipalEraser(
        sessions=store,
        connect_tickets=tickets,
        connections=ConnectionStore.from_settings(stream_settings) if stream_settings.connection_table else None,
        stream_events=EventLog.from_settings(stream_settings) if stream_settings.event_table else None,
        budgets=sessions.agents.budgets,
        shadow=erasable_comparisons(shadow_settings),
        settings=load_erasure_settings(),
    )
    add_erasure_route(app, eraser, app.principal)
    add_session_console_routes(app, store, owner)
    add_operational_routes(app, checks=lambda: sessions.agents.health_checks, title=API_TITLE, version=API_VERSION)
    return app


__all__ = ["create_sessions_app"]
