"""Fixtures of the integration tier: handlers and providers against moto, botocore Stubber and httpx MockTransport."""

from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest

from agentrail_local.awslambda.event_sources import sqs_event as lambda_sqs_event
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.models.base import ModelProvider
from agentrail_runtime.models.registry import ModelSpec, parse_model_spec
from agentrail_runtime.observability import metrics
from agentrail_runtime.service import AgentService

#: The caller of the shared API events (events/<pattern>/*.json), as principal_of names it.
OWNER = "iam:arn:aws:iam::123456789012:role/agentrail-caller"


@pytest.fixture(autouse=True)
def _no_metrics_left_over() -> Iterator[None]:
    # Apps built in tests emit into the function's Metrics without a handler to flush them;
    # Powertools keeps that metric set at class level, so it would leak into the next test.
    yield
    metrics.clear_metrics()


@pytest.fixture
def agent_env(env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any AGENT_* variable of the machine running the tests."""
    for name in [n for n in os.environ if n.startswith("AGENT_")]:
        env.delenv(name)
    return env


class FixedProviders:
    """Serves ready-made providers by model spec: the ``get`` that AgentService calls on its ProviderFactory."""

    def __init__(self, *providers: ModelProvider) -> None:
        self._providers = {provider.name: provider for provider in providers}

    def get(self, spec: str | ModelSpec) -> ModelProvider:
        parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
        return self._providers[parsed.canonical]


@pytest.fixture
def demo_service(agent_env) -> Callable[..., AgentService]:
    """Build the demo agent's service with the given settings and, optionally, ready-made providers."""

    def build(*providers: ModelProvider, **settings: Any) -> AgentService:
        return AgentService(
            definition=demo_definition,
            settings=RuntimeSettings(**settings),
            providers=FixedProviders(*providers) if providers else None,
        )

    return build


class EveryModel:
    """Serves one ready-made model whatever spec is asked for (a test model under any configured name)."""

    def __init__(self, model: ModelProvider) -> None:
        self.model = model

    def get(self, spec: str | ModelSpec) -> ModelProvider:
        return self.model


@pytest.fixture
def agents_with(agent_env) -> Callable[..., AgentService]:
    """An AgentService whose every model is ``model`` (and whose tools are ``definition``'s, the demo's by default)."""

    def build(model: ModelProvider, *, definition: Any = demo_definition, **settings: Any) -> AgentService:
        return AgentService(definition=definition, settings=RuntimeSettings(**settings), providers=EveryModel(model))

    return build


def response_headers(response: dict) -> dict[str, str]:
    """Single-valued view of a REST (v1) proxy response's ``multiValueHeaders``."""
    return {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()} | (
        response.get("headers") or {}
    )


@pytest.fixture
def headers_of() -> Callable[[dict], dict[str, str]]:
    return response_headers


@pytest.fixture
def sqs_event() -> Callable[[list[dict[str, Any]], str], dict[str, Any]]:
    """``sqs_event(messages, queue_arn)``: the event Lambda's SQS poller builds from received messages (events/*/…-batch.json).

    The one local mode's pollers build, in this tests' Region.
    """
    return functools.partial(lambda_sqs_event, region="us-east-1")


@pytest.fixture
def owner() -> str:
    """The principal of the caller of the shared API events (events/<pattern>/*.json)."""
    return OWNER


def aim_event(
    event: dict[str, Any],
    *,
    path_parameters: Mapping[str, str] | None = None,
    body: Any = ...,
    query: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of a REST (v1) proxy event with other path parameters, body or query string, where given.

    ``body`` other than a string or ``None`` (no body) is sent as JSON.
    """
    aimed = copy.deepcopy(event)
    if path_parameters:
        for name, value in path_parameters.items():
            template = aimed["pathParameters"][name]
            aimed["path"] = aimed["path"].replace(template, value)
            aimed["requestContext"]["path"] = aimed["requestContext"]["path"].replace(template, value)
        aimed["pathParameters"] = dict(path_parameters)
    if body is not ...:
        aimed["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    if query is not None:
        aimed["queryStringParameters"] = dict(query)
        aimed["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    return aimed


@pytest.fixture
def aimed_event() -> Callable[..., dict[str, Any]]:
    """``aimed_event(event, path_parameters=..., body=..., query=...)``: see :func:`aim_event`."""
    return aim_event


@dataclass
class Reply:
    """An API response as the tests read it: status, headers, the JSON body parsed, the raw body, and the event sent."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: str
    event: dict[str, Any] = field(repr=False)


@pytest.fixture
def call(lambda_context: Any) -> Callable[[Any, dict[str, Any]], Reply]:
    """``call(app, event)``: resolve a copy of ``event`` with ``app`` (a resolver or a handler function) and parse the response."""

    def invoke(app: Any, event: dict[str, Any]) -> Reply:
        resolve = app.resolve if hasattr(app, "resolve") else app
        response = resolve(copy.deepcopy(event), lambda_context)
        raw = response.get("body") or ""
        return Reply(response["statusCode"], response_headers(response), json.loads(raw) if raw else None, raw, event)

    return invoke


@dataclass(frozen=True)
class TaskEventCapture:
    """A queue that an EventBridge rule fills with every task event of a bus."""

    sqs: Any
    url: str

    def events(self) -> list[dict[str, Any]]:
        """The events delivered so far, each received once (they stay in flight for 30 s)."""
        events: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
            if not batch:
                return events
            events.extend(json.loads(m["Body"]) for m in batch)


def capture_task_events(bus: str, queue_name: str) -> TaskEventCapture:
    """Create the event bus ``bus`` and a rule sending its ``agentrail_runtime.tasks`` events to a new queue (moto must be running)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    events.create_event_bus(Name=bus)
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all-task-events", EventBusName=bus, EventPattern=json.dumps({"source": ["agentrail_runtime.tasks"]}))
    events.put_targets(Rule="all-task-events", EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
    return TaskEventCapture(sqs, url)


@pytest.fixture
def task_event_capture() -> Callable[[str, str], TaskEventCapture]:
    """``task_event_capture(bus, queue_name)``: see :func:`capture_task_events`."""
    return capture_task_events


_IMPORTED_HANDLERS: dict[tuple[str, tuple[tuple[str, str], ...]], ModuleType] = {}


@pytest.fixture
def handler_module(agent_env: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """``agentrail_handlers.<name>.app`` initialized under ``environment`` (moto must be running).

    The first request for a handler and environment imports the module afresh, as a cold start does
    (settings read, clients built); later tests reuse it, as a warm execution environment would, against
    their own moto account. ``exclusive`` also removes every other ``AGENT_*`` variable (another
    function's settings).
    """
    from agentrail_runtime.approvals.settings import load_approval_settings
    from agentrail_runtime.config import load_settings
    from agentrail_runtime.multiagent.settings import load_multi_settings
    from agentrail_runtime.sessions.settings import load_session_settings
    from agentrail_runtime.tasks.settings import load_task_settings

    caches = (load_settings, load_session_settings, load_task_settings, load_approval_settings, load_multi_settings)

    def load(name: str, environment: dict[str, str], *, exclusive: bool = False) -> ModuleType:
        if exclusive:
            for stale in [k for k in os.environ if k.startswith("AGENT_") and k not in environment]:
                agent_env.delenv(stale)
        for key, value in environment.items():
            agent_env.setenv(key, value)
        key = (name, tuple(sorted(environment.items())))
        if key not in _IMPORTED_HANDLERS:
            for cache in caches:
                cache.cache_clear()
            module_name = f"agentrail_handlers.{name}.app"
            sys.modules.pop(module_name, None)
            try:
                _IMPORTED_HANDLERS[key] = importlib.import_module(module_name)
            finally:
                # Other tests import the handler under their own settings.
                sys.modules.pop(module_name, None)
                for cache in caches:
                    cache.cache_clear()
        return _IMPORTED_HANDLERS[key]

    return load
