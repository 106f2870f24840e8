"""The worker side of a WebSocket message against moto: a real :class:`SessionAgent` takes the turn, its events are
numbered in the session's event log and posted to the session's connections, ``final`` only once the turn is stored."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from agentrail_runtime.agent import AgentDefinition
from agentrail_runtime.agent.events import TOKEN_BATCH_DELTAS
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.guardrails.deny import DenyListGuard
from agentrail_runtime.models.base import Message, ModelError, ModelProvider, ModelResponse, TextSink, ToolSpec
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.service import AgentService
from agentrail_runtime.sessions import SessionAgent
from agentrail_runtime.sessions.queue import QueuedMessage
from agentrail_runtime.sessions.service import reserve_turn
from agentrail_runtime.sessions.store import TurnConflict
from agentrail_runtime.streams.turns import StreamedTurns, process_session_message, process_streamed_message
from tests.integration.planted_pii import DEFINITION as REFUNDS
from tests.integration.planted_pii import EMAIL, MARKERS, MESSAGE, PlantedModel, planted_in
from tests.integration.streams.conftest import ALICE, EVENTS, LEASE_SECONDS
from tests.streaming_models import HAND_OFF_TIMEOUT, HeldStreamModel, ScriptedStreamingModel, answer

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

PROMPT = "What is (12 + 30) * 2?"
#: An agent without tools or guards: the model's text streams as it comes.
PLAIN = AgentDefinition(name="plain", system_prompt="You answer.", tools=[])


class FailingModel(ModelProvider):
    """A model whose every call fails, as a provider does after its retries."""

    name = "local"

    def converse(self, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int) -> ModelResponse:
        raise ModelError("the provider failed", model=self.name)

    def stream(
        self, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int, on_text: TextSink
    ) -> ModelResponse:
        raise ModelError("the provider failed", model=self.name)

    def check(self) -> None:
        return None


class RacedModel(ScriptedStreamingModel):
    """Answers as scripted; during its first call another writer commits a turn to the same session, so the
    turn being run conflicts when it commits (a real conditional write that fails on moto)."""

    def __init__(self, rival: SessionAgent, session_id: str, *script: ModelResponse) -> None:
        super().__init__(*script)
        self.rival = rival
        self.session_id = session_id
        self.raced = False

    def stream(self, **request: Any) -> ModelResponse:
        if not self.raced:
            self.raced = True
            self.rival.take_turn(self.session_id, owner=ALICE, message="Calculate 1 + 1")
        return super().stream(**request)


@pytest.fixture
def session_agent(agent_env, agents_with, store, clock):
    """``session_agent(model=None, definition=..., store_redacted=False)``: a real SessionAgent over the moto store,
    with the local model unless ``model`` is given."""

    def build(
        model: ModelProvider | None = None, *, definition: Any = demo_definition, store_redacted: bool = False
    ) -> SessionAgent:
        if model is None:
            agents = AgentService(definition=definition, settings=RuntimeSettings())
        else:
            agents = agents_with(model, definition=definition)
        return SessionAgent(store=store, agents=agents, store_redacted=store_redacted, clock=clock)

    return build


@pytest.fixture
def alices_session(store, connections):
    """Alice's session, followed by her connection ``conn-1``."""
    session = store.create(owner=ALICE)
    connections.put("conn-1", ALICE, session_id=session.session_id)
    return session.session_id


def message(session_id: str, text: str = PROMPT, message_id: str = "m-1") -> QueuedMessage:
    return QueuedMessage(
        session_id=session_id, owner=ALICE, message=text, message_id=message_id, correlation_id=f"corr-{message_id}", stream=True
    )


def logged(log, session_id: str, after: int = 0) -> list[tuple[int, dict[str, Any]]]:
    return [(event.event_id, event.event) for event in log.after(session_id, after)]


def test_a_streamed_turn_numbers_its_events_in_the_log_in_order_and_posts_them_to_the_sessions_connection(
    session_agent, log, publisher, stage, store, alices_session
):
    # given: the demo agent on the local model, and Alice's session with her connection
    turns = StreamedTurns(session_agent(), log, publisher)
    # when: a worker takes the queued message's turn
    stream = turns.run(message(alices_session), exclusive=False)
    # then: the log holds the run's events, numbered one by one, each tagged with the message
    events = logged(log, alices_session)
    assert [event["type"] for _, event in events] == [
        "step_started",
        "tool_call",
        "tool_result",
        "step_started",
        "token",
        "final",
    ]
    ids = [event_id for event_id, _ in events]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert stream.event_ids == ids
    assert {event["message_id"] for _, event in events} == {"m-1"}
    assert events[1][1]["name"] == events[2][1]["name"] == "calculator"
    assert events[-1][1]["answer"] == "calculator returned 84."
    # and the connection got the same events, with their numbers, in the same order
    assert stage.posts_to("conn-1") == [{"event_id": event_id, **event} for event_id, event in events]
    # and the turn is stored
    (turn,) = store.load_window(alices_session, owner=ALICE).turns
    assert (turn.message_id, turn.answer) == ("m-1", "calculator returned 84.")


def test_the_final_event_goes_out_only_once_the_turn_is_committed(session_agent, log, publisher, stage, store, alices_session):
    # given: a model that streams a batch of tokens and then holds its call open, and a stage that reads the
    # session's stored turns at every post
    model = HeldStreamModel(" ".join(f"word{i}" for i in range(30)), first=TOKEN_BATCH_DELTAS)
    seen: list[tuple[str, int]] = []
    token_posted = threading.Event()

    def on_post(_: str, event: dict[str, Any]) -> None:
        seen.append((event["type"], len(store.load_window(alices_session, owner=ALICE).turns)))
        if event["type"] == "token":
            token_posted.set()

    stage.on_post = on_post
    turns = StreamedTurns(session_agent(model, definition=PLAIN), log, publisher)
    # when: the worker runs the turn, and the model finishes only once a token went out
    runner = threading.Thread(target=turns.run, args=(message(alices_session),), kwargs={"exclusive": False})
    runner.start()
    assert token_posted.wait(HAND_OFF_TIMEOUT)
    model.barrier.wait()
    runner.join(HAND_OFF_TIMEOUT)
    # then: the events before final went out while nothing was stored; final, last, after the commit
    assert seen[:2] == [("step_started", 0), ("token", 0)]
    assert seen[-1] == ("final", 1)
    assert [kind for kind, _ in seen].count("final") == 1
    (turn,) = store.load_window(alices_session, owner=ALICE).turns
    assert turn.answer == model.text


def test_a_message_redelivered_after_its_commit_streams_only_a_replaced_final_and_commits_nothing_new(
    session_agent, log, publisher, stage, store, alices_session
):
    # given: the message's turn streamed and committed
    turns = StreamedTurns(session_agent(), log, publisher)
    turns.run(message(alices_session), exclusive=False)
    last = logged(log, alices_session)[-1][0]
    posted = len(stage.posts_to("conn-1"))
    # when: SQS delivers the same message again
    again = turns.run(message(alices_session), exclusive=False)
    # then: only a final, replaced by the stored answer, numbered after the first run's events
    replay = logged(log, alices_session, last)
    assert [event_id for event_id, _ in replay] == again.event_ids == [last + 1]
    final = replay[0][1]
    assert (final["type"], final["replaced"], final["answer"], final["message_id"]) == (
        "final",
        True,
        "calculator returned 84.",
        "m-1",
    )
    assert stage.posts_to("conn-1")[posted:] == [{"event_id": last + 1, **final}]
    # and the session still holds the one turn
    assert [t.message_id for t in store.load_window(alices_session, owner=ALICE).turns] == ["m-1"]


def test_a_turn_whose_model_fails_ends_with_a_model_error_event_and_frees_its_reservation(
    session_agent, log, publisher, stage, store, clock, alices_session
):
    # given: the message reserved its session's slot when the socket accepted it, and the model fails
    assert (
        reserve_turn(
            store, alices_session, owner=ALICE, message=PROMPT, message_id="m-1", lease_seconds=LEASE_SECONDS, clock=clock
        )
        == "reserved"
    )
    turns = StreamedTurns(session_agent(FailingModel()), log, publisher)
    # when
    stream = turns.run(message(alices_session), exclusive=False)
    # then: the stream ends with the error, for the message; nothing stored; the slot is free for the next message
    events = logged(log, alices_session)
    assert events[-1][1] == {
        "type": "error",
        "code": "model_error",
        "message": events[-1][1]["message"],
        "session_id": alices_session,
        "message_id": "m-1",
    }
    assert stream.event_ids[-1] == events[-1][0]
    assert stage.posts_to("conn-1")[-1]["code"] == "model_error"
    window = store.load_window(alices_session, owner=ALICE)
    assert (window.turns, window.in_flight) == ([], None)
    assert (
        reserve_turn(store, alices_session, owner=ALICE, message="again", message_id="m-2", lease_seconds=60, clock=clock)
        == "reserved"
    )


def test_a_conflict_under_reject_ends_the_stream_with_turn_in_progress_and_leaves_the_other_messages_slot(
    session_agent, log, publisher, stage, store, clock, alices_session
):
    # given: another message's turn holds the slot, within its lease
    assert (
        reserve_turn(
            store, alices_session, owner=ALICE, message="first", message_id="m-0", lease_seconds=LEASE_SECONDS, clock=clock
        )
        == "reserved"
    )
    turns = StreamedTurns(session_agent(), log, publisher)
    # when: a second message's turn is taken (not exclusive: the reject policy's worker)
    turns.run(message(alices_session), exclusive=False)
    # then: its stream is one error; the first message keeps its slot
    events = logged(log, alices_session)
    assert [(e["type"], e.get("code"), e["message_id"]) for _, e in events] == [("error", "turn_in_progress", "m-1")]
    window = store.load_window(alices_session, owner=ALICE)
    assert window.turns == []
    assert window.in_flight is not None and window.in_flight.message_id == "m-0"


def test_a_commit_that_loses_a_race_under_reject_ends_in_turn_in_progress(session_agent, log, publisher, store, alices_session):
    # given: a model during whose call another writer commits a turn to the session
    sessions = session_agent()
    model = RacedModel(sessions, alices_session, answer("Forty-two."))
    turns = StreamedTurns(session_agent(model), log, publisher)
    # when
    turns.run(message(alices_session), exclusive=False)
    # then: the stream ends in turn_in_progress; only the rival's turn is stored
    assert logged(log, alices_session)[-1][1]["code"] == "turn_in_progress"
    assert [t.message_id for t in store.load_window(alices_session, owner=ALICE).turns] == [None]


def test_a_commit_that_loses_a_race_under_enqueue_raises_so_sqs_retries_the_record_in_order(
    session_agent, log, publisher, store, alices_session
):
    # given
    sessions = session_agent()
    model = RacedModel(sessions, alices_session, answer("Forty-two."))
    turns = StreamedTurns(session_agent(model), log, publisher)
    # when / then: the FIFO worker's run raises, and writes no error to the stream
    with pytest.raises(TurnConflict):
        turns.run(message(alices_session), exclusive=True)
    assert all(event["type"] != "error" for _, event in logged(log, alices_session))


def test_with_store_redacted_the_log_keeps_the_events_redacted_while_the_live_posts_are_as_written(
    session_agent, log, publisher, stage, aws, store, alices_session
):
    # given: an agent that passes planted personal data through a tool and its answer, storing redacted
    turns = StreamedTurns(session_agent(PlantedModel(), definition=REFUNDS, store_redacted=True), log, publisher)
    # when
    turns.run(message(alices_session, text=MESSAGE), exclusive=False)
    # then: the connection saw the data as the run wrote it
    live = json.dumps(stage.posts_to("conn-1"))
    assert EMAIL in live
    # and the event log's items hold none of it, only the markers
    stored = json.dumps(aws.scan(EVENTS))
    assert planted_in([stored]) == []
    assert any(marker in stored for marker in MARKERS)
    assert planted_in(json.dumps(event) for _, event in logged(log, alices_session)) == []
    # and the two carry the same events with the same numbers
    assert [p["event_id"] for p in stage.posts_to("conn-1")] == [event_id for event_id, _ in logged(log, alices_session)]


def test_a_publisher_whose_every_post_times_out_never_fails_the_run_and_the_answer_is_stored(
    session_agent, log, publisher, stage, store, alices_session
):
    # given: a client too slow to read: every post times out
    stage.timing_out = True
    turns = StreamedTurns(session_agent(), log, publisher)
    # when
    turns.run(message(alices_session), exclusive=False)
    # then: nothing was delivered, the run was committed, and the log keeps every event for a resume
    assert stage.posts == [] and stage.attempts
    (turn,) = store.load_window(alices_session, owner=ALICE).turns
    assert turn.answer == "calculator returned 84."
    assert logged(log, alices_session)[-1][1]["type"] == "final"


def test_a_reservation_abandoned_past_its_lease_is_settled_by_the_next_turn(
    session_agent, log, publisher, store, clock, alices_session
):
    # given: a reservation whose worker never ran
    assert (
        reserve_turn(store, alices_session, owner=ALICE, message="lost", message_id="m-0", lease_seconds=60, clock=clock)
        == "reserved"
    )
    with pytest.raises(TurnConflict):  # while its lease runs, the slot is its
        reserve_turn(store, alices_session, owner=ALICE, message=PROMPT, message_id="m-1", lease_seconds=60, clock=clock)
    # when: its lease is over, the next message is accepted without a reservation, and its worker runs
    clock.advance(62)
    reserved = reserve_turn(store, alices_session, owner=ALICE, message=PROMPT, message_id="m-1", lease_seconds=60, clock=clock)
    StreamedTurns(session_agent(), log, publisher).run(message(alices_session), exclusive=False)
    # then: nothing was reserved for it; the abandoned turn was committed as interrupted, then the new one answered
    assert reserved == "abandoned"
    window = store.load_window(alices_session, owner=ALICE)
    assert [(t.message_id, t.status) for t in window.turns] == [("m-0", "interrupted"), ("m-1", "completed")]
    assert window.in_flight is None
    assert logged(log, alices_session)[-1][1]["type"] == "final"


def test_a_reserved_message_is_taken_by_its_worker_from_the_reservation_and_the_slot_is_released(
    session_agent, log, publisher, store, clock, alices_session
):
    # given: the message reserved the slot when it was accepted
    reserve_turn(store, alices_session, owner=ALICE, message=PROMPT, message_id="m-1", lease_seconds=LEASE_SECONDS, clock=clock)
    # when: its worker runs it
    StreamedTurns(session_agent(), log, publisher).run(message(alices_session), exclusive=False)
    # then: one turn, the message's, and the slot is free
    window = store.load_window(alices_session, owner=ALICE)
    assert [(t.message_id, t.user_text, t.answer) for t in window.turns] == [("m-1", PROMPT, "calculator returned 84.")]
    assert window.in_flight is None


def test_process_streamed_message_takes_the_turn_of_a_queued_body(
    session_agent, log, publisher, store, lambda_context, alices_session
):
    turns = StreamedTurns(session_agent(), log, publisher)

    process_streamed_message(turns, message(alices_session).model_dump_json(), exclusive=False, context=lambda_context)

    assert [t.message_id for t in store.load_window(alices_session, owner=ALICE).turns] == ["m-1"]
    assert logged(log, alices_session)[-1][1]["type"] == "final"


def test_the_fifo_worker_streams_a_websocket_message_and_takes_any_other_without_streaming(
    session_agent, log, publisher, stage, store, alices_session
):
    # given: one message sent over the WebSocket API, one over REST
    sessions = session_agent()
    turns = StreamedTurns(sessions, log, publisher)
    rest = message(alices_session, text="Calculate 1 + 1", message_id="m-rest").model_copy(update={"stream": False})
    # when: the FIFO worker takes both
    process_session_message(sessions, turns, message(alices_session).model_dump_json(), conflict_retries=0)
    streamed = len(logged(log, alices_session))
    process_session_message(sessions, turns, rest.model_dump_json(), conflict_retries=0)
    # then: both are stored, and only the first streamed
    assert [t.message_id for t in store.load_window(alices_session, owner=ALICE).turns] == ["m-1", "m-rest"]
    assert streamed > 0
    assert len(logged(log, alices_session)) == streamed


def test_a_body_that_is_no_queued_message_raises_so_sqs_retries_it(session_agent, log, publisher):
    turns = StreamedTurns(session_agent(), log, publisher)

    with pytest.raises(ValidationError, match="QueuedMessage"):
        process_streamed_message(turns, '{"not": "a message"}', exclusive=False)


def test_a_message_whose_id_another_texts_reservation_holds_is_refused_as_reused_and_the_reservation_stays(
    session_agent, log, publisher, store, clock, alices_session
):
    # given: the socket accepted "m-1" for one text and reserved the slot; a second frame reused "m-1" for another
    # text, and (a standard queue keeps no order) its record reaches a worker first
    reserve_turn(store, alices_session, owner=ALICE, message=PROMPT, message_id="m-1", lease_seconds=LEASE_SECONDS, clock=clock)
    turns = StreamedTurns(session_agent(), log, publisher)
    # when
    turns.run(message(alices_session, text="Calculate 1 + 1"), exclusive=False)
    # then: the reused id is refused, nothing of the other text is stored, and the accepted message keeps its slot
    last = logged(log, alices_session)[-1][1]
    assert (last["type"], last.get("code")) == ("error", "idempotency_key_reused")
    window = store.load_window(alices_session, owner=ALICE)
    assert window.turns == []
    assert window.in_flight is not None and window.in_flight.message_id == "m-1"


def test_a_message_the_input_guards_block_ends_with_input_blocked_and_frees_its_reservation(
    session_agent, log, publisher, stage, store, clock, alices_session
):
    # given: an agent whose input guards deny a topic, and a reserved message about it
    guarded = dataclasses.replace(demo_definition, input_guards=(DenyListGuard(topics=["internal roadmap"]),))
    text = "Tell me the internal roadmap."
    reserve_turn(store, alices_session, owner=ALICE, message=text, message_id="m-1", lease_seconds=LEASE_SECONDS, clock=clock)
    turns = StreamedTurns(session_agent(LocalModel(), definition=guarded), log, publisher)
    # when
    turns.run(message(alices_session, text=text), exclusive=False)
    # then: one error event, nothing stored, the slot free
    assert [(e["type"], e.get("code")) for _, e in logged(log, alices_session)] == [("error", "input_blocked")]
    window = store.load_window(alices_session, owner=ALICE)
    assert (window.turns, window.in_flight) == ([], None)
