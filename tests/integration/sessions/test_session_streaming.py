"""A session turn streams its run, and its ``final`` event means the turn is stored (moto DynamoDB, local model)."""

from __future__ import annotations

from typing import Any

from agentrail_runtime.agent.events import FinalEvent, TokenEvent
from agentrail_runtime.models.local import LocalModel
from tests.integration.conftest import OWNER

PROMPT = "What is (12 + 30) * 2?"


def test_a_streamed_turn_sends_its_final_event_only_once_the_turn_is_committed(make_store, make_agent):
    # given: a session, and a sink that reads the session's history whenever an event arrives
    store = make_store()
    sessions = make_agent(store)
    session = store.create(owner=OWNER)
    seen: list[tuple[str, int]] = []

    def sink(event: Any) -> None:
        seen.append((event.type, len(store.load_window(session.session_id, owner=OWNER).turns)))

    # when: a turn runs with the sink
    outcome = sessions.take_turn(session.session_id, owner=OWNER, message=PROMPT, on_event=sink)
    # then: every event before final came while the turn was not stored; final came after its commit
    assert [kind for kind, _ in seen] == ["step_started", "tool_call", "tool_result", "step_started", "token", "final"]
    assert [turns for _, turns in seen] == [0, 0, 0, 0, 0, 1]
    assert outcome.turn.answer == "calculator returned 84."


def test_a_replayed_message_streams_only_the_committed_final(make_store, make_agent):
    # given: a turn committed for a message id
    store = make_store()
    sessions = make_agent(store)
    session = store.create(owner=OWNER)
    first = sessions.take_turn(session.session_id, owner=OWNER, message=PROMPT, message_id="m-1")
    events: list[Any] = []
    # when: the same message is delivered again, with a sink
    again = sessions.take_turn(session.session_id, owner=OWNER, message=PROMPT, message_id="m-1", on_event=events.append)
    # then: nothing ran again; the sink got the committed answer as the final event
    assert again.replayed
    assert events == [
        FinalEvent(
            status="completed",
            answer=first.turn.answer,
            model="local",
            steps=2,
            usage=first.turn.usage,
            cost_usd=first.turn.cost_usd,
            replaced=True,
        )
    ]


def test_a_sink_that_raises_never_keeps_a_turn_from_being_committed_with_its_answer(make_store, make_agent):
    # given: a sink that fails on every event
    store = make_store()
    sessions = make_agent(store)
    session = store.create(owner=OWNER)

    def broken(event: Any) -> None:
        raise TimeoutError("the client stopped reading")

    # when: a turn runs with it
    outcome = sessions.take_turn(session.session_id, owner=OWNER, message=PROMPT, on_event=broken)
    # then: the turn is committed with the answer the run gave
    stored = store.load_window(session.session_id, owner=OWNER).turns
    assert [turn.answer for turn in stored] == [outcome.turn.answer] == ["calculator returned 84."]


def test_the_agent_service_streams_a_run_and_its_tokens_make_the_answer(agents_with):
    # given: the demo agent's service on the local model
    service = agents_with(LocalModel())
    events: list[Any] = []
    # when: it runs a request with a sink
    result = service.run(PROMPT, on_event=events.append)
    # then: the tokens make the answer and final closes the stream
    assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == result.answer
    assert events[-1].type == "final" and events[-1].answer == result.answer
