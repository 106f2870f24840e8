"""Every handler folder is classified for the constructs: it runs an agent (and calls a model or gates on evals) or it
runs none; a handler that runs none never calls a model."""

from __future__ import annotations

from agentrail_constructs.budgets import MODEL_HANDLERS
from agentrail_constructs.deployment import AGENTLESS_HANDLERS, PRE_TRAFFIC_HOOK_HANDLER
from agentrail_constructs.sources import package_dir


def handler_folders() -> set[str]:
    root = package_dir("agentrail_handlers")
    return {path.parent.name for path in root.glob("*/app.py")}


def test_every_handler_folder_either_runs_no_agent_or_runs_one_that_calls_a_model_or_is_the_pre_traffic_hook() -> None:
    folders = handler_folders()

    assert len(folders) >= 14
    assert AGENTLESS_HANDLERS | MODEL_HANDLERS | {PRE_TRAFFIC_HOOK_HANDLER} == folders


def test_no_handler_both_runs_no_agent_and_calls_a_model() -> None:
    assert not AGENTLESS_HANDLERS & MODEL_HANDLERS
    assert PRE_TRAFFIC_HOOK_HANDLER not in AGENTLESS_HANDLERS | MODEL_HANDLERS


def test_the_orchestrator_runs_no_agent() -> None:
    # The orchestrator completes tasks from the specialists' outcomes: no version request, prompt, guardrail or model.
    assert "orchestrator" in AGENTLESS_HANDLERS
