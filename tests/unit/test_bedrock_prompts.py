"""System prompts in Bedrock Prompt Management: referenced by an immutable version, read at cold start, hashed as a
reference. moto has no Bedrock prompts, so GetPrompt goes through botocore's Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from agentrail_runtime import aws
from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.prompts import LOCAL_MODE_ENV, PromptReferenceError, prompt_from_bedrock
from agentrail_runtime.agent.version import agent_version
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.service import AgentService
from agentrail_runtime.versions import versions_for

PROMPT_ID = "PROMPT1234"
PROMPT_ARN = f"arn:aws:bedrock:us-east-1:123456789012:prompt/{PROMPT_ID}"
SETTINGS = RuntimeSettings(model="local")


@pytest.fixture(autouse=True)
def cloud_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_VERSION", raising=False)
    monkeypatch.delenv(LOCAL_MODE_ENV, raising=False)


def text_variant(name: str, text: str) -> dict[str, Any]:
    return {"name": name, "templateType": "TEXT", "templateConfiguration": {"text": {"text": text}}}


def get_prompt_response(*variants: dict[str, Any], default: str | None = "main", version: str = "3") -> dict[str, Any]:
    response: dict[str, Any] = {
        "name": "support",
        "id": PROMPT_ID,
        "arn": f"{PROMPT_ARN}:{version}",
        "version": version,
        "variants": list(variants),
        "createdAt": "2026-12-01T00:00:00Z",
        "updatedAt": "2026-12-01T00:00:00Z",
    }
    if default is not None:
        response["defaultVariant"] = default
    return response


@pytest.fixture
def bedrock_agent() -> Iterator[tuple[Any, Stubber]]:
    client = aws.client("bedrock-agent", config=None)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_the_default_variants_text_template_of_the_referenced_version_is_the_system_prompt(bedrock_agent):
    client, stubber = bedrock_agent
    stubber.add_response(
        "get_prompt",
        get_prompt_response(text_variant("main", "You help customers.\n"), text_variant("terse", "Be terse.")),
        expected_params={"promptIdentifier": PROMPT_ARN, "promptVersion": "3"},
    )
    definition = AgentDefinition(name="support", system_prompt=prompt_from_bedrock(PROMPT_ARN, version=3))

    service = AgentService(definition=definition, settings=SETTINGS, prompts=client)

    assert service.system_prompt == "You help customers."
    assert service.agent().system_prompt == "You help customers."


def test_a_chosen_variant_is_used_instead_of_the_default(bedrock_agent):
    client, stubber = bedrock_agent
    stubber.add_response(
        "get_prompt",
        get_prompt_response(text_variant("main", "You help customers."), text_variant("terse", "Be terse.")),
        expected_params={"promptIdentifier": PROMPT_ID, "promptVersion": "3"},
    )
    prompt = prompt_from_bedrock(PROMPT_ID, version="3", variant="terse")

    assert prompt.resolve(client=client) == "Be terse."


def test_without_an_injected_client_the_prompt_is_read_through_the_runtimes_retrying_client(bedrock_agent, monkeypatch):
    client, stubber = bedrock_agent
    stubber.add_response("get_prompt", get_prompt_response(text_variant("main", "You help customers.")))
    made: list[str] = []

    def runtime_client(service: str, config: Any = None) -> Any:
        made.append(service)
        return client

    monkeypatch.setattr(aws, "client", runtime_client)

    text = prompt_from_bedrock(PROMPT_ID, version=3).resolve()

    assert text == "You help customers."
    assert made == ["bedrock-agent"]


def test_an_unknown_variant_fails_naming_the_variants_there_are(bedrock_agent):
    client, stubber = bedrock_agent
    stubber.add_response("get_prompt", get_prompt_response(text_variant("main", "Hi."), text_variant("terse", "Hi")))

    with pytest.raises(PromptReferenceError, match=r"has no variant 'formal' \(variants: main, terse\): pass variant="):
        prompt_from_bedrock(PROMPT_ID, version=3, variant="formal").resolve(client=client)


def test_a_variant_with_a_chat_template_fails_asking_for_a_text_prompt(bedrock_agent):
    client, stubber = bedrock_agent
    chat = {
        "name": "main",
        "templateType": "CHAT",
        "templateConfiguration": {"chat": {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}},
    }
    stubber.add_response("get_prompt", get_prompt_response(chat))

    with pytest.raises(PromptReferenceError, match=r"has a CHAT template, not a TEXT one: .*publish a version"):
        prompt_from_bedrock(PROMPT_ID, version=3).resolve(client=client)


@pytest.mark.parametrize(
    ("identifier", "version", "message"),
    [
        (PROMPT_ARN, "DRAFT", r"version DRAFT is not versioned .*CreatePromptVersion.*version=1"),
        (PROMPT_ARN, "draft", r"version DRAFT is not versioned"),
        (PROMPT_ARN, "0", r"'0' is not a version number: pass e\.g\. version=1"),
        ("arn:aws:bedrock:us-east-1:123456789012:agent/PROMPT1234", 1, r"not a Bedrock prompt ID or ARN: pass the"),
        ("PROMPT", 1, r"'PROMPT' is not a Bedrock prompt ID or ARN"),
        (f"{PROMPT_ARN}:3", 3, rf"without the version suffix \({PROMPT_ARN}\) and the version as version="),
    ],
    ids=["draft", "draft-lowercase", "version-zero", "not-a-prompt-arn", "malformed-id", "arn-with-version"],
)
def test_a_bad_reference_fails_when_the_definition_is_built_naming_the_fix(identifier, version, message):
    with pytest.raises(PromptReferenceError, match=message):
        prompt_from_bedrock(identifier, version=version)


def test_the_version_hashes_the_reference_so_a_new_prompt_version_is_a_new_agent_version():
    def definition(version: int | str, variant: str | None = None) -> AgentDefinition:
        return AgentDefinition(name="support", system_prompt=prompt_from_bedrock(PROMPT_ARN, version=version, variant=variant))

    third = agent_version(definition(3), SETTINGS)

    assert agent_version(definition("03"), SETTINGS) == third
    assert agent_version(definition(4), SETTINGS) != third
    assert agent_version(definition(3, variant="terse"), SETTINGS) != third
    assert agent_version(AgentDefinition(name="support", system_prompt=PROMPT_ARN), SETTINGS) != third


def test_the_stamping_subprocess_reports_the_reference_without_calling_aws(monkeypatch):
    monkeypatch.setattr(aws, "client", lambda *args, **kwargs: pytest.fail("synth must not call AWS"))
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: pytest.fail("synth must not call AWS"))
    environment = {"AGENT_DEFINITION": "tests.unit.test_bedrock_prompts:BEDROCK_DEFINITION"}

    (answer, overridden) = versions_for([environment, {**environment, "AGENT_SYSTEM_PROMPT": "Be brief."}])

    assert answer["prompts"] == [{"bedrock_prompt": PROMPT_ARN, "version": "7", "variant": None}]
    assert answer["version"] == agent_version(BEDROCK_DEFINITION, SETTINGS)
    assert overridden["prompts"] == []


def test_a_system_prompt_setting_overrides_the_reference_and_nothing_is_read():
    settings = RuntimeSettings(model="local", system_prompt="Answer in French.")

    service = AgentService(definition=BEDROCK_DEFINITION, settings=settings, prompts=object())

    assert service.system_prompt == "Answer in French."


def test_local_mode_reads_the_references_local_file_beside_the_agent(tmp_path, monkeypatch):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "support.md").write_text("You help customers, locally.\n")
    monkeypatch.setenv(LOCAL_MODE_ENV, "1")
    prompt = prompt_from_bedrock(PROMPT_ID, version=3, local_file="prompts/support.md", beside=tmp_path / "agent.py")

    assert prompt.resolve() == "You help customers, locally."


def test_local_mode_without_a_local_file_fails_naming_the_fix(monkeypatch):
    monkeypatch.setenv(LOCAL_MODE_ENV, "1")

    with pytest.raises(PromptReferenceError, match=r"local mode has no Bedrock Prompt Management.*pass local_file="):
        AgentService(definition=BEDROCK_DEFINITION, settings=SETTINGS)


BEDROCK_DEFINITION = AgentDefinition(name="support", system_prompt=prompt_from_bedrock(PROMPT_ARN, version=7))
