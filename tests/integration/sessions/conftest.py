"""Fixtures of the session tests: the SessionTable and offload bucket in moto, the sessions app, API events and SQS batches."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentrail_runtime.api.sessions import create_sessions_app
from agentrail_runtime.clock import Clock
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.service import AgentService
from agentrail_runtime.sessions import DynamoDBSessionStore, S3TurnOffload, SessionAgent
from agentrail_runtime.sessions.dynamodb import OWNER_INDEX
from agentrail_runtime.sessions.settings import SessionSettings
from tests.integration.conftest import create_table

TABLE = "agentrail-sessions"
BUCKET = "agentrail-session-offload"
FIFO_QUEUE = "agentrail-session-turns.fifo"
#: The partition key of the table's owner index (the construct declares the same).
SESSION_OWNER_INDEX_KEY = "owner"


@dataclass
class Aws:
    """The moto account of a session test."""

    dynamodb: Any
    s3: Any
    sqs: Any
    table: str = TABLE
    bucket: str = BUCKET

    def items(self, session_id: str | None = None) -> list[dict[str, Any]]:
        """Every item of the table (or of one session), by a real Scan."""
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.table)
        items = [item for page in pages for item in page["Items"]]
        return [i for i in items if session_id is None or i["pk"]["S"] == session_id]

    def sort_keys(self, session_id: str) -> list[str]:
        return sorted(item["sk"]["S"] for item in self.items(session_id))

    def objects(self, prefix: str = "") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for o in listed.get("Contents", [])]

    def fifo_queue(self) -> str:
        return self.sqs.create_queue(QueueName=FIFO_QUEUE, Attributes={"FifoQueue": "true", "VisibilityTimeout": "0"})["QueueUrl"]


@pytest.fixture
def aws() -> Iterator[Aws]:
    """The SessionTable with the construct's key schema (pk, sk strings; TTL ``expires_at``; the keys-only ``by_owner``
    index) and the offload bucket."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_table(dynamodb, TABLE, "pk", "sk", indexes={OWNER_INDEX: SESSION_OWNER_INDEX_KEY}, ttl="expires_at")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        yield Aws(dynamodb=dynamodb, s3=s3, sqs=boto3.client("sqs"))


@pytest.fixture
def make_store(aws: Aws, clock: Clock) -> Callable[..., DynamoDBSessionStore]:
    """A DynamoDB session store on the moto table; ``offload=True`` adds the S3 bucket."""

    def build(
        *, offload: bool = False, cls: type[DynamoDBSessionStore] = DynamoDBSessionStore, **options: Any
    ) -> DynamoDBSessionStore:
        return cls(
            TABLE,
            client=aws.dynamodb,
            clock=clock,
            offload=S3TurnOffload(BUCKET, client=aws.s3) if offload else None,
            **options,
        )

    return build


#: Another caller (an assumed role of a partner account): never the owner of the sessions the tests create.
MALLORY = {"userArn": "arn:aws:sts::123456789012:assumed-role/agentrail-partner/mallory"}


@pytest.fixture
def app(make_store, make_agent, make_app) -> Any:
    """The sessions API over a session agent on the moto table (a module overrides it for other store options)."""
    return make_app(make_agent(make_store()))


@pytest.fixture
def make_agent(agent_env, agents_with, clock: Clock) -> Callable[..., SessionAgent]:
    """A session agent over ``store``, with the demo definition (or ``definition``) and the local model (or ``model``)."""

    def build(
        store: DynamoDBSessionStore, *, model: Any = None, definition: Any = demo_definition, **settings: Any
    ) -> SessionAgent:
        if model is not None:
            agents = agents_with(model, definition=definition, **settings)
        else:
            agents = AgentService(definition=definition, settings=RuntimeSettings(**settings))
        return SessionAgent(store=store, agents=agents, clock=clock)

    return build


@pytest.fixture
def make_app(agent_env) -> Callable[..., Any]:
    """The sessions API over an injected session agent (``concurrency`` and ``queue_url`` for the enqueue policy;
    ``shadow``: its shadow sampler)."""

    def build(sessions: SessionAgent, *, queue_client: Any = None, shadow: Any = None, **session_settings: Any) -> Any:
        return create_sessions_app(
            sessions=sessions,
            settings=sessions.agents.settings,
            session_settings=SessionSettings(table=TABLE, **session_settings),
            queue_client=queue_client,
            shadow=shadow,
        )

    return build


@pytest.fixture
def api_event(load_event, aimed_event) -> Callable[..., dict[str, Any]]:
    """An events/sessions/<name>.json event, aimed at ``session_id``, with another body, caller or query if given.

    ``caller`` is an ``identity``/``authorizer`` override: ``{"userArn": ...}``,
    ``{"apiKeyId": ...}`` or ``{"sub": ...}`` (a Cognito user pool authorizer).
    """

    def build(
        name: str,
        *,
        session_id: str | None = None,
        body: Any = ...,
        caller: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        path = {"session_id": session_id} if session_id is not None else None
        event = aimed_event(load_event(f"sessions/{name}.json"), path_parameters=path, body=body, query=query)
        if request_id is not None:
            event["requestContext"]["requestId"] = request_id
        if caller is not None:
            identity = event["requestContext"]["identity"]
            identity["userArn"] = caller.get("userArn")
            identity["apiKeyId"] = caller.get("apiKeyId")
            if "sub" in caller:
                event["requestContext"]["authorizer"] = {"claims": {"sub": caller["sub"]}}
        return event

    return build


@pytest.fixture
def create_session(api_event, call) -> Callable[..., str]:
    """``POST /sessions`` through ``app``; returns the new session id."""

    def create(app: Any, *, state: dict[str, Any] | None = None, caller: dict[str, str] | None = None) -> str:
        reply = call(app, api_event("create-session", body={"state": state} if state is not None else None, caller=caller))
        assert reply.status == 201, reply.body
        return reply.body["session_id"]

    return create


@pytest.fixture
def send(api_event, call) -> Callable[..., Any]:
    """``POST /sessions/{id}/messages`` with ``message`` through ``app``."""

    def post(app: Any, session_id: str, message: str, **overrides: Any) -> Any:
        return call(app, api_event("send-message", session_id=session_id, body={"message": message}, **overrides))

    return post


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Everything visible on the queue now, with the attributes a Lambda event carries."""
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], AttributeNames=["All"]
    )
    return received.get("Messages", [])


@pytest.fixture
def receive() -> Callable[[Any, str], list[dict[str, Any]]]:
    return receive_all


@pytest.fixture
def session_handler(handler_module) -> Callable[..., Any]:
    """``agentrail_handlers.<name>.app`` initialized with the given ``AGENT_SESSION_*`` settings (moto must be running)."""

    def initialized(name: str, **settings: str) -> Any:
        environment = {"TABLE": TABLE} | {key.upper(): value for key, value in settings.items()}
        return handler_module(name, {f"AGENT_SESSION_{key}": value for key, value in environment.items()})

    return initialized


class BarrierModel(LocalModel):
    """The local model, holding every call at a barrier: the turns waiting there have all read the same version."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier
        self.entered = threading.Event()

    def converse(self, **request: Any) -> Any:
        self.entered.set()
        self.barrier.wait(timeout=10)
        return super().converse(**request)


@pytest.fixture
def barrier_model() -> Callable[[int], BarrierModel]:
    return lambda parties: BarrierModel(threading.Barrier(parties))
