"""The app's ``prompt_caching`` and ``step_models`` context keys reach the functions that run an agent."""

from __future__ import annotations

import json
from collections.abc import Callable

import aws_cdk as cdk
import pytest

from tests.infra.test_app_context_logging import agent_functions


def test_step_models_and_prompt_caching_reach_the_hierarchical_supervisor_and_its_grant(
    app_factory: Callable[..., cdk.App],
) -> None:
    app = app_factory(
        context={
            "patterns": "hierarchical",
            "model": "bedrock:amazon.nova-pro-v1:0",
            "step_models": "planning=bedrock:amazon.nova-micro-v1:0, review=bedrock:amazon.nova-lite-v1:0",
            "prompt_caching": "false",
        }
    )

    functions = agent_functions(app, "hierarchical")

    runs_agents = [p for p in functions.values() if p["Environment"]["Variables"]["AGENT_MODEL"] != "local"]
    assert runs_agents
    for properties in runs_agents:
        variables = properties["Environment"]["Variables"]
        assert json.loads(variables["AGENT_STEP_MODELS"]) == {
            "planning": "bedrock:amazon.nova-micro-v1:0",
            "review": "bedrock:amazon.nova-lite-v1:0",
        }
        assert variables["AGENT_PROMPT_CACHING"] == "false"


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ("routing", "context 'step_models' takes kind=model pairs, comma-separated; got 'routing'"),
        ("summary=local", "context step_models names an unknown kind of step 'summary'; choose from routing, planning, review"),
        ("routing=claude", "context step_models['routing'] is 'claude': use 'local', 'bedrock:<model-id>' or 'openai:<model>'"),
    ],
)
def test_a_wrong_step_models_context_fails_the_synth_in_one_sentence(
    app_factory: Callable[..., cdk.App], value: str, sentence: str
) -> None:
    app = app_factory(context={"patterns": "multiagent", "step_models": value})

    with pytest.raises(ValueError, match="step_models") as refused:
        agent_functions(app, "multiagent")

    assert str(refused.value) == sentence
