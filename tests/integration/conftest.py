"""Fixtures of the integration tier: handlers and providers against moto, botocore Stubber and httpx MockTransport."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from agentrail.config import RuntimeSettings
from agentrail.demo import definition as demo_definition
from agentrail.models.base import ModelProvider
from agentrail.models.registry import ModelSpec, parse_model_spec
from agentrail.observability import metrics
from agentrail.service import AgentService


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
    """The event Lambda's SQS poller builds from messages received with all attributes (events/*/…-batch.json)."""
    return lambda_sqs_event


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


_IMPORTED_HANDLERS: dict[tuple[str, tuple[tuple[str, str], ...]], ModuleType] = {}


@pytest.fixture
def handler_module(agent_env: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """``agentrail_handlers.<name>.app`` initialized under ``environment`` (moto must be running).

    The first request for a handler and environment imports the module afresh, as a cold start does
    (settings read, clients built); later tests reuse it, as a warm execution environment would, against
    their own moto account. ``exclusive`` also removes every other ``AGENT_*`` variable (another
    function's settings).
    """
    from agentrail.approvals.settings import load_approval_settings
    from agentrail.config import load_settings
    from agentrail.multiagent.settings import load_multi_settings
    from agentrail.sessions.settings import load_session_settings
    from agentrail.tasks.settings import load_task_settings

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
