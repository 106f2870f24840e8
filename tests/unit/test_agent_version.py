"""The agent version: one stable hash of what changes behaviour, or AGENT_VERSION when the build stamped one."""

from __future__ import annotations

import dataclasses
import re

import pytest

from agentrail_runtime.agent.definition import AgentDefinition, prompt_from_file
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.agent.version import agent_version, version_inputs
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.guardrails import DenyListGuard, PiiGuard, PromptInjectionGuard, default_recognizers
from agentrail_runtime.service import AgentService
from agentrail_runtime.versions import version_for, versions_for


@tool
def lookup_order(order_id: str) -> dict:
    """Find an order."""
    return {"order_id": order_id}


@tool(side_effects=True)
def refund(order_id: str, amount: float) -> dict:
    """Refund an order."""
    return {"refunded": amount}


@tool(side_effects=True)
def refund_cents(order_id: str, amount: int) -> dict:
    """Refund an order."""
    return {"refunded": amount}


@pytest.fixture(autouse=True)
def no_stamped_version(monkeypatch):
    monkeypatch.delenv("AGENT_VERSION", raising=False)


DEFINITION = AgentDefinition(name="support", system_prompt="Be brief.", tools=(lookup_order, refund))
SETTINGS = RuntimeSettings(model="local", max_steps=8, token_budget=20_000, max_output_tokens=1024, max_tool_result_bytes=16_384)


def test_the_same_definition_and_settings_give_the_same_short_hex_version():
    first = agent_version(DEFINITION, SETTINGS)

    again = agent_version(AgentDefinition(name="support", system_prompt="Be brief.", tools=(lookup_order, refund)), SETTINGS)

    assert first == again
    assert re.fullmatch(r"[0-9a-f]{12}", first)


@pytest.mark.parametrize(
    ("definition", "settings"),
    [
        (dataclasses.replace(DEFINITION, system_prompt="Be thorough."), SETTINGS),
        (DEFINITION, SETTINGS.model_copy(update={"system_prompt": "Overridden by a setting."})),
        (dataclasses.replace(DEFINITION, tools=(lookup_order,)), SETTINGS),
        (dataclasses.replace(DEFINITION, tools=(lookup_order, refund_cents)), SETTINGS),
        (dataclasses.replace(DEFINITION, tools=(lookup_order, dataclasses.replace(refund, side_effects=False))), SETTINGS),
        (dataclasses.replace(DEFINITION, tools=(lookup_order, dataclasses.replace(refund, requires_approval=True))), SETTINGS),
        (dataclasses.replace(DEFINITION, tools=(lookup_order, dataclasses.replace(refund, description="Pay back."))), SETTINGS),
        (DEFINITION, RuntimeSettings(model="local", allowed_models=("bedrock:amazon.nova-lite-v1:0",))),
        (DEFINITION, SETTINGS.model_copy(update={"max_steps": 9})),
        (DEFINITION, SETTINGS.model_copy(update={"token_budget": 20_001})),
        (DEFINITION, SETTINGS.model_copy(update={"max_output_tokens": 1025})),
        (DEFINITION, SETTINGS.model_copy(update={"max_tool_result_bytes": 16_385})),
        (dataclasses.replace(DEFINITION, input_guards=(PromptInjectionGuard(),)), SETTINGS),
        (dataclasses.replace(DEFINITION, tool_result_guards=(PromptInjectionGuard(),)), SETTINGS),
        (dataclasses.replace(DEFINITION, output_guards=(PiiGuard(),)), SETTINGS),
        (dataclasses.replace(DEFINITION, input_guards=(PromptInjectionGuard(thresholds={"prompt_extraction": 2.0}),)), SETTINGS),
        (dataclasses.replace(DEFINITION, output_guards=(DenyListGuard(topics=["roadmap"]),)), SETTINGS),
        (dataclasses.replace(DEFINITION, refusal="No."), SETTINGS),
        (dataclasses.replace(DEFINITION, tools=(lookup_order, dataclasses.replace(refund, dry_run={"refunded": 0}))), SETTINGS),
    ],
    ids=[
        "system-prompt",
        "system-prompt-setting",
        "a-tool-removed",
        "a-tool-input-schema",
        "side-effects-flag",
        "approval-flag",
        "tool-description",
        "models",
        "max-steps",
        "token-budget",
        "max-output-tokens",
        "max-tool-result-bytes",
        "input-guards",
        "tool-result-guards",
        "output-guards",
        "a-guard-threshold",
        "a-deny-list-topic",
        "refusal",
        "a-declared-dry-run-result",
    ],
)
def test_changing_any_one_behaviour_input_changes_the_version(definition, settings):
    assert agent_version(definition, settings) != agent_version(DEFINITION, SETTINGS)


def test_the_order_of_tools_and_the_agent_name_do_not_change_the_version():
    reordered = dataclasses.replace(DEFINITION, tools=(refund, lookup_order), name="renamed")

    assert agent_version(reordered, SETTINGS) == agent_version(DEFINITION, SETTINGS)


def test_the_order_of_guards_changes_the_version_and_an_agent_without_guards_hashes_no_guards_key():
    pii_first = dataclasses.replace(DEFINITION, output_guards=(PiiGuard(), DenyListGuard(topics=["roadmap"])))
    deny_first = dataclasses.replace(DEFINITION, output_guards=(DenyListGuard(topics=["roadmap"]), PiiGuard()))

    assert agent_version(pii_first, SETTINGS) != agent_version(deny_first, SETTINGS)
    assert "guards" not in version_inputs(DEFINITION, SETTINGS)


def test_the_phone_region_of_the_pii_recognizers_changes_the_version():
    # given: the same PII guard, reading national phone numbers as US ones and as GB ones
    us = dataclasses.replace(DEFINITION, output_guards=(PiiGuard(recognizers=default_recognizers(phone_region="US")),))
    gb = dataclasses.replace(DEFINITION, output_guards=(PiiGuard(recognizers=default_recognizers(phone_region="GB")),))

    # then: they redact different numbers, so they are different versions
    assert agent_version(gb, SETTINGS) != agent_version(us, SETTINGS)


def test_a_stamped_agent_version_wins_over_the_hash(monkeypatch):
    monkeypatch.setenv("AGENT_VERSION", "release-2026-12-06")

    assert agent_version(DEFINITION, SETTINGS) == "release-2026-12-06"


def test_a_prompt_kept_in_a_file_beside_the_agent_is_read_and_editing_it_changes_the_version(tmp_path):
    module = tmp_path / "support.py"
    module.write_text("# the agent's module\n")
    (tmp_path / "prompts").mkdir()
    prompt = tmp_path / "prompts" / "support.md"
    prompt.write_text("Be brief.\n")

    first = AgentDefinition(name="support", system_prompt=prompt_from_file("prompts/support.md", beside=module))
    prompt.write_text("Be thorough.\n")
    edited = AgentDefinition(name="support", system_prompt=prompt_from_file("prompts/support.md", beside=module))

    assert first.system_prompt == "Be brief."
    inline = AgentDefinition(name="support", system_prompt="Be brief.")
    assert agent_version(first, SETTINGS) == agent_version(inline, SETTINGS)
    assert agent_version(edited, SETTINGS) != agent_version(first, SETTINGS)


def test_a_missing_or_empty_prompt_file_fails_naming_the_file(tmp_path):
    (tmp_path / "empty.md").write_text("  \n")

    with pytest.raises(FileNotFoundError, match=r"missing\.md does not exist"):
        prompt_from_file("missing.md", beside=tmp_path)
    with pytest.raises(ValueError, match=r"empty\.md is empty"):
        prompt_from_file(tmp_path / "empty.md")


def test_the_version_a_function_stamps_at_synth_is_the_one_its_agent_service_computes(monkeypatch):
    environment = {"AGENT_DEFINITION": "agentrail_runtime.demo:definition", "AGENT_MODEL": "local", "AGENT_MAX_STEPS": "5"}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    computed = AgentService.from_settings(RuntimeSettings()).version
    monkeypatch.setenv("AGENT_VERSION", "ignored-when-stamping")

    stamped = version_for(environment)

    assert stamped == computed


def test_the_stamping_subprocess_answers_each_function_and_names_the_one_that_failed():
    good = {"AGENT_DEFINITION": "agentrail_runtime.demo:definition"}
    bad = {"AGENT_DEFINITION": "no_such_module:definition"}

    answers = versions_for([good, bad])

    assert answers[0] == {
        "version": version_for(good),
        "prompts": [],
        "response_cache": {
            "cacheable": False,
            "reason": "agent 'demo' cannot use a response cache: its tool 'issue_refund' has side effects, and a "
            "cached answer would skip it",
            "per_caller": False,
        },
        "tools": ["calculator", "convert_units", "current_time", "lookup_order", "issue_refund", "wait"],
    }
    assert "no_such_module" in answers[1]["error"]
