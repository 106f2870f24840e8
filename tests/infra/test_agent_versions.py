"""The agent version stamped at synth: ``AGENT_VERSION`` in the environment and on the ``live`` alias's version."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from agentrail_constructs import AgentFunction, AgentFunctionOptions, agent_version
from tests.infra.conftest import TEST_ENV, SynthesizedStack

AGENT_MODULE = """
from agentrail_runtime.agent import AgentDefinition, prompt_from_file

definition = AgentDefinition(name="support", system_prompt=prompt_from_file("prompts/support.md", beside=__file__))
"""


def synth(app_factory: Callable[..., cdk.App], **options: object) -> tuple[dict[str, str], dict[str, dict]]:
    """The function's environment and its published versions, of a fresh app (as a new ``cdk synth`` would give)."""
    stack = cdk.Stack(app_factory(), "Test", env=TEST_ENV)
    options.setdefault("deployment_options", None)  # the function alone: its canary's hook has a version too
    AgentFunction(stack, "Agent", options=AgentFunctionOptions(**options))
    template = Template.from_stack(stack)
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    return function["Properties"]["Environment"]["Variables"], template.find_resources("AWS::Lambda::Version")


def agent_code_with_prompt(folder: Path, prompt: str) -> Path:
    (folder / "support_agent" / "prompts").mkdir(parents=True, exist_ok=True)
    (folder / "support_agent" / "__init__.py").write_text(AGENT_MODULE)
    (folder / "support_agent" / "prompts" / "support.md").write_text(prompt)
    return folder


def test_the_stamped_version_is_the_one_the_runtime_computes_from_the_function_environment(
    app_factory: Callable[..., cdk.App], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentrail_runtime.config import RuntimeSettings
    from agentrail_runtime.service import AgentService

    environment, _ = synth(app_factory, model="local", max_steps=5, system_prompt="Answer in French.")
    stamped = environment.pop("AGENT_VERSION")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AGENT_VERSION", raising=False)

    assert re.fullmatch(r"[0-9a-f]{12}", stamped)
    assert AgentService.from_settings(RuntimeSettings()).version == stamped


def test_changing_the_prompt_in_the_app_changes_the_version_and_publishes_a_new_lambda_version(
    app_factory: Callable[..., cdk.App],
) -> None:
    before, before_versions = synth(app_factory, system_prompt="Be brief.")
    after, after_versions = synth(app_factory, system_prompt="Be thorough.")
    again, again_versions = synth(app_factory, system_prompt="Be brief.")

    assert before["AGENT_VERSION"] != after["AGENT_VERSION"]
    assert again["AGENT_VERSION"] == before["AGENT_VERSION"]
    assert set(before_versions) != set(after_versions)  # a new logical id: CloudFormation publishes a new version
    (version,) = after_versions.values()
    assert version["Properties"]["Description"] == f"agent_version {after['AGENT_VERSION']}"
    assert set(again_versions) == set(before_versions)


def test_editing_a_prompt_file_beside_the_agent_changes_the_stamped_version(
    app_factory: Callable[..., cdk.App], tmp_path: Path
) -> None:
    code = agent_code_with_prompt(tmp_path / "code", "Be brief.\n")
    options = {"agent_code": str(code), "agent_definition": "support_agent:definition"}
    before, _ = synth(app_factory, **options)

    agent_code_with_prompt(code, "Be thorough, and cite the order number.\n")
    after, _ = synth(app_factory, **options)

    assert re.fullmatch(r"[0-9a-f]{12}", before["AGENT_VERSION"])
    assert before["AGENT_VERSION"] != after["AGENT_VERSION"]


def test_an_agent_version_given_to_the_construct_is_stamped_as_is(app_factory: Callable[..., cdk.App]) -> None:
    environment, versions = synth(app_factory, agent_version="release-42")

    assert environment["AGENT_VERSION"] == "release-42"
    assert [v["Properties"]["Description"] for v in versions.values()] == ["agent_version release-42"]


def test_an_empty_agent_version_is_refused_naming_the_fix(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="agent_version is empty: pass a version, or None"):
        AgentFunction(stack, "Agent", options=AgentFunctionOptions(agent_version=" "))


def test_a_definition_the_runtime_cannot_load_here_gets_a_hash_of_its_settings_and_files_with_a_warning(
    app_factory: Callable[..., cdk.App], capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = synth(app_factory, agent_definition="no_such_agent.module:definition", system_prompt="Be brief.")
    second, _ = synth(app_factory, agent_definition="no_such_agent.module:definition", system_prompt="Be thorough.")

    assert re.fullmatch(r"[0-9a-f]{12}", first["AGENT_VERSION"])
    assert first["AGENT_VERSION"] != second["AGENT_VERSION"]
    warning = capsys.readouterr().err
    assert "AGENT_VERSION of no_such_agent.module:definition is a hash of its files and settings" in warning
    assert "No module named 'no_such_agent'" in warning


def test_a_synth_of_several_agents_and_their_canary_hooks_asks_the_runtime_once(
    app_factory: Callable[..., cdk.App], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no version known yet in this process, and a counter on the subprocesses the constructs start,
    monkeypatch.setattr(agent_version, "_known", {})
    monkeypatch.setattr(agent_version, "_pending", [])
    runs: list[list[str]] = []
    real_run = subprocess.run

    def counted_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        runs.append(command)
        return real_run(command, **kwargs)

    monkeypatch.setattr(agent_version.subprocess, "run", counted_run)
    # and a stack of two agents with different prompts, each with its canary's pre-traffic hook (its own version request),
    stack = cdk.Stack(app_factory(), "Test", env=TEST_ENV)
    one = AgentFunction(stack, "One", options=AgentFunctionOptions(system_prompt="Answer in French."))
    two = AgentFunction(stack, "Two", options=AgentFunctionOptions(system_prompt="Answer in German."))
    assert one.pre_traffic_hook is not None and two.pre_traffic_hook is not None
    # when it synthesizes,
    synthesized = SynthesizedStack(stack)
    # then one subprocess answered every version, and each hook runs its own function's version.
    assert len([command for command in runs if command[1:] == ["-m", "agentrail_runtime.versions"]]) == 1
    for function in (one, two):
        version = synthesized.environment(function)["AGENT_VERSION"]
        assert re.fullmatch(r"[0-9a-f]{12}", version)
        assert synthesized.environment(function.pre_traffic_hook)["AGENT_VERSION"] == version
    assert synthesized.environment(one)["AGENT_VERSION"] != synthesized.environment(two)["AGENT_VERSION"]
