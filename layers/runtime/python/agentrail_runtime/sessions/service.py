"""Taking a turn: read the window, run the agent, commit atomically; conflicts refused or retried by policy."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.loop import AgentResult
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.models.tokens import count_tokens
from agentrail_runtime.observability import logger
from agentrail_runtime.service import AgentService
from agentrail_runtime.sessions.dynamodb import DynamoDBSessionStore
from agentrail_runtime.sessions.settings import SessionSettings
from agentrail_runtime.sessions.store import SessionInfo, SessionStore, Turn, TurnConflict, Window


class TurnOutcome(BaseModel):
    session: SessionInfo
    turn: Turn
    result: AgentResult | None = None
    replayed: bool = False


class SessionAgent:
    """An agent that remembers: any instance can serve any session.

    Parameters
    ----------
    store:
        Where sessions live.
    agents:
        Runs the agent and meters it.
    history_detail:
        ``compact`` sends earlier turns as question and answer; ``full`` also sends tool calls.
    """

    def __init__(
        self,
        *,
        store: SessionStore,
        agents: AgentService,
        history_detail: Literal["compact", "full"] = "compact",
        clock: Clock = now,
    ) -> None:
        self.store = store
        self.agents = agents
        self.history_detail = history_detail
        self._clock = clock

    @classmethod
    def from_settings(cls, session_settings: SessionSettings, settings: RuntimeSettings) -> SessionAgent:
        """The DynamoDB-backed session agent a handler serves, as its environment describes it."""
        store = DynamoDBSessionStore.from_settings(session_settings)
        return cls(store=store, agents=AgentService.from_settings(settings), history_detail=session_settings.history_detail)

    def take_turn(
        self,
        session_id: str,
        *,
        owner: str,
        message: str,
        model: str | None = None,
        message_id: str | None = None,
        conflict_retries: int = 0,
        correlation_id: str | None = None,
    ) -> TurnOutcome:
        """Run one turn and commit it.

        With ``conflict_retries`` > 0 a conflicting commit is re-read and re-run
        (the ``enqueue`` policy); with 0 it raises at once (``reject``).
        ``message_id`` makes a redelivered queued message a no-op.

        Raises
        ------
        SessionNotFound, TurnConflict, TurnTooLarge, ModelError
        """
        attempt = 0
        while True:
            window = self.store.load_window(session_id, owner=owner)
            # A redelivered batch repeats messages whose turns are no longer the last one.
            done = next((t for t in [*window.older, *window.turns] if message_id and t.message_id == message_id), None)
            if done is not None:
                return TurnOutcome(session=window.session, turn=done, replayed=True)
            context = ToolContext(
                session_id=session_id, principal=owner, correlation_id=correlation_id, state=dict(window.state.data)
            )
            result = self.agents.run(message, model=model, history=window.history(self.history_detail), context=context)
            turn = self._turn(window, result, message_id)
            try:
                session = self.store.commit_turn(window, turn, state=context.state if context.state_changed else None)
            except TurnConflict:
                attempt += 1
                logger.warning("turn conflict", extra={"event": "turn_conflict", "attempt": attempt, "session_id": session_id})
                if attempt > conflict_retries:
                    raise
                continue
            return TurnOutcome(session=session, turn=turn, result=result)

    def _turn(self, window: Window, result: AgentResult, message_id: str | None) -> Turn:
        compact = json.dumps([m.model_dump(mode="json") for m in result.new_messages[:1]]) + (result.answer or "")
        return Turn(
            number=window.session.turns + 1,
            created_at=int(self._clock()),
            message_id=message_id,
            messages=result.new_messages,
            answer=result.answer,
            status=result.status.value,
            model=result.model,
            usage=result.usage,
            cost_usd=result.cost_usd,
            tokens=count_tokens(compact),
        )
