"""A shadow run of a session turn reads the history the live turn saw, and never writes the session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentrail_runtime.agent import AgentDefinition, ToolContext, tool
from agentrail_runtime.models.base import Message
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.shadow import RunSummary, ShadowCandidate, ShadowRequest


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
