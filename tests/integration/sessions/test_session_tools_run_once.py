"""A tool with side effects runs at most once per call, however often its turn is retried or redelivered.

A sync turn is retried by its client with the same ``Idempotency-Key``; a queued turn is redelivered by SQS. The
crash is an exception deriving from BaseException: nothing in the process catches it, as when the execution
environment dies (timeout, out of memory) after the tool ran.
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import Field

from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.models.base import ModelResponse
from agentrail_runtime.models.local import LocalModel

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


class ProcessDied(BaseException):
    """The execution environment dying: nothing catches it."""


class DiesAfterTheTool(LocalModel):
    """The local model, dying on its first ``times`` calls that follow a tool result."""

    def __init__(self, *, times: int = 1) -> None:
        self.times = times

    def converse(self, **request: Any) -> ModelResponse:
        if request["messages"][-1].tool_results and self.times > 0:
            self.times -= 1
            raise ProcessDied
        return super().converse(**request)


class Payments:
    """A payment provider that records every charge it is asked for, with the caller's idempotency key."""

    def __init__(self) -> None:
        self.charges: list[tuple[int, str | None]] = []
        self.die_while_charging = False

    def definition(self) -> AgentDefinition:
        @tool(side_effects=True, local_patterns=[r"\bcharge (?P<amount_usd>\d+) usd\b"])
        def charge_card(amount_usd: Annotated[int, Field(gt=0)], context: ToolContext) -> dict[str, object]:
            """Charge the customer's card."""
            self.charges.append((amount_usd, context.idempotency_key))
            if self.die_while_charging:
                raise ProcessDied
            return {"charged_usd": amount_usd}

        return AgentDefinition(name="billing", system_prompt="You bill customers.", tools=(charge_card,))


@pytest.fixture
def payments() -> Payments:
    return Payments()


@pytest.fixture
def send_keyed(api_event, call):
    def post(app: Any, session_id: str, message: str, key: str) -> Any:
        event = api_event("send-message", session_id=session_id, body={"message": message})
        event.setdefault("headers", {})["Idempotency-Key"] = key
        event.setdefault("multiValueHeaders", {})["Idempotency-Key"] = [key]
        return call(app, event)

    return post


def test_a_retried_message_after_a_crash_that_followed_the_charge_charges_once_and_completes_the_turn(
    aws, make_store, make_agent, make_app, create_session, send_keyed, api_event, call, payments, monkeypatch
):
    model = DiesAfterTheTool()
    sessions = make_agent(make_store(), model=model, definition=payments.definition())
    app = make_app(sessions)
    session_id = create_session(app)

    with pytest.raises(ProcessDied):
        send_keyed(app, session_id, "Please charge 30 usd", "msg-1")
    assert [amount for amount, _ in payments.charges] == [30]  # the tool ran before the crash

    retried = send_keyed(app, session_id, "Please charge 30 usd", "msg-1")  # the client's retry, same key

    assert retried.status == 200, retried.body
    assert (retried.body["turn"], retried.body["status"]) == (1, "completed")
    assert '"charged_usd": 30' in retried.body["answer"]
    assert [amount for amount, _ in payments.charges] == [30]
    history = call(app, api_event("get-session", session_id=session_id)).body["history"]
    assert [(t["number"], t["message_id"], t["status"]) for t in history] == [(1, "msg-1", "completed")]
    assert "~turn" not in aws.sort_keys(session_id)  # the commit emptied the in-flight slot


def test_a_retry_of_a_message_whose_turn_was_committed_returns_that_turn_and_runs_nothing(
    make_store, make_agent, make_app, create_session, send_keyed, payments
):
    app = make_app(make_agent(make_store(), model=LocalModel(), definition=payments.definition()))
    session_id = create_session(app)
    first = send_keyed(app, session_id, "Please charge 30 usd", "msg-1")

    again = send_keyed(app, session_id, "Please charge 30 usd", "msg-1")

    assert (again.status, again.body["turn"], again.body["answer"]) == (200, 1, first.body["answer"])
    assert [c["tool"] for c in again.body["tool_calls"]] == ["charge_card"]
    assert len(payments.charges) == 1


def test_a_committed_messages_key_sent_with_another_message_is_refused_422_and_runs_nothing(
    make_store, make_agent, make_app, create_session, send_keyed, payments
):
    app = make_app(make_agent(make_store(), model=LocalModel(), definition=payments.definition()))
    session_id = create_session(app)
    send_keyed(app, session_id, "Please charge 30 usd", "msg-1")

    reused = send_keyed(app, session_id, "Please charge 90 usd", "msg-1")

    assert (reused.status, reused.body["error"]) == (422, "idempotency_key_reused")
    assert [amount for amount, _ in payments.charges] == [30]


def test_an_in_flight_messages_key_sent_with_another_message_is_refused_422_and_leaves_the_turn_to_its_retry(
    make_store, make_agent, make_app, create_session, send_keyed, payments
):
    app = make_app(make_agent(make_store(), model=DiesAfterTheTool(), definition=payments.definition()))
    session_id = create_session(app)
    with pytest.raises(ProcessDied):
        send_keyed(app, session_id, "Please charge 30 usd", "msg-1")

    reused = send_keyed(app, session_id, "Please charge 90 usd", "msg-1")
    retried = send_keyed(app, session_id, "Please charge 30 usd", "msg-1")

    assert (reused.status, reused.body["error"]) == (422, "idempotency_key_reused")
    assert (retried.status, retried.body["status"]) == (200, "completed")
    assert [amount for amount, _ in payments.charges] == [30]


def test_a_redelivered_queued_turn_after_a_crash_that_followed_the_charge_charges_once_and_commits_the_turn(
    aws,
    make_store,
    make_agent,
    make_app,
    create_session,
    send,
    session_handler,
    receive,
    sqs_event,
    lambda_context,
    owner,
    payments,
    monkeypatch,
):
    url = aws.fifo_queue()
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    app = make_app(make_agent(make_store()), concurrency="enqueue", queue_url=url, queue_client=aws.sqs)
    session_id = create_session(app)
    accepted = send(app, session_id, "Please charge 30 usd")
    event = sqs_event(receive(aws.sqs, url), arn)
    worker = session_handler("session_worker", concurrency="enqueue", queue_url=url)
    dying = make_agent(make_store(), model=DiesAfterTheTool(), definition=payments.definition())
    monkeypatch.setattr(worker.sessions, "agents", dying.agents)

    with pytest.raises(ProcessDied):
        worker.handler(event, lambda_context)
    assert len(payments.charges) == 1
    redelivered = worker.handler(event, lambda_context)  # SQS delivers the message again after its visibility timeout

    assert redelivered == {"batchItemFailures": []}
    assert len(payments.charges) == 1
    turns = make_store().read_page(session_id, owner=owner, limit=10, cursor=None).turns
    assert [(t.number, t.message_id, t.status) for t in turns] == [(1, accepted.body["message_id"], "completed")]
    assert '"charged_usd": 30' in turns[0].answer


def test_a_crash_during_the_charge_ends_the_call_outcome_unknown_on_the_retry_and_it_is_not_charged_again(
    make_store, make_agent, make_app, create_session, send_keyed, payments
):
    app = make_app(make_agent(make_store(), model=LocalModel(), definition=payments.definition()))
    session_id = create_session(app)
    payments.die_while_charging = True
    with pytest.raises(ProcessDied):
        send_keyed(app, session_id, "Please charge 30 usd", "msg-1")
    payments.die_while_charging = False

    retried = send_keyed(app, session_id, "Please charge 30 usd", "msg-1")

    assert retried.status == 200, retried.body
    assert [(c["tool"], c["outcome"]) for c in retried.body["tool_calls"]] == [("charge_card", "outcome_unknown")]
    assert len(payments.charges) == 1
    [(_, key)] = payments.charges
    assert key is not None and key.startswith(f"{session_id}#")  # what the provider can resolve the charge by


def test_a_new_message_after_an_abandoned_queued_turn_keeps_its_charge_in_the_history_and_never_repeats_it(
    aws, make_store, make_agent, create_session, make_app, owner, payments
):
    store = make_store()
    dying = make_agent(store, model=DiesAfterTheTool(), definition=payments.definition())
    session_id = create_session(make_app(dying))
    with pytest.raises(ProcessDied):
        dying.take_turn(session_id, owner=owner, message="Please charge 30 usd", message_id="m-1", exclusive=True)
    # m-1 went to the dead-letter queue; the next message of the session comes:
    healthy = make_agent(store, model=LocalModel(), definition=payments.definition())

    outcome = healthy.take_turn(session_id, owner=owner, message="Hello", message_id="m-2", exclusive=True)
    late = healthy.take_turn(session_id, owner=owner, message="Please charge 30 usd", message_id="m-1", exclusive=True)

    turns = store.read_page(session_id, owner=owner, limit=10, cursor=None).turns
    assert [(t.number, t.message_id, t.status) for t in turns] == [(1, "m-1", "interrupted"), (2, "m-2", "completed")]
    assert any(r.content == {"charged_usd": 30} for m in turns[0].messages for r in m.tool_results)
    assert outcome.turn.number == 2
    assert (late.replayed, late.turn.number) == (True, 1)
    assert len(payments.charges) == 1
