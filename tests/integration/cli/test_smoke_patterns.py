"""``agentrail smoke`` tells a pattern from the API's own OpenAPI document, and names the fix when it cannot."""

from __future__ import annotations

import json

import pytest

from agentrail_cli.smoke import SCENARIOS, PatternUnknown, detect_pattern
from agentrail_runtime.api.sessions import create_sessions_app
from agentrail_runtime.api.stateless import create_stateless_app
from agentrail_runtime.api.tasks import create_tasks_app


def document(app) -> dict:
    return json.loads(app.get_openapi_json_schema())


@pytest.fixture(autouse=True)
def placeholder_tables(monkeypatch):
    for name in ("AGENT_SESSION_TABLE", "AGENT_TASK_TABLE"):
        monkeypatch.setenv(name, "placeholder")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_the_stateless_and_stateful_apis_are_told_apart_by_their_routes():
    assert detect_pattern(document(create_stateless_app())) == "stateless"
    assert detect_pattern(document(create_sessions_app())) == "stateful"


def test_a_task_api_with_approvals_is_the_async_pattern_and_one_without_needs_pattern_named(monkeypatch):
    tasks = document(create_tasks_app())
    monkeypatch.setenv("AGENT_APPROVAL_TABLE", "placeholder")
    monkeypatch.setenv("AGENT_APPROVAL_AUDIT_TABLE", "placeholder")
    with_approvals = document(create_tasks_app())

    assert detect_pattern(with_approvals) == "async"
    with pytest.raises(PatternUnknown, match="pass --pattern multiagent or --pattern hierarchical"):
        detect_pattern(tasks)
    with pytest.raises(PatternUnknown, match="pass --pattern"):
        detect_pattern({"paths": {"/other": {}}})


def test_every_pattern_has_scenarios_and_the_approval_one_says_it_needs_an_approver():
    assert set(SCENARIOS) == {"stateless", "stateful", "async", "multiagent", "hierarchical", "asgi"}
    assert all(SCENARIOS[pattern] for pattern in SCENARIOS)
    assert [s.name for s in SCENARIOS["async"] if s.needs_approver] == ["task paused for an approval"]
