"""A shadow run of a session turn reads the history the live turn saw, and never writes the session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentrail_runtime.agent import AgentDefinition, ToolContext, tool
from agentrail_runtime.models.base import Message
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.shadow import RunSummary, ShadowRequest, ShadowSampler
from agentrail_runtime.shadow.candidate import ShadowCandidate


class HistoryRecordingModel(LocalModel):
    """The local model, remembering the messages of each call (what the candidate was given)."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def converse(self, *, messages: Sequence[Message], **kwargs: Any) -> Any:
        self.seen.append([m.text for m in messages])
        return super().converse(messages=messages, **kwargs)


@tool(side_effects=True, local_patterns=[r"\bremember (?P<note>\w+)"])
def remember(note: str, context: ToolContext) -> dict[str, str]:
    """Remember a note in the session's state."""
    context.state["note"] = note
    return {"remembered": note}


NOTES = AgentDefinition(name="notes", description="Remembers notes.", system_prompt="Remember notes.", tools=(remember,))


def test_a_shadow_session_turn_reads_the_live_history_and_writes_nothing_to_the_session(
    make_store, make_agent, agents_with, aws, owner
):
    # given a session with two live turns: the second is the one sampled for the shadow
    store = make_store()
    live = make_agent(store, definition=NOTES)
    session = store.create(owner=owner, state={"note": "none"})
    live.take_turn(session.session_id, owner=owner, message="hello there")
    second = live.take_turn(session.session_id, owner=owner, message="remember green", message_id="m-2")
    before = aws.items(session.session_id)

    # when the candidate replays the second turn (asking its side-effecting tool to change the state)
    model = HistoryRecordingModel()
    candidate = ShadowCandidate(agents_with(model, definition=NOTES), sessions=store)
    request = ShadowRequest(
        request_id="req-turn-2",
        kind="session_turn",
        message="remember blue",
        session_id=session.session_id,
        owner=owner,
        turn=second.turn.number,
        live=RunSummary(answer=second.turn.answer, status="completed", model="local", agent_version="v1"),
    )
    summary = candidate.run(request)

    # then it saw the first turn as history (not the live second one), and the session is exactly as it was
    assert model.seen[0][:2] == ["hello there", live.store.load_window(session.session_id, owner=owner).turns[0].answer]
    assert "remember green" not in model.seen[0]
    assert summary.dry_run_calls[0]["tool"] == "remember"
    assert aws.items(session.session_id) == before
    assert store.load_window(session.session_id, owner=owner).state.data == {"note": "green"}


def test_a_sampled_turn_of_the_sessions_api_reaches_the_shadow_queue_and_its_replay_sees_the_turns_before_it(
    make_store, make_agent, make_app, agents_with, create_session, send, receive, aws
):
    # given the sessions API with every turn sampled
    store = make_store()
    queue_url = aws.sqs.create_queue(QueueName="agentrail-shadow")["QueueUrl"]
    app = make_app(make_agent(store, definition=NOTES), shadow=ShadowSampler(queue_url=queue_url, percent=100, sqs=aws.sqs))
    session_id = create_session(app)

    # when a user takes two turns
    send(app, session_id, "hello there", request_id="req-turn-1")
    second = send(app, session_id, "remember green", request_id="req-turn-2")

    # then each turn's copy names the session, its owner and its turn number, with the live answer
    copies = [ShadowRequest.model_validate_json(m["Body"]) for m in receive(aws.sqs, queue_url)]
    by_id = {c.request_id: c for c in copies}
    assert set(by_id) == {"req-turn-1", "req-turn-2"}
    copied = by_id["req-turn-2"]
    assert (copied.kind, copied.session_id, copied.turn) == ("session_turn", session_id, second.body["turn"])
    assert copied.live.answer == second.body["answer"]

    # and replaying it on a candidate reads the first turn as history and writes nothing
    before = aws.items(session_id)
    model = HistoryRecordingModel()
    summary = ShadowCandidate(agents_with(model, definition=NOTES), sessions=store).run(copied)
    assert model.seen[0][0] == "hello there" and model.seen[0][-1] == "remember green"
    assert summary.dry_run_calls == [
        {"tool": "remember", "arguments": {"note": "green"}, "result": summary.dry_run_calls[0]["result"]}
    ]
    assert aws.items(session_id) == before
