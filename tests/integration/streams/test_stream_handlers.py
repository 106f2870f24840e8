"""The deployed streaming handlers, driven by the shared events (``events/streaming/``) against moto.

Each handler module is imported with the environment the ``StreamingApi`` construct gives its function; the stage's
``@connections`` API is answered by a botocore ``before-send`` hook on the publishers' real clients, so each post goes
through boto3's serialization and error parsing (200, or 410 ``GoneException``).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from agentrail_local.apigateway.websocket import (
    ConnectionInfo,
    WebSocketApi,
    WebSocketStage,
    authorizer_event,
    connect_event,
    disconnect_event,
    message_event,
)
from agentrail_runtime import contract
from agentrail_runtime.streaming import ConnectTickets, load_stream_settings
from tests.integration.conftest import OWNER
from tests.integration.streams.conftest import CONNECTIONS, EVENTS, SESSION_TABLE, STAGE_URL, TICKETS, Aws

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

#: The placeholders of the streaming events (see events/README.md).
SESSION_PLACEHOLDER = "3f9c2a7e5b1d4c8e9a0b6d2f7e4c1a95"
TICKET_PLACEHOLDER = "TICKETPLACEHOLDERissuedByPOSTsessionsTicket"
#: The connection of every ``events/streaming`` WebSocket event.
CONNECTION_ID = "Xyz8bcMqIAMCLzQ="
STREAM_QUEUE = "agentrail-stream-turns"
POST_EVENT = "before-send.apigatewaymanagementapi.PostToConnection"


class _Body:
    """The raw body of a canned HTTP response, as botocore reads it."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


@dataclass
class StageHook:
    """Answers ``PostToConnection`` in place of the stage: 410 ``GoneException`` for the connections in ``gone``,
    else 200, recording each delivered post (its connection id and its JSON body)."""

    gone: set[str] = field(default_factory=set)
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        connection_id = unquote(urlsplit(request.url).path.rsplit("/@connections/", 1)[1])
        if connection_id in self.gone:
            body = json.dumps({"message": None}).encode()
            headers = {"x-amzn-ErrorType": "GoneException", "Content-Type": "application/json"}
            return AWSResponse(request.url, 410, HTTPHeaders.from_dict(headers), _Body(body))
        with self._lock:
            self.posts.append((connection_id, json.loads(request.body)))
        return AWSResponse(request.url, 200, HTTPHeaders(), _Body(b""))

    def posts_to(self, connection_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for to, body in self.posts if to == connection_id]


def replaced(event: dict[str, Any], *pairs: tuple[str, str]) -> dict[str, Any]:
    """A copy of ``event`` with each placeholder replaced, wherever it occurs (also inside JSON bodies)."""
    text = json.dumps(event)
    for placeholder, value in pairs:
        text = text.replace(placeholder, value)
    return json.loads(text)


@contextmanager
def answering_posts(stage: StageHook, *modules: ModuleType) -> Iterator[StageHook]:
    """``stage`` answers the posts of each handler module's publisher while the block runs. The modules stay imported
    for later tests (a warm execution environment), so the hook comes off their clients afterwards."""
    clients = [(m.socket if hasattr(m, "socket") else m.turns).publisher.client for m in modules]
    for client in clients:
        client.meta.events.register_first(POST_EVENT, stage)
    try:
        yield stage
    finally:
        for client in clients:
            client.meta.events.unregister(POST_EVENT, stage)


@dataclass
class StreamingFunctions:
    """The three streaming handler modules as deployed, the moto account and the stage answering their posts."""

    authorizer: ModuleType
    socket: ModuleType
    worker: ModuleType
    stage: StageHook
    queue_url: str
    session_id: str
    load_event: Callable[[str], dict[str, Any]]
    context: Any

    def event(self, name: str, **values: str) -> dict[str, Any]:
        pairs = [(SESSION_PLACEHOLDER, values.get("session_id", self.session_id))]
        if "ticket" in values:
            pairs.append((TICKET_PLACEHOLDER, values["ticket"]))
        return replaced(copy.deepcopy(self.load_event(f"streaming/{name}")), *pairs)

    def on_socket(self, name: str, **values: str) -> dict[str, Any]:
        return self.socket.handler(self.event(name, **values), self.context)


@pytest.fixture
def functions(aws: Aws, store, handler_module, load_event, lambda_context) -> Iterator[StreamingFunctions]:
    """The authorizer, the socket function and the ``reject`` policy's worker, each imported with the environment the
    ``StreamingApi`` construct sets (ticket auth), over the moto tables and stream queue; and the caller's session."""
    queue_url = aws.queue(STREAM_QUEUE)
    session = {"AGENT_SESSION_TABLE": SESSION_TABLE, "AGENT_SESSION_CONCURRENCY": "reject"}
    streaming = {
        contract.STREAM_CONNECTION_TABLE_ENV: CONNECTIONS,
        contract.STREAM_EVENT_TABLE_ENV: EVENTS,
        "AGENT_STREAM_EVENT_TTL_SECONDS": "3600",
        contract.STREAM_CONNECTIONS_URL_ENV: STAGE_URL,
    }
    environments = {
        "stream_authorizer": {contract.STREAM_TICKET_TABLE_ENV: TICKETS},
        "stream_socket": session
        | streaming
        | {contract.STREAM_QUEUE_URL_ENV: queue_url, "AGENT_STREAM_TURN_LEASE_SECONDS": "960"},
        "stream_worker": session | streaming,
    }
    modules = {}
    for name, environment in environments.items():
        # handler_module does not clear the AGENT_STREAM_* settings' cache: each function reads its own.
        load_stream_settings.cache_clear()
        modules[name] = handler_module(name, environment, exclusive=True)
    load_stream_settings.cache_clear()
    stage = StageHook()
    with answering_posts(stage, modules["stream_socket"], modules["stream_worker"]):
        yield StreamingFunctions(
            authorizer=modules["stream_authorizer"],
            socket=modules["stream_socket"],
            worker=modules["stream_worker"],
            stage=stage,
            queue_url=queue_url,
            session_id=store.create(owner=OWNER).session_id,
            load_event=load_event,
            context=lambda_context,
        )


def local_mode_events() -> dict[str, dict[str, Any]]:
    """What local mode's WebSocket API sends for each kind of event, with an authorizer's context on the connection."""
    api = WebSocketApi(
        stack_name="Agentrail-Stateful",
        logical_id="StreamingApi",
        api_id="a1b2c3d4e5",
        name="streaming",
        route_selection_expression="$request.body.action",
        routes={},
        stages={"prod": WebSocketStage(name="prod")},
    )
    info = ConnectionInfo(
        api=api,
        stage="prod",
        connection_id=CONNECTION_ID,
        connected_at_ms=1_795_860_000_000,
        domain_name="a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        source_ip="203.0.113.10",
        user_agent="agentrail-client/1.0",
        headers={"Host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"},
        multi_headers={"Host": ["a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"]},
        query={"ticket": TICKET_PLACEHOLDER},
        multi_query={"ticket": [TICKET_PLACEHOLDER]},
    )
    at = {"now_ms": 1_795_860_001_000}
    authorizer = authorizer_event(info, request_id="r1", **at)
    info.authorizer = {"principalId": OWNER, "principal": OWNER, "session_id": SESSION_PLACEHOLDER}
    return {
        "authorizer": authorizer,
        "connect": connect_event(info, request_id="r2", **at),
        "message": message_event(info, "sendMessage", "{}", request_id="r3", **at),
        "disconnect": disconnect_event(info, status_code=1000, reason="Client closed the connection", **at),
    }


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("authorizer-connect.json", "authorizer"),
        ("connect-ticket.json", "connect"),
        ("connect-iam.json", "connect"),
        ("send-message.json", "message"),
        ("resume.json", "message"),
        ("default-malformed.json", "message"),
        ("default-unknown-action.json", "message"),
        ("disconnect.json", "disconnect"),
    ],
)
def test_each_websocket_event_has_the_fields_local_mode_sends_for_its_kind(load_event, name, kind):
    stored, local = load_event(f"streaming/{name}"), local_mode_events()[kind]

    assert stored.keys() == local.keys()
    context_keys = set(local["requestContext"])
    if name in ("authorizer-connect.json", "connect-iam.json"):  # no authorizer ran before these
        context_keys.discard("authorizer")
    assert set(stored["requestContext"]) == context_keys
    assert stored["requestContext"]["connectionId"] == CONNECTION_ID


def effect(answer: dict[str, Any]) -> str:
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    return statement["Effect"]


def connect_with_ticket(functions: StreamingFunctions) -> None:
    assert functions.on_socket("connect-ticket.json") == {"statusCode": 200}


def test_the_authorizer_allows_a_freshly_issued_ticket_with_its_principal_and_session_then_denies_it(aws, functions):
    # given: a ticket the REST API issued to the caller for its session
    issued = ConnectTickets(TICKETS, dynamodb=aws.dynamodb).issue(OWNER, session_id=functions.session_id)
    event = functions.event("authorizer-connect.json", ticket=issued.ticket)
    # when: the authorizer sees it at $connect
    first = functions.authorizer.handler(event, functions.context)
    # then: allowed on the event's method ARN, the principal and session in the context
    assert effect(first) == "Allow"
    assert first["policyDocument"]["Statement"][0]["Resource"] == event["methodArn"]
    assert first["principalId"] == OWNER
    assert first["context"] == {"principal": OWNER, "session_id": functions.session_id}
    # and the same ticket a second time is denied
    assert effect(functions.authorizer.handler(event, functions.context)) == "Deny"


def test_the_stored_authorizer_event_with_its_placeholder_ticket_is_denied(functions, load_event):
    answer = functions.authorizer.handler(load_event("streaming/authorizer-connect.json"), functions.context)

    assert effect(answer) == "Deny"
    assert answer["principalId"] == "anonymous"


def test_connect_after_the_authorizer_records_the_connection_under_the_tickets_principal_and_session(aws, functions):
    connect_with_ticket(functions)

    (item,) = aws.scan(CONNECTIONS)
    assert item[contract.STREAM_CONNECTION_KEY] == {"S": CONNECTION_ID}
    assert item[contract.STREAM_OWNER_ATTRIBUTE] == {"S": OWNER}
    assert item[contract.STREAM_SESSION_ATTRIBUTE] == {"S": functions.session_id}


def test_connect_signed_with_iam_records_the_connection_under_the_callers_role(aws, functions):
    assert functions.on_socket("connect-iam.json") == {"statusCode": 200}

    (item,) = aws.scan(CONNECTIONS)
    assert item[contract.STREAM_OWNER_ATTRIBUTE] == {"S": OWNER}
    assert contract.STREAM_SESSION_ATTRIBUTE not in item


def test_send_message_answers_accepted_and_queues_the_streamed_turn_that_worker_batch_json_carries(aws, functions):
    # given: a connection through the ticket authorizer
    connect_with_ticket(functions)
    sent = functions.event("send-message.json")
    # when: the client sends its message
    reply = functions.socket.handler(sent, functions.context)
    # then: accepted at once, named by the frame's message id and the request's id
    frame = json.loads(sent["body"])
    assert reply["statusCode"] == 200
    assert json.loads(reply["body"]) == {
        "type": "accepted",
        "session_id": functions.session_id,
        "message_id": frame["message_id"],
        "correlation_id": sent["requestContext"]["requestId"],
    }
    # and the stream queue holds exactly the body the worker's shared event carries
    (queued,) = aws.received(functions.queue_url)
    (record,) = functions.event("worker-batch.json")["Records"]
    assert json.loads(queued["Body"]) == json.loads(record["body"])


def test_the_worker_streams_numbered_events_ending_in_final_to_the_connection_and_stores_the_turn(aws, functions, store):
    # given: the caller connected and its message accepted (the session's slot reserved for it)
    connect_with_ticket(functions)
    functions.on_socket("send-message.json")
    batch = functions.event("worker-batch.json")
    (record,) = batch["Records"]
    queued = json.loads(record["body"])
    # when: the worker takes the queued turn
    result = functions.worker.handler(batch, functions.context)
    # then: nothing to retry
    assert result == {"batchItemFailures": []}
    # and the connection got the turn's events, numbered one after another, the last one final
    posts = functions.stage.posts_to(CONNECTION_ID)
    ids = [post["event_id"] for post in posts]
    assert len(ids) > 1
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert posts[-1]["type"] == "final"
    assert posts[-1]["answer"] == "calculator returned 84."
    assert {post["message_id"] for post in posts} == {queued["message_id"]}
    # and the turn is stored
    (turn,) = store.load_window(functions.session_id, owner=OWNER).turns
    assert (turn.message_id, turn.answer) == (queued["message_id"], "calculator returned 84.")


def test_resume_replays_the_streamed_events_in_order_and_answers_resumed(functions):
    # given: a turn streamed to the connection
    connect_with_ticket(functions)
    functions.on_socket("send-message.json")
    functions.worker.handler(functions.event("worker-batch.json"), functions.context)
    live = functions.stage.posts_to(CONNECTION_ID)
    functions.stage.posts.clear()
    # when: the client resumes from event 0
    reply = functions.on_socket("resume.json")
    # then: the same events again, in order, and the last id in the reply
    assert functions.stage.posts_to(CONNECTION_ID) == live
    assert reply["statusCode"] == 200
    assert json.loads(reply["body"]) == {
        "type": "resumed",
        "session_id": functions.session_id,
        "last_event_id": live[-1]["event_id"],
        "gap": False,
    }


def test_resume_to_a_gone_connection_posts_nothing_more_and_forgets_the_connection(aws, functions):
    connect_with_ticket(functions)
    functions.on_socket("send-message.json")
    functions.worker.handler(functions.event("worker-batch.json"), functions.context)
    functions.stage.gone.add(CONNECTION_ID)

    reply = functions.on_socket("resume.json")

    assert json.loads(reply["body"])["last_event_id"] == 0
    assert aws.scan(CONNECTIONS) == []


@pytest.mark.parametrize(
    ("name", "code"), [("default-malformed.json", "malformed_frame"), ("default-unknown-action.json", "unknown_action")]
)
def test_a_bad_frame_on_default_gets_an_error_body_with_status_200_and_queues_nothing(aws, functions, name, code):
    connect_with_ticket(functions)

    reply = functions.on_socket(name)

    assert reply["statusCode"] == 200
    body = json.loads(reply["body"])
    assert (body["type"], body["code"]) == ("error", code)
    assert aws.received(functions.queue_url) == []


def test_disconnect_deletes_the_connection(aws, functions):
    connect_with_ticket(functions)

    assert functions.on_socket("disconnect.json") == {"statusCode": 200}

    assert aws.scan(CONNECTIONS) == []


def test_a_worker_record_that_is_no_queued_message_beside_a_good_one_is_the_only_one_reported_for_retry(functions, store):
    # given: the queued turn of worker-batch.json, and beside it a record whose body is no QueuedMessage
    connect_with_ticket(functions)
    functions.on_socket("send-message.json")
    batch = functions.event("worker-batch.json")
    (good,) = batch["Records"]
    bad = {**good, "messageId": "7c3a9e51-2b4d-4f6a-8e0c-1d3f5a7b9c2e", "body": json.dumps({"not": "a message"})}
    batch["Records"].append(bad)
    # when: the worker takes the batch
    result = functions.worker.handler(batch, functions.context)
    # then: only the bad record is reported (SQS retries it, then moves it to the dead-letter queue)
    assert result == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    # and the good one's turn is stored
    assert [t.message_id for t in store.load_window(functions.session_id, owner=OWNER).turns] == [
        json.loads(good["body"])["message_id"]
    ]


def test_a_batch_of_one_record_that_is_no_queued_message_fails_the_invocation_so_sqs_retries_it(functions, store):
    # given: the worker's batch (the construct's batch size is 1) with a body that is no QueuedMessage
    batch = functions.event("worker-batch.json")
    (record,) = batch["Records"]
    record["body"] = json.dumps({"not": "a message"})
    # when: the worker takes it
    # then: Powertools fails the whole invocation (every record failed), so SQS retries it, then dead-letters it
    with pytest.raises(BatchProcessingError, match="All records failed"):
        functions.worker.handler(batch, functions.context)
    # and nothing was streamed or stored
    assert functions.stage.posts == []
    assert store.load_window(functions.session_id, owner=OWNER).turns == []


def test_under_enqueue_the_fifo_session_worker_streams_the_message_send_message_json_queued(
    aws, store, handler_module, load_event, lambda_context, sqs_event
):
    # given: the socket function and the sessions' FIFO worker as the construct sets them up under enqueue
    fifo_url = aws.fifo_queue()
    session = {
        "AGENT_SESSION_TABLE": SESSION_TABLE,
        "AGENT_SESSION_CONCURRENCY": "enqueue",
        "AGENT_SESSION_QUEUE_URL": fifo_url,
    }
    streaming = {
        contract.STREAM_CONNECTION_TABLE_ENV: CONNECTIONS,
        contract.STREAM_EVENT_TABLE_ENV: EVENTS,
        contract.STREAM_CONNECTIONS_URL_ENV: STAGE_URL,
    }
    load_stream_settings.cache_clear()
    socket = handler_module("stream_socket", session | streaming, exclusive=True)
    load_stream_settings.cache_clear()
    worker = handler_module("session_worker", session | streaming, exclusive=True)
    load_stream_settings.cache_clear()
    with answering_posts(StageHook(), socket, worker) as stage:
        session_id = store.create(owner=OWNER).session_id
        for name in ("connect-ticket.json", "send-message.json"):
            socket.handler(replaced(load_event(f"streaming/{name}"), (SESSION_PLACEHOLDER, session_id)), lambda_context)
        # when: the FIFO worker takes the message the socket queued
        queued = aws.received(fifo_url)
        arn = "arn:aws:sqs:us-east-1:123456789012:agentrail-session-turns.fifo"
        result = worker.handler(sqs_event(queued, arn), lambda_context)
        # then: it is the body of worker-batch.json, grouped by the session
        (message,) = queued
        (record,) = replaced(load_event("streaming/worker-batch.json"), (SESSION_PLACEHOLDER, session_id))["Records"]
        assert json.loads(message["Body"]) == json.loads(record["body"])
        assert message["Attributes"]["MessageGroupId"] == session_id
        # and its turn streamed to the connection, ending in final, and stored
        assert result == {"batchItemFailures": []}
        posts = stage.posts_to(CONNECTION_ID)
        assert posts[-1]["type"] == "final"
        (turn,) = store.load_window(session_id, owner=OWNER).turns
        assert turn.answer == posts[-1]["answer"] == "calculator returned 84."
