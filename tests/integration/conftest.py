"""Fixtures of the integration tier: handlers and providers against moto, botocore Stubber and httpx MockTransport."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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


def response_headers(response: dict) -> dict[str, str]:
    """Single-valued view of a REST (v1) proxy response's ``multiValueHeaders``."""
    return {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()} | (
        response.get("headers") or {}
    )


@pytest.fixture
def headers_of() -> Callable[[dict], dict[str, str]]:
    return response_headers
