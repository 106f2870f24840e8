"""Two turns at once on one session: refused (``reject``) or queued in order (``enqueue``); and a crash mid-turn."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.sessions import DynamoDBSessionStore

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


class SerializedCommits(DynamoDBSessionStore):
    """The DynamoDB store, with commits handed to moto one at a time.

    DynamoDB runs two conditional transactions on one item one after the
    other; moto's in-process transaction (check, write, roll back from a
    snapshot) does not lock, so the test serializes the calls it makes.
    Both turns have still read the same version before either commits.
    """

    _lock = threading.Lock()

    def commit_turn(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return super().commit_turn(*args, **kwargs)


def turn_numbers(aws, session_id: str) -> list[int]:
    return [int(sk[5:]) for sk in aws.sort_keys(session_id) if sk.startswith("turn#")]


# -- reject ----------------------------------------------------------------------------------------


def test_two_racing_turns_under_reject_commit_exactly_one_and_the_other_gets_409_with_retry_after(
    aws, make_store, make_agent, make_app, create_session, send, api_event, call, barrier_model
):
    model = barrier_model(2)
    sessions = make_agent(make_store(cls=SerializedCommits), model=model)
    # One resolver per "instance": Powertools keeps the current event on the router, as one Lambda environment does.
    first_app, second_app = make_app(sessions), make_app(sessions)
    session_id = create_session(first_app)
    model.barrier = threading.Barrier(1)
    send(first_app, session_id, "My name is Ada")
    model.barrier = threading.Barrier(2)
    model.entered.clear()
    replies: dict[str, Any] = {}

    def post(name: str, app: Any, message: str) -> None:
        replies[name] = send(app, session_id, message)

    first = threading.Thread(target=post, args=("first", first_app, "Calculate 1 + 1"))
    second = threading.Thread(target=post, args=("second", second_app, "Calculate 2 + 2"))
    first.start()
    assert model.entered.wait(timeout=10)  # the first turn has read turn 1 and waits in the model
    second.start()
    first.join(timeout=20)
    second.join(timeout=20)

    statuses = sorted(reply.status for reply in replies.values())
    assert statuses == [200, 409]
    [winner] = [r for r in replies.values() if r.status == 200]
    [loser] = [r for r in replies.values() if r.status == 409]
    assert winner.body["turn"] == 2
    assert loser.body["error"] == "turn_in_progress"
    assert loser.headers["Retry-After"] == "1"
    assert turn_numbers(aws, session_id) == [1, 2]
    history = call(first_app, api_event("get-session", session_id=session_id)).body
    assert history["turns"] == 2
    assert [t["message"] for t in history["history"]] == ["My name is Ada", _message_of(winner)]
    assert _message_of(loser) != _message_of(winner)


def _message_of(reply: Any) -> str:
    return json.loads(reply.event["body"])["message"]


def test_the_refused_turn_succeeds_when_sent_again(aws, make_store, make_agent, make_app, create_session, send):
    app = make_app(make_agent(make_store()))
    session_id = create_session(app)
    send(app, session_id, "My name is Ada")

    again = send(app, session_id, "What is my name?")

    assert (again.status, again.body["turn"], again.body["answer"]) == (200, 2, "Your name is Ada.")


# -- enqueue ---------------------------------------------------------------------------------------


@pytest.fixture
def fifo(aws):
    url = aws.fifo_queue()
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


@pytest.fixture
def enqueue_app(aws, fifo, make_store, make_agent, make_app):
    url, _ = fifo
    return make_app(make_agent(make_store()), concurrency="enqueue", queue_url=url, queue_client=aws.sqs)


def test_under_enqueue_messages_are_queued_per_session_and_the_worker_commits_them_in_order(
    aws, fifo, enqueue_app, create_session, send, session_handler, receive, sqs_event, lambda_context, api_event, call
):
    url, arn = fifo
    session_id = create_session(enqueue_app)
    messages = ["My name is Ada", "Calculate 6 * 7", "What is my name?"]

    accepted = [send(enqueue_app, session_id, m) for m in messages]

    assert [(r.status, r.body["status"]) for r in accepted] == [(202, "queued")] * 3
    assert turn_numbers(aws, session_id) == []  # nothing is answered before the worker runs
    received = receive(aws.sqs, url)
    assert [m["Attributes"]["MessageGroupId"] for m in received] == [session_id] * 3
    assert [m["Attributes"]["MessageDeduplicationId"] for m in received] == [r.body["message_id"] for r in accepted]
    assert [json.loads(m["Body"])["message"] for m in received] == messages

    worker = session_handler("session_worker", concurrency="enqueue", queue_url=url)
    result = worker.handler(sqs_event(received, arn), lambda_context)

    assert result == {"batchItemFailures": []}
    history = call(enqueue_app, api_event("get-session", session_id=session_id)).body["history"]
    assert [(t["number"], t["message"], t["message_id"]) for t in history] == [
        (n + 1, m, r.body["message_id"]) for n, (m, r) in enumerate(zip(messages, accepted, strict=True))
    ]
    assert history[2]["answer"] == "Your name is Ada."


def test_a_message_queued_inside_a_trace_carries_its_trace_header_to_the_session_worker(
    aws, fifo, enqueue_app, create_session, send, receive, monkeypatch
):
    url, _ = fifo
    session_id = create_session(enqueue_app)
    header = "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)  # as Lambda sets it for the API function's invocation

    assert send(enqueue_app, session_id, "Calculate 6 * 7").status == 202

    [message] = receive(aws.sqs, url)
    assert message["Attributes"]["AWSTraceHeader"] == header


def test_a_redelivered_batch_is_a_no_op(
    aws, fifo, enqueue_app, create_session, send, session_handler, receive, sqs_event, lambda_context
):
    url, arn = fifo
    session_id = create_session(enqueue_app)
    for message in ("My name is Ada", "Calculate 6 * 7", "What is my name?"):
        send(enqueue_app, session_id, message)
    event = sqs_event(receive(aws.sqs, url), arn)
    worker = session_handler("session_worker", concurrency="enqueue", queue_url=url)
    worker.handler(event, lambda_context)
    items = aws.items(session_id)

    # The invocation died before SQS heard of it: every record comes again.
    result = worker.handler(event, lambda_context)

    assert result == {"batchItemFailures": []}
    assert turn_numbers(aws, session_id) == [1, 2, 3]
    assert aws.items(session_id) == items


def test_the_shared_fifo_batch_event_is_processed_in_order(
    aws, make_store, make_agent, session_handler, load_event, lambda_context, owner, fifo, clock
):
    url, _ = fifo
    event = load_event("sessions/fifo-batch.json")
    session_id = event["Records"][0]["attributes"]["MessageGroupId"]
    # The session of the shared event, as POST /sessions would have created it:
    aws.dynamodb.put_item(
        TableName=aws.table,
        Item={
            "pk": {"S": session_id},
            "sk": {"S": "~meta"},
            "owner": {"S": owner},
            "turns": {"N": "0"},
            "created_at": {"N": str(int(clock.now))},
            "updated_at": {"N": str(int(clock.now))},
            "expires_at": {"N": str(int(clock.now) + 86_400)},
        },
    )
    worker = session_handler("session_worker", concurrency="enqueue", queue_url=url)

    result = worker.handler(event, lambda_context)

    assert result == {"batchItemFailures": []}
    turns = make_store().read_page(session_id, owner=owner, limit=10, cursor=None).turns
    assert [(t.user_text, t.answer) for t in turns] == [
        ("My name is Ada", "Noted: your name is Ada."),
        ("What is my name?", "Your name is Ada."),
    ]


class RivalTurnModel(LocalModel):
    """The local model; on its first call another turn of the same session is committed, so this one conflicts."""

    def __init__(self) -> None:
        self.rival = None
        self.calls = 0

    def converse(self, **request: Any) -> Any:
        self.calls += 1
        if self.rival is not None:
            rival, self.rival = self.rival, None
            rival()
        return super().converse(**request)


def test_a_queued_turn_that_conflicts_is_read_again_and_retried(
    aws,
    fifo,
    enqueue_app,
    make_store,
    make_agent,
    create_session,
    send,
    session_handler,
    receive,
    sqs_event,
    lambda_context,
    owner,
    monkeypatch,
):
    url, arn = fifo
    session_id = create_session(enqueue_app)
    accepted = send(enqueue_app, session_id, "What is my name?")
    worker = session_handler("session_worker", concurrency="enqueue", queue_url=url)
    model = RivalTurnModel()
    monkeypatch.setattr(worker.sessions, "agents", make_agent(make_store(), model=model).agents)
    rival = make_agent(make_store())
    model.rival = lambda: rival.take_turn(session_id, owner=owner, message="My name is Ada")

    result = worker.handler(sqs_event(receive(aws.sqs, url), arn), lambda_context)

    assert result == {"batchItemFailures": []}
    assert model.calls == 2  # the first run lost the race, the second ran on the new history
    turns = make_store().read_page(session_id, owner=owner, limit=10, cursor=None).turns
    assert [(t.number, t.user_text, t.message_id) for t in turns] == [
        (1, "My name is Ada", None),
        (2, "What is my name?", accepted.body["message_id"]),
    ]
    assert turns[1].answer == "Your name is Ada."


def test_a_message_to_an_unknown_model_is_refused_before_it_is_queued(aws, fifo, enqueue_app, create_session, api_event, call):
    url, _ = fifo
    session_id = create_session(enqueue_app)

    reply = call(
        enqueue_app, api_event("send-message", session_id=session_id, body={"message": "hi", "model": "bedrock:secret-model"})
    )

    assert (reply.status, reply.body["error"]) == (400, "unknown_model")
    assert aws.sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_a_message_to_a_session_that_does_not_exist_is_refused_before_it_is_queued(aws, fifo, enqueue_app, send):
    url, _ = fifo

    reply = send(enqueue_app, "0" * 32, "hi")

    assert (reply.status, reply.body["error"]) == (404, "session_not_found")
    assert aws.sqs.receive_message(QueueUrl=url).get("Messages", []) == []


# -- crash mid-turn --------------------------------------------------------------------------------


class ProcessDied(Exception):
    """Stands for the Lambda environment dying between the model's answer and the commit."""


class CrashingCommits(DynamoDBSessionStore):
    """The DynamoDB store; its next ``crashes`` commits die, before (``after=False``) or after the write."""

    crashes = 0
    after = False

    def commit_turn(self, *args: Any, **kwargs: Any) -> Any:
        if self.crashes:
            self.crashes -= 1
            if self.after:
                super().commit_turn(*args, **kwargs)
            raise ProcessDied("the execution environment went away")
        return super().commit_turn(*args, **kwargs)


def test_a_turn_that_dies_before_its_commit_leaves_the_session_readable_and_unchanged_and_can_be_sent_again(
    aws, make_store, make_agent, make_app, create_session, send, api_event, call
):
    store = make_store(cls=CrashingCommits)
    app = make_app(make_agent(store))
    session_id = create_session(app)
    send(app, session_id, "My name is Ada")
    items = aws.items(session_id)
    store.crashes = 1

    crashed = send(app, session_id, "What is my name?")

    assert (crashed.status, crashed.body["error"]) == (500, "internal_error")
    assert "went away" not in crashed.raw
    assert aws.items(session_id) == items
    page = call(app, api_event("get-session", session_id=session_id)).body
    assert (page["turns"], len(page["history"])) == (1, 1)
    retried = send(app, session_id, "What is my name?")
    assert (retried.status, retried.body["turn"], retried.body["answer"]) == (200, 2, "Your name is Ada.")


@pytest.mark.parametrize("after", [False, True], ids=["died-before-commit", "died-after-commit"])
def test_a_queued_turn_whose_worker_died_is_retried_once_and_never_duplicated(
    aws,
    fifo,
    enqueue_app,
    make_store,
    create_session,
    send,
    session_handler,
    receive,
    sqs_event,
    lambda_context,
    owner,
    monkeypatch,
    after,
):
    url, arn = fifo
    session_id, other = create_session(enqueue_app), create_session(enqueue_app)
    send(enqueue_app, session_id, "My name is Ada")
    send(enqueue_app, session_id, "What is my name?")
    send(enqueue_app, other, "Calculate 6 * 7")
    event = sqs_event(receive(aws.sqs, url), arn)
    worker = session_handler("session_worker", concurrency="enqueue", queue_url=url)
    crashing = make_store(cls=CrashingCommits)
    crashing.crashes, crashing.after = 1, after
    monkeypatch.setattr(worker.sessions, "store", crashing)

    first = worker.handler(event, lambda_context)
    failed = {f["itemIdentifier"] for f in first["batchItemFailures"]}
    retry = worker.handler({"Records": [r for r in event["Records"] if r["messageId"] in failed]}, lambda_context)

    # The group stops at the failed record, so the message after it comes back too, in order; the other group goes on.
    assert failed == {r["messageId"] for r in event["Records"] if r["attributes"]["MessageGroupId"] == session_id}
    assert len(failed) == 2
    assert retry == {"batchItemFailures": []}
    turns = make_store().read_page(session_id, owner=owner, limit=10, cursor=None).turns
    assert [(t.number, t.user_text) for t in turns] == [(1, "My name is Ada"), (2, "What is my name?")]
    assert turns[1].answer == "Your name is Ada."
    assert [t.user_text for t in make_store().read_page(other, owner=owner, limit=10, cursor=None).turns] == ["Calculate 6 * 7"]


def test_a_batch_whose_every_record_failed_raises_so_lambda_retries_all_of_it(
    aws,
    fifo,
    enqueue_app,
    make_store,
    create_session,
    send,
    session_handler,
    receive,
    sqs_event,
    lambda_context,
    owner,
    monkeypatch,
):
    url, arn = fifo
    session_id = create_session(enqueue_app)
    send(enqueue_app, session_id, "My name is Ada")
    event = sqs_event(receive(aws.sqs, url), arn)
    worker = session_handler("session_worker", concurrency="enqueue", queue_url=url)
    crashing = make_store(cls=CrashingCommits)
    crashing.crashes = 1
    monkeypatch.setattr(worker.sessions, "store", crashing)

    with pytest.raises(BatchProcessingError):
        worker.handler(event, lambda_context)
    retry = worker.handler(event, lambda_context)

    assert retry == {"batchItemFailures": []}
    assert [t.user_text for t in make_store().read_page(session_id, owner=owner, limit=10, cursor=None).turns] == [
        "My name is Ada"
    ]
