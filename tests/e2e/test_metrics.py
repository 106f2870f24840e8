"""Local mode shows what ran: ``agentrail metrics`` after a task, and the alarms it skipped with a notice."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _metrics(agentrail: Callable[..., list[str]], local: Any, *flags: str) -> subprocess.CompletedProcess[str]:
    command = agentrail("metrics", "--state-dir", str(local.state_dir), *flags)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_after_a_task_ran_agentrail_metrics_lists_its_agent_with_its_tokens_and_tool_calls(
    local: Any, wait_for_task: Callable[..., dict[str, Any]], agentrail: Callable[..., list[str]]
) -> None:
    with local.client("async") as tasks:
        accepted = tasks.request("POST", "/tasks", json={"message": "Calculate (12 + 30) * 2"}).json()
        task = wait_for_task(tasks, accepted["task_id"])
    assert task["status"] == "succeeded"
    usage = task["usage"]
    all_input = usage["input_tokens"] + usage["cache_read_tokens"] + usage["cache_write_tokens"]

    # The worker prints its EMF record as the invocation ends; its log may take a moment to reach the file.
    deadline = time.monotonic() + 20
    while True:
        listed = _metrics(agentrail, local, "--json")
        assert listed.returncode == 0, listed.stderr
        agents = json.loads(listed.stdout)["agents"]
        demo = [a for a in agents if a["agent"] == "demo" and a["tools"].get("calculator")]
        read = sum(a["cache_read_tokens"] for a in demo)
        if (demo and sum(a["input_tokens"] for a in demo) >= all_input and read >= usage["cache_read_tokens"]) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.5)

    assert demo, agents
    assert sum(a["input_tokens"] for a in demo) >= all_input > 0  # every input token, cached or not
    assert sum(a["cache_read_tokens"] for a in demo) >= usage["cache_read_tokens"] > 0
    assert sum(a["output_tokens"] for a in demo) >= task["usage"]["output_tokens"] > 0
    assert any(a["tools"]["calculator"]["success_rate"] == 1.0 for a in demo)
    shown = _metrics(agentrail, local)
    assert shown.returncode == 0, shown.stderr
    assert "IN TOKENS" in shown.stdout and "demo" in shown.stdout
    assert "Tokens per agent (input + output)" in shown.stdout  # the local model is free: the chart shows tokens


def test_local_mode_lists_the_cloudwatch_alarms_it_skipped_on_its_console(local: Any) -> None:
    console = local.console_output()

    assert "Skipped locally (deployed in the cloud):" in console
    assert "CloudWatch alarms: local mode has no CloudWatch alarms: " in console
