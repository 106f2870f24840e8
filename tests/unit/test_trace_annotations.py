"""Trace annotations of the agent loop: the ``## model`` and ``## tool`` subsegments carry the agent, its version, the
model or tool and the tokens, so traces are searchable by agent and version (the real X-Ray SDK recorder)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_xray_sdk import global_sdk_config

from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.observability import tracer
from agentrail_runtime.service import AgentService


class KeptEntities:
    """An emitter that keeps what the recorder would send to the X-Ray daemon."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send_entity(self, entity: Any) -> None:
        self.sent.append(entity)

    def set_daemon_address(self, address: str | None) -> None:
        pass


@pytest.fixture
def segment() -> Iterator[Any]:
    """A segment opened on the X-Ray SDK's recorder, put in as the runtime Tracer's provider for the test (with
    tracing off, as in the suite, the Tracer has a provider that records nothing), with the SDK on."""
    from aws_xray_sdk.core import xray_recorder as recorder

    untraced = tracer.provider
    tracer.provider = recorder
    previous = (global_sdk_config.sdk_enabled(), recorder.emitter, recorder.streaming_threshold)
    global_sdk_config.set_sdk_enabled(True)
    recorder.configure(emitter=KeptEntities(), sampling=False, context_missing="LOG_ERROR", streaming_threshold=1000)
    opened = recorder.begin_segment("agent-metrics-test")
    try:
        yield opened
    finally:
        recorder.end_segment()
        recorder.configure(emitter=previous[1], streaming_threshold=previous[2])
        global_sdk_config.set_sdk_enabled(previous[0])
        tracer.provider = untraced


def test_model_and_tool_subsegments_are_annotated_with_agent_version_model_tool_and_tokens(segment):
    agents = AgentService(definition=demo_definition, settings=RuntimeSettings())

    result = agents.run("Calculate (12 + 30) * 2 and convert 10 km to mi")

    subsegments = {s.name: [] for s in segment.subsegments}
    for s in segment.subsegments:
        subsegments[s.name].append(s.annotations)
    models = subsegments["## model"]
    assert len(models) == result.steps
    assert all(a["agent"] == demo_definition.name and a["agent_version"] == agents.version for a in models)
    assert all(a["model"] == result.model for a in models)
    assert sum(a["input_tokens"] for a in models) == result.usage.input_tokens
    assert sum(a["output_tokens"] for a in models) == result.usage.output_tokens
    [calculator] = subsegments["## tool calculator"]
    assert calculator == {"tool": "calculator", "agent": demo_definition.name, "agent_version": agents.version}
