"""What a session remembers: facts across turns, one item per turn, S3 offload, the history window and the state document."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from pydantic import Field

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.models.local import LocalModel

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def item_size(item: dict[str, Any]) -> int:
    return len(json.dumps(item, sort_keys=True))


@pytest.fixture
def session_told(make_store, make_agent, make_app, create_session, send) -> Callable[..., tuple[Any, str]]:
    """``session_told(*messages, **store_options)``: the sessions app over a store with those options, and a session sent ``messages``."""

    def tell(*messages: str, **store_options: Any) -> tuple[Any, str]:
        app = make_app(make_agent(make_store(**store_options)))
        session_id = create_session(app)
        for message in messages:
            send(app, session_id, message)
        return app, session_id

    return tell


def test_the_agent_recalls_a_fact_from_an_earlier_turn_through_the_lambda_handler(aws, session_handler, api_event, call):
    handler = session_handler("sessions").handler
    session_id = call(handler, api_event("create-session")).body["session_id"]

    told = call(handler, api_event("send-message", session_id=session_id, body={"message": "My name is Ada"}))
    asked = call(handler, api_event("send-message", session_id=session_id, body={"message": "What is my name?"}))

    assert (told.status, told.body["turn"], told.body["answer"]) == (200, 1, "Noted: your name is Ada.")
    assert (asked.status, asked.body["turn"], asked.body["answer"]) == (200, 2, "Your name is Ada.")
    assert asked.body["session_id"] == session_id
    assert asked.headers["X-Correlation-Id"] == asked.body["request_id"] == asked.event["requestContext"]["requestId"]


def test_a_new_session_does_not_know_another_sessions_facts(make_store, make_agent, make_app, create_session, send):
    app = make_app(make_agent(make_store()))
    first, second = create_session(app), create_session(app)
    send(app, first, "My name is Ada")

    reply = send(app, second, "What is my name?")

    assert reply.body["answer"] == "I don't know your name yet."


# -- one item per turn ---------------------------------------------------------------------------


def test_each_turn_is_one_item_and_no_item_grows_as_the_conversation_does(aws, session_told, send):
    app, session_id = session_told()
    for _ in range(3):
        assert send(app, session_id, "Calculate 6 * 7").status == 200
    early = {item["sk"]["S"]: item_size(item) for item in aws.items(session_id)}

    for _ in range(9):
        assert send(app, session_id, "Calculate 6 * 7").status == 200

    late = {item["sk"]["S"]: item_size(item) for item in aws.items(session_id)}
    assert sorted(late) == [f"turn#{n:010d}" for n in range(1, 13)] + ["~meta"]
    assert late["~meta"] - early["~meta"] <= 2  # the turn counter gained a digit; nothing else grew
    # Each turn item is its own size, whatever came before: only its token counts' digits differ (the prompt cache's
    # read and write counts vary from turn to turn).
    sizes = [late[f"turn#{n:010d}"] for n in range(1, 13)]
    assert max(sizes) - min(sizes) <= 8


def test_a_turn_over_the_item_limit_is_offloaded_to_s3_and_read_back(aws, session_told, send, api_event, call):
    app, session_id = session_told(offload=True, max_payload_bytes=2_000)
    long_message = "My name is Ada. " + "The quick brown fox jumps over the lazy dog. " * 60

    reply = send(app, session_id, long_message)

    assert reply.status == 200
    [turn_item] = [i for i in aws.items(session_id) if i["sk"]["S"].startswith("turn#")]
    assert "payload" not in turn_item
    assert turn_item["payload_s3_key"]["S"] == f"sessions/{session_id}/0000000001.json"
    assert aws.objects(f"sessions/{session_id}/") == [f"sessions/{session_id}/0000000001.json"]
    page = call(app, api_event("get-session", session_id=session_id)).body
    assert page["history"][0]["message"] == long_message.strip()
    assert send(app, session_id, "What is my name?").body["answer"] == "Your name is Ada."


def test_a_turn_over_the_item_limit_without_an_offload_bucket_is_refused_with_413_and_nothing_written(
    aws, session_told, send, api_event, call
):
    app, session_id = session_told(max_payload_bytes=2_000)
    before = aws.items(session_id)

    reply = send(app, session_id, "The quick brown fox jumps over the lazy dog. " * 60)

    assert reply.status == 413
    assert reply.body["error"] == "turn_too_large"
    assert "quick brown fox" not in reply.raw
    assert aws.items(session_id) == before
    assert aws.objects() == []
    assert call(app, api_event("get-session", session_id=session_id)).body["turns"] == 0


# -- the history window --------------------------------------------------------------------------


@pytest.fixture
def dynamodb_calls(aws):
    """Record every DynamoDB call (operation, parameters) made through the shared moto client while the block runs."""

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls.append((model.name, params))

        def __enter__(self) -> Recorder:
            aws.dynamodb.meta.events.register("before-parameter-build.dynamodb", self)
            return self

        def __exit__(self, *exc: object) -> None:
            aws.dynamodb.meta.events.unregister("before-parameter-build.dynamodb", self)

        def named(self, operation: str) -> list[dict[str, Any]]:
            return [params for name, params in self.calls if name == operation]

    return Recorder


def test_a_turn_reads_with_one_bounded_query_and_writes_with_one_transaction(session_told, send, dynamodb_calls):
    app, session_id = session_told(*(f"Calculate {n} + 1" for n in range(6)), window_turns=4)

    with dynamodb_calls() as recorded:
        reply = send(app, session_id, "Calculate 2 + 2")

    assert reply.status == 200
    assert [name for name, _ in recorded.calls] == ["Query", "TransactWriteItems"]
    [query] = recorded.named("Query")
    assert query["Limit"] == 4 + 4  # the window, plus ~turn, ~summary, ~state and ~meta
    assert query["ScanIndexForward"] is False and query["ConsistentRead"] is True
    [transaction] = recorded.named("TransactWriteItems")
    assert [next(iter(op)) for op in transaction["TransactItems"]] == ["Put", "Update"]


def test_the_window_holds_the_latest_turns_that_fit_the_token_budget(aws, make_store, session_told, owner):
    _, session_id = session_told(*(f"Calculate {n} * 3" for n in range(5)))
    tokens = {int(i["sk"]["S"][5:]): int(i["tokens"]["N"]) for i in aws.items(session_id) if i["sk"]["S"].startswith("turn#")}

    window = make_store(window_turns=10, window_tokens=tokens[4] + tokens[5] + 1).load_window(session_id, owner=owner)

    assert [t.number for t in window.turns] == [4, 5]
    assert [t.number for t in window.older] == [1, 2, 3]
    assert window.truncated is True
    assert [m.text for m in window.history() if m.role == "user"] == ["Calculate 3 * 3", "Calculate 4 * 3"]


def test_truncate_drops_the_turns_that_leave_the_window(session_told, send):
    app, session_id = session_told("My name is Ada", "Calculate 1 + 1", "Calculate 2 + 2", window_turns=2, strategy="truncate")

    reply = send(app, session_id, "What is my name?")

    assert reply.body["answer"] == "I don't know your name yet."


def test_summary_lets_the_agent_recall_a_fact_that_left_the_window(aws, session_told, send):
    app, session_id = session_told("My name is Ada", "Calculate 1 + 1", "Calculate 2 + 2", window_turns=2, strategy="summary")

    reply = send(app, session_id, "What is my name?")

    assert reply.body["answer"] == "Your name is Ada."
    [summary] = [i for i in aws.items(session_id) if i["sk"]["S"] == "~summary"]
    assert summary["text"]["S"] == "- turn 1: the user said: My name is Ada\n- turn 2: the user said: Calculate 1 + 1"
    assert summary["through"]["N"] == "2"


def test_summary_also_keeps_turns_the_token_budget_left_out(aws, session_told, send):
    # Every turn here costs well over 15 tokens, so a 40-token budget keeps at most two of them.
    app, session_id = session_told(
        "My name is Ada",
        "Calculate 1 + 1",
        "Calculate 2 + 2",
        "Calculate 3 + 3",
        window_turns=20,
        window_tokens=40,
        strategy="summary",
    )

    reply = send(app, session_id, "What is my name?")

    assert reply.body["answer"] == "Your name is Ada."
    [summary] = [i for i in aws.items(session_id) if i["sk"]["S"] == "~summary"]
    assert summary["text"]["S"].startswith("- turn 1: the user said: My name is Ada\n")


def test_history_pages_oldest_first_with_a_cursor(session_told, api_event, call):
    app, session_id = session_told(*(f"Calculate {n} + 10" for n in range(5)))

    first = call(app, api_event("get-session", session_id=session_id, query={"limit": "2"})).body
    second = call(app, api_event("get-session", session_id=session_id, query={"limit": "2", "cursor": first["next_cursor"]})).body
    third = call(app, api_event("get-session", session_id=session_id, query={"limit": "2", "cursor": second["next_cursor"]})).body

    assert [t["number"] for t in first["history"] + second["history"] + third["history"]] == [1, 2, 3, 4, 5]
    assert third["next_cursor"] is None
    assert first["turns"] == 5
    assert third["history"][0]["message"] == "Calculate 4 + 10"
    assert third["history"][0]["answer"] == "calculator returned 14."


# -- the state document --------------------------------------------------------------------------


def test_put_state_with_the_version_read_replaces_the_document_and_bumps_the_version(
    make_store, make_agent, make_app, create_session, api_event, call
):
    app = make_app(make_agent(make_store()))
    session_id = create_session(app, state={"language": "en", "units": "metric"})

    reply = call(app, api_event("put-state", session_id=session_id))

    assert reply.status == 200
    assert reply.body == {"version": 2, "data": {"language": "fr", "units": "metric"}}
    assert call(app, api_event("get-session", session_id=session_id)).body["state"] == reply.body


def test_put_state_with_a_stale_version_is_409_state_conflict_and_changes_nothing(
    make_store, make_agent, make_app, create_session, api_event, call
):
    app = make_app(make_agent(make_store()))
    session_id = create_session(app, state={"language": "en"})
    assert call(app, api_event("put-state", session_id=session_id)).status == 200

    stale = call(app, api_event("put-state", session_id=session_id, body={"data": {"language": "de"}, "expected_version": 1}))

    assert stale.status == 409
    assert stale.body["error"] == "state_conflict"
    assert call(app, api_event("get-session", session_id=session_id)).body["state"] == {
        "version": 2,
        "data": {"language": "fr", "units": "metric"},
    }


def test_the_first_state_of_a_session_created_without_one_is_written_with_version_0(
    make_store, make_agent, make_app, create_session, api_event, call
):
    app = make_app(make_agent(make_store()))
    session_id = create_session(app)

    first = call(app, api_event("put-state", session_id=session_id, body={"data": {"units": "imperial"}, "expected_version": 0}))
    again = call(app, api_event("put-state", session_id=session_id, body={"data": {"units": "metric"}, "expected_version": 0}))

    assert (first.status, first.body["version"]) == (200, 1)
    assert (again.status, again.body["error"]) == (409, "state_conflict")


@tool(local_patterns=[r"\buse (?P<units>metric|imperial) units\b"])
def set_units(units: Annotated[str, Field(pattern="^(metric|imperial)$")], context: ToolContext) -> str:
    """Remember which units the user prefers."""
    context.state["units"] = units
    return f"units set to {units}"


preferences = AgentDefinition(
    name="preferences", system_prompt="Remember preferences.", tools=(*demo_definition.tools, set_units)
)


def test_a_tool_that_changes_the_state_persists_it_with_the_turn(
    aws, make_store, make_agent, make_app, create_session, send, api_event, call, dynamodb_calls
):
    app = make_app(make_agent(make_store(), definition=preferences))
    session_id = create_session(app, state={"language": "en"})

    with dynamodb_calls() as recorded:
        reply = send(app, session_id, "Please use imperial units")

    assert reply.status == 200
    assert [c["tool"] for c in reply.body["tool_calls"]] == ["set_units"]
    assert call(app, api_event("get-session", session_id=session_id)).body["state"] == {
        "version": 2,
        "data": {"language": "en", "units": "imperial"},
    }
    [transaction] = recorded.named("TransactWriteItems")
    assert len(transaction["TransactItems"]) == 3  # turn, ~meta and ~state, all or nothing


def test_a_turn_whose_tools_leave_the_state_alone_does_not_write_it(
    make_store, make_agent, make_app, create_session, send, dynamodb_calls
):
    app = make_app(make_agent(make_store(), definition=preferences))
    session_id = create_session(app, state={"units": "metric"})

    with dynamodb_calls() as recorded:
        send(app, session_id, "Calculate 2 + 2")

    [transaction] = recorded.named("TransactWriteItems")
    assert len(transaction["TransactItems"]) == 2


class StateWriterModel(LocalModel):
    """The local model; on its first call another writer replaces the session's state, as a concurrent PUT would."""

    def __init__(self, write) -> None:
        self.write = write

    def converse(self, **request: Any) -> Any:
        if self.write is not None:
            write, self.write = self.write, None
            write()
        return super().converse(**request)


def test_a_tool_state_change_over_a_state_replaced_during_the_turn_is_refused_and_nothing_is_lost(
    aws, make_store, make_agent, make_app, create_session, send, api_event, call, owner
):
    store = make_store()
    model = StateWriterModel(None)
    app = make_app(make_agent(store, model=model, definition=preferences))
    session_id = create_session(app, state={"units": "metric"})
    model.write = lambda: store.update_state(
        session_id, owner=owner, data={"units": "metric", "theme": "dark"}, expected_version=1
    )

    reply = send(app, session_id, "Please use imperial units")

    assert reply.status == 409
    assert reply.body["error"] == "turn_in_progress"
    page = call(app, api_event("get-session", session_id=session_id)).body
    assert page["state"] == {"version": 2, "data": {"units": "metric", "theme": "dark"}}
    assert page["turns"] == 0
    assert [i["sk"]["S"] for i in aws.items(session_id)] == ["~meta", "~state"]
