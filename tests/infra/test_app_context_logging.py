"""The app's ``log_level`` and ``store_redacted`` context keys reach every agent function of the synthesized stacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from agentrail_constructs.app_config import AppConfig
from agentrail_constructs.stacks import PATTERN_STACKS
from tests.infra.conftest import CloudAssembly


def agent_functions(app: cdk.App, pattern: str) -> dict[str, Any]:
    """The synthesized ``pattern`` stack's functions that run the runtime (those with ``AGENT_MODEL``)."""
    config = AppConfig.from_context(app, tuple(PATTERN_STACKS))
    stack = config.add_stacks(app)[pattern]
    functions = Template.from_stack(stack).find_resources("AWS::Lambda::Function")
    return {
        name: f["Properties"]
        for name, f in functions.items()
        if "AGENT_MODEL" in f["Properties"].get("Environment", {}).get("Variables", {})
    }


@pytest.mark.parametrize(
    ("pattern", "writes_to", "writers", "companion"),
    [
        ("async", "AGENT_TASK_TABLE", 2, "task-notifier"),  # the task worker, the API and the workflow's steps
        ("stateful", "AGENT_SESSION_TABLE", 1, "session-cleanup"),  # the sessions API and the table's clean-up
    ],
)
def test_log_level_and_store_redacted_context_keys_reach_every_agent_function(
    app_factory: Callable[..., cdk.App], pattern: str, writes_to: str, writers: int, companion: str
) -> None:
    # given: the pattern with both keys set
    app = app_factory(context={"patterns": pattern, "log_level": "debug", "store_redacted": "true"})

    functions = agent_functions(app, pattern)

    # then: each function logs at DEBUG (the companion that runs no agent too), and each that writes stores redacted
    services = {p["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] for p in functions.values()}
    assert companion in services
    agent_writers = [
        p
        for p in functions.values()
        if writes_to in p["Environment"]["Variables"] and p["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] != companion
    ]
    assert len(agent_writers) >= writers
    for name, properties in functions.items():
        assert properties["LoggingConfig"]["ApplicationLogLevel"] == "DEBUG", name
    for properties in agent_writers:
        assert properties["Environment"]["Variables"]["AGENT_STORE_REDACTED"] == "true"


@pytest.mark.parametrize("pattern", list(PATTERN_STACKS))
def test_without_the_keys_agent_functions_log_at_info_and_store_as_written(real_app: CloudAssembly, pattern: str) -> None:
    # Given app.py synthesized without log_level or store_redacted (the session's real app),
    template = real_app.template(real_app.pattern_stack_name(pattern))
    # when its pattern stack's agent functions are read,
    functions = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and "AGENT_MODEL" in resource["Properties"].get("Environment", {}).get("Variables", {})
    }
    # then each logs at INFO and stores what it is given as written.
    assert functions
    for name, properties in functions.items():
        assert properties["LoggingConfig"]["ApplicationLogLevel"] == "INFO", name
        assert "AGENT_STORE_REDACTED" not in properties["Environment"]["Variables"], name


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"log_level": "TRACE"}, "context 'log_level' must be one of DEBUG, INFO, WARN, ERROR"),
        ({"store_redacted": "yes"}, "context 'store_redacted' must be 'true' or 'false'"),
    ],
)
def test_a_bad_logging_context_value_fails_the_synth_naming_the_key(
    app_factory: Callable[..., cdk.App], context: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AppConfig.from_context(app_factory(context=context), tuple(PATTERN_STACKS))
