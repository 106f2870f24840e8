"""Taking a turn: read the window, run the agent, commit atomically; conflicts refused or retried by policy."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.loop import AgentCheckpoint, AgentResult, AgentStatus
from agentrail_runtime.budgets import BudgetExceeded
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.models.base import Message, ToolResultBlock
from agentrail_runtime.models.tokens import count_tokens
from agentrail_runtime.observability import logger
from agentrail_runtime.redaction import redact
from agentrail_runtime.redaction.models import RedactedMessages, redacted_model
from agentrail_runtime.service import AgentService
from agentrail_runtime.sessions.dynamodb import DynamoDBSessionStore
from agentrail_runtime.sessions.settings import SessionSettings
from agentrail_runtime.sessions.store import (
    InFlightTurn,
    MessageIdReused,
    SessionInfo,
    SessionNotFound,
    SessionStore,
    Turn,
    TurnConflict,
    Window,
)

if TYPE_CHECKING:
    from agentrail_runtime.agent.events import EventSink, FinalEvent


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
    store_redacted:
        Store turns (and a turn in flight) with personal and secret data redacted (``[REDACTED:<kind>]``): the
        turn's own run sees the message as written, later turns see the redacted history. Default: ``False``.
    """

    def __init__(
        self,
        *,
        store: SessionStore,
        agents: AgentService,
        history_detail: Literal["compact", "full"] = "compact",
        store_redacted: bool = False,
        clock: Clock = now,
    ) -> None:
        self.store = store
        self.agents = agents
        self.history_detail = history_detail
        self.store_redacted = store_redacted
        self._clock = clock

    @classmethod
    def from_settings(cls, session_settings: SessionSettings, settings: RuntimeSettings) -> SessionAgent:
        """The DynamoDB-backed session agent a handler serves, as its environment describes it."""
        store = DynamoDBSessionStore.from_settings(session_settings)
        return cls(
            store=store,
            agents=AgentService.from_settings(settings),
            history_detail=session_settings.history_detail,
            store_redacted=settings.store_redacted,
        )

    def now(self) -> float:
        return self._clock()

    def stored_text(self, text: str) -> str:
        """``text`` as the store keeps it (redacted with ``store_redacted``)."""
        return redact(text) if self.store_redacted else text

    def stored_turn(self, turn: Turn) -> Turn:
        """``turn`` as the store keeps it (redacted with ``store_redacted``)."""
        return redacted_model(turn) if self.store_redacted else turn

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
        exclusive: bool = False,
        deadline: float | None = None,
        refuse_over_budget: bool = False,
        on_event: EventSink | None = None,
    ) -> TurnOutcome:
        """Run one turn and commit it.

        With ``conflict_retries`` > 0 a conflicting commit is re-read and re-run
        (the ``enqueue`` policy); with 0 it raises at once (``reject``).

        ``message_id`` identifies the message across retries and redeliveries: a message whose turn was
        committed is not run again (the committed turn is returned, ``replayed``), and a turn that reached a
        tool with side effects is stored before that tool runs and after it (the session's in-flight slot), so
        a retry continues it from there: a call with side effects runs at most once, and one that started and
        recorded no outcome ends ``outcome_unknown``. Without ``message_id`` nothing can continue the turn, so
        nothing is stored before the commit.

        The slot holds one message at a time. An uncommitted turn of another message whose invocation is over
        (``exclusive``: the caller is the session's only writer, as the FIFO worker is; or past the slot's
        lease, ``deadline`` of the invocation that wrote it) is committed first as it stood (``interrupted``),
        so its tool calls stay in the history and a late retry of it is a replay; one that may still be
        running raises :class:`TurnConflict`.

        The turn runs under the daily budgets of ``owner`` and the agent: with ``refuse_over_budget`` (the API's
        reject policy), a turn whose first model call a budget refuses raises :class:`BudgetExceeded` and nothing is
        committed; otherwise (and once a call was made) the turn is committed as ``budget_exceeded``.

        ``on_event`` streams the turn (see :meth:`Agent.advance`), with one difference: its ``final`` event is sent
        only once the turn is committed, so ``final`` always means "stored". A replayed turn sends only a ``final``
        (the committed answer, ``replaced``). A turn re-run after a conflict (``conflict_retries``) streams again
        from its first event; nothing is sent when the turn raises.

        Raises
        ------
        SessionNotFound, TurnConflict, TurnTooLarge, ModelError, BudgetExceeded
        MessageIdReused
            When ``message_id`` names another message of this session (committed, or in flight).
        """
        if on_event is not None:
            # Deferred: streaming is optional, and its event models cost a cold start milliseconds that a turn
            # without a sink never needs.
            from agentrail_runtime.agent import events as streaming
        attempt = 0
        while True:
            window = self.store.load_window(session_id, owner=owner)
            # A redelivered batch repeats messages whose turns are no longer the last one.
            done = next((t for t in [*window.older, *window.turns] if message_id and t.message_id == message_id), None)
            if done is not None:
                if done.user_text != self.stored_text(message):
                    raise MessageIdReused
                if on_event is not None:
                    streaming.deliver(on_event, _final_of(done, streaming.FinalEvent))
                return TurnOutcome(session=window.session, turn=done, replayed=True)
            slot = window.in_flight
            if slot is not None and slot.message_id != message_id:
                if not exclusive and slot.lease_until > self._clock():
                    raise TurnConflict
                try:
                    self._settle(window, slot)
                except TurnConflict:
                    attempt += 1  # another writer settled it or committed first: read again
                    if attempt > conflict_retries:
                        raise
                continue
            resumed = AgentCheckpoint.model_validate_json(slot.checkpoint) if slot is not None else None
            if resumed is not None and _is_reservation(resumed):
                # A reservation (:meth:`reserve`, before the worker's input guards): nothing ran, so the run starts
                # from the message as the worker has it, not from the slot's (possibly redacted) copy.
                resumed = None
            if resumed is not None and resumed.messages and resumed.messages[0].text != self.stored_text(message):
                raise MessageIdReused
            history = window.history(self.history_detail)
            if resumed is None:
                checkpoint = AgentCheckpoint(
                    messages=[*history, Message.user(message)], history_length=len(history), state=dict(window.state.data)
                )
            else:
                checkpoint = resumed.model_copy(
                    update={"messages": [*history, *resumed.messages], "history_length": len(history)}
                )
            context = ToolContext(
                session_id=session_id, principal=owner, correlation_id=correlation_id, state=dict(checkpoint.state)
            )
            sink = _InFlightSink(self, window, message_id, held=slot is not None, deadline=deadline) if message_id else None
            events = streaming.FinalAfterRelease(on_event) if on_event is not None else None
            try:
                result = self.agents.advance(
                    checkpoint,
                    model=model,
                    context=context,
                    on_checkpoint=sink,
                    checkpoint_every_call=False,
                    tenant=owner,
                    on_event=events,
                )
                if refuse_over_budget and result.budget is not None and result.budget.calls_before == 0 and resumed is None:
                    raise BudgetExceeded(result.budget)
                turn = self._turn(window, result, message_id)
                release = message_id if sink is not None and sink.held else None
                changed = context.state != window.state.data
                stored = self.stored_turn(turn)
                session = self.store.commit_turn(window, stored, state=context.state if changed else None, release=release)
            except TurnConflict:
                attempt += 1
                logger.warning("turn conflict", extra={"event": "turn_conflict", "attempt": attempt, "session_id": session_id})
                if attempt > conflict_retries:
                    raise
                continue
            if events is not None:
                events.release()
            return TurnOutcome(session=session, turn=turn, result=result)

    def reserved_for_another_text(self, session_id: str, *, owner: str, message_id: str, message: str) -> bool:
        """Whether the slot is ``message_id``'s reservation (nothing of it ran) of a text other than ``message`` (as
        written, before the input guards): a redelivery can then never answer one text under another's id."""
        reserved = self._reservation(session_id, owner, message_id)
        return reserved is not None and bool(reserved.messages) and reserved.messages[0].text != self.stored_text(message)

    def cancel_reservation(self, session_id: str, *, owner: str, message_id: str) -> bool:
        """Free the slot ``message_id`` reserved when its turn failed before anything of it ran (no step, no tool
        call); a slot with progress stays, and is settled as ``interrupted`` once its lease is over."""
        if self._reservation(session_id, owner, message_id) is None:
            return False
        return self.store.release_in_flight(session_id, message_id)

    def _reservation(self, session_id: str, owner: str, message_id: str) -> AgentCheckpoint | None:
        """The checkpoint in the session's slot when it is ``message_id``'s reservation, with nothing of it run."""
        try:
            slot = self.store.load_window(session_id, owner=owner).in_flight
        except SessionNotFound:
            return None
        if slot is None or slot.message_id != message_id:
            return None
        stood = AgentCheckpoint.model_validate_json(slot.checkpoint)
        return stood if _is_reservation(stood) else None

    def _settle(self, window: Window, slot: InFlightTurn) -> None:
        """Commit another message's abandoned turn as it stood (``interrupted``), emptying the slot."""
        stood = AgentCheckpoint.model_validate_json(slot.checkpoint)
        messages = list(stood.messages)
        last = messages[-1] if messages else None
        if last is not None and last.role == "assistant" and last.tool_uses:
            recorded = {r.tool_use_id: r for r in (stood.turn.results if stood.turn else [])}
            unknown = {"error": "interrupted: this call's outcome was never recorded, and it was not run again"}
            results = [
                recorded.get(use.id) or ToolResultBlock(tool_use_id=use.id, content=unknown, status="error")
                for use in last.tool_uses
            ]
            messages.append(Message(role="user", content=list(results)))
        note = "[This turn was interrupted before it finished; the tool calls above were made.]"
        messages.append(Message.assistant(note))
        model = self.agents.model().name
        turn = Turn(
            number=window.session.turns + 1,
            created_at=int(self._clock()),
            message_id=slot.message_id,
            messages=messages,
            answer=None,
            status=AgentStatus.INTERRUPTED.value,
            model=model,
            usage=stood.usage,
            cost_usd=self.agents.prices.cost(model, stood.usage),
            tokens=count_tokens(json.dumps([m.model_dump(mode="json") for m in messages])),
            steps=stood.steps,
            tool_calls=[c.model_copy(update={"latency_ms": 0.0}) for c in stood.tool_calls],
            agent_version=self.agents.version,
        )
        logger.warning(
            "abandoned turn committed as interrupted",
            extra={"event": "turn_interrupted", "session_id": window.session.session_id, "turn": turn.number},
        )
        changed = stood.state != window.state.data
        self.store.commit_turn(window, self.stored_turn(turn), state=stood.state if changed else None, release=slot.message_id)

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
            steps=result.steps,
            # Latencies stay in the logs and metrics: the history keeps what a replay answers with.
            tool_calls=[c.model_copy(update={"latency_ms": 0.0}) for c in result.tool_calls],
            agent_version=self.agents.version,
        )


def _final_of(turn: Turn, event: type[FinalEvent]) -> FinalEvent:
    """The ``final`` event of a committed turn (a replay streamed none of its tokens: ``replaced`` when it answered)."""
    return event(
        status=turn.status,
        answer=turn.answer,
        model=turn.model,
        steps=turn.steps,
        usage=turn.usage,
        cost_usd=turn.cost_usd,
        replaced=bool(turn.answer),
    )


def _is_reservation(checkpoint: AgentCheckpoint) -> bool:
    """A slot :func:`reserve_turn` wrote, that no run took further (no model call, no tool call)."""
    return checkpoint.steps == 0 and not checkpoint.tool_calls


def reserve_turn(
    store: SessionStore,
    session_id: str,
    *,
    owner: str,
    message: str,
    message_id: str,
    lease_seconds: float,
    store_redacted: bool = False,
    clock: Clock = now,
) -> Literal["reserved", "held", "abandoned"]:
    """Claim the session's in-flight slot for ``message_id`` before its turn runs elsewhere (a WebSocket message
    queued for a worker), so the session's ``reject`` policy holds from the moment the message is accepted: the
    worker's :meth:`SessionAgent.take_turn` of the same ``message_id`` starts from the reservation. A slot nobody
    works on is free again ``lease_seconds`` later.

    Returns
    -------
    str
        ``reserved`` (claimed now: the caller releases it if it cannot queue the message); ``held`` (this same
        message holds the slot already, or was answered); ``abandoned`` (another message's turn holds the slot past
        its lease: nothing is reserved, and the worker's :meth:`SessionAgent.take_turn` settles that turn first).

    Raises
    ------
    SessionNotFound
        The session is not ``owner``'s (or expired).
    TurnConflict
        The slot holds another message's turn that may still be running.
    MessageIdReused
        ``message_id`` names another text (in the slot, or answered).
    TurnTooLarge
        The session's state is too large to reserve with it.
    """
    window = store.load_window(session_id, owner=owner)
    text = redact(message) if store_redacted else message
    slot = window.in_flight
    if slot is not None and slot.message_id != message_id:
        if slot.lease_until > clock():
            raise TurnConflict
        return "abandoned"
    if slot is not None:
        held = AgentCheckpoint.model_validate_json(slot.checkpoint).messages
        if held and held[0].text != text:
            raise MessageIdReused
        return "held"
    answered = next((t for t in [*window.older, *window.turns] if t.message_id == message_id), None)
    if answered is not None:
        if answered.user_text != text:
            raise MessageIdReused
        return "held"
    moment = clock()
    checkpoint = AgentCheckpoint(messages=[Message.user(text)], state=dict(window.state.data))
    reservation = InFlightTurn(
        message_id=message_id,
        checkpoint=checkpoint.model_dump_json(),
        updated_at=int(moment),
        lease_until=int(moment + lease_seconds) + 1,
    )
    store.save_in_flight(window, reservation, claim=True)
    return "reserved"


#: No Lambda invocation outlives this: the lease of a turn whose writer gave no deadline.
MAX_INVOCATION_SECONDS = 900


class _InFlightSink:
    """The agent's checkpoint sink for one turn: stores the turn's own messages and progress in the session's slot."""

    def __init__(self, sessions: SessionAgent, window: Window, message_id: str, *, held: bool, deadline: float | None) -> None:
        self.sessions = sessions
        self.window = window
        self.message_id = message_id
        self.held = held
        self.deadline = deadline
        self.messages = RedactedMessages()

    def __call__(self, checkpoint: AgentCheckpoint) -> None:
        own = checkpoint.model_copy(update={"messages": checkpoint.messages[checkpoint.history_length :], "history_length": 0})
        now = self.sessions._clock()
        lease_until = self.deadline if self.deadline is not None else now + MAX_INVOCATION_SECONDS
        stored = self.messages.json_of(own) if self.sessions.store_redacted else own.model_dump_json()
        slot = InFlightTurn(
            message_id=self.message_id,
            checkpoint=stored,
            updated_at=int(now),
            lease_until=int(lease_until) + 1,
        )
        self.sessions.store.save_in_flight(self.window, slot, claim=not self.held)
        self.held = True
