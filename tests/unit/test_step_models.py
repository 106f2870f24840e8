"""A model per kind of step (``AGENT_STEP_MODELS``): settings, the agent version, and which model a step runs on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.version import agent_version
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.models.registry import ProviderFactory
from agentrail_runtime.service import AgentService

DEFINITION = AgentDefinition(name="supervisor", system_prompt="Plan, then review.")


class NamedLocal(LocalModel):
    """The local model under another model's name: which provider a step got is then visible."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class Providers(ProviderFactory):
    def _create(self, spec):  # type: ignore[no-untyped-def]
        return NamedLocal(spec.canonical)


def test_step_models_are_read_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_STEP_MODELS", '{"routing": "bedrock:amazon.nova-micro-v1:0", "review": "local"}')

    settings = RuntimeSettings()

    assert settings.step_models == {"routing": "bedrock:amazon.nova-micro-v1:0", "review": "local"}


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ('{"summary": "local"}', "AGENT_STEP_MODELS: step_models names an unknown kind of step 'summary'"),
        ('{"planning": "gpt-4o"}', "AGENT_STEP_MODELS: step_models['planning'] is 'gpt-4o'"),
        ('{"planning": "openai:gpt-4o-mini"}', "openai models need AGENT_OPENAI_API_KEY_SECRET"),
    ],
)
def test_a_wrong_step_model_fails_at_cold_start_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str, sentence: str
) -> None:
    monkeypatch.setenv("AGENT_STEP_MODELS", value)

    with pytest.raises(ValidationError, match=sentence.replace("[", r"\[").replace("]", r"\]")):
        RuntimeSettings()


def test_each_step_runs_on_its_own_model_and_every_other_on_the_default() -> None:
    settings = RuntimeSettings(model="bedrock:amazon.nova-pro-v1:0", step_models={"planning": "bedrock:amazon.nova-micro-v1:0"})
    service = AgentService(definition=DEFINITION, settings=settings, providers=Providers())

    assert service.agent(step="planning").model.name == "bedrock:amazon.nova-micro-v1:0"
    assert service.agent(step="review").model.name == "bedrock:amazon.nova-pro-v1:0"
    assert service.agent().model.name == "bedrock:amazon.nova-pro-v1:0"
    # A model the caller names wins over the step's.
    assert service.agent("bedrock:amazon.nova-pro-v1:0", step="planning").model.name == "bedrock:amazon.nova-pro-v1:0"


def test_step_models_change_the_agent_version_and_an_agent_without_them_keeps_its_own() -> None:
    plain = RuntimeSettings(model="local")
    stepped = RuntimeSettings(model="local", step_models={"routing": "bedrock:amazon.nova-micro-v1:0"})
    other = RuntimeSettings(model="local", step_models={"routing": "bedrock:amazon.nova-lite-v1:0"})

    versions = {agent_version(DEFINITION, s) for s in (plain, stepped, other)}

    assert len(versions) == 3
    assert agent_version(DEFINITION, RuntimeSettings(model="local", step_models={})) == agent_version(DEFINITION, plain)
