"""``agentrail eval`` against local mode: the demo agent's dataset passes over HTTP as it passes in process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_the_demo_dataset_passes_against_local_mode_as_in_process_and_tool_arguments_are_skipped_over_http(
    local: Any, agentrail: Callable[..., list[str]], repo_root: Path, tmp_path: Path
):
    in_process = tmp_path / "in-process.json"
    over_http = tmp_path / "local.json"
    subprocess.run(agentrail("eval", "--no-progress", "--json", str(in_process)), cwd=repo_root, check=True, capture_output=True)

    run = subprocess.run(
        agentrail(
            "eval", "evals/demo", "--local", "--ready-file", str(local.ready_file), "--no-progress",
            "--json", str(over_http), "--baseline", str(in_process),
        ),
        cwd=repo_root,
        capture_output=True,
        text=True,
    )  # fmt: skip

    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(over_http.read_text())
    assert report["target"].startswith("local stateless at http://127.0.0.1:")
    assert report["regression"]["passed"] and report["score"] == 1.0
    skipped = {(c["id"], s["scorer"]) for c in report["cases"] for s in c["scores"] if s["skipped"]}
    with_arguments = {"arithmetic", "units", "clock", "order-status", "refund-waits-for-approval", "refund-over-total-refused"}
    assert skipped == {(case, "tool_called") for case in with_arguments}


@pytest.mark.parametrize(
    ("dataset", "pattern", "extra"),
    [("evals/router", "multiagent", ()), ("evals/supervisor", "hierarchical", ("--task-type", "research"))],
)
def test_the_team_datasets_pass_against_their_patterns_in_local_mode_through_the_tasks_api(
    local: Any,
    agentrail: Callable[..., list[str]],
    repo_root: Path,
    tmp_path: Path,
    dataset: str,
    pattern: str,
    extra: tuple[str, ...],
):
    report_file = tmp_path / "report.json"

    run = subprocess.run(
        agentrail(
            "eval", dataset, "--local", "--pattern", pattern, *extra, "--ready-file", str(local.ready_file),
            "--no-progress", "--json", str(report_file),
        ),
        cwd=repo_root,
        capture_output=True,
        text=True,
    )  # fmt: skip

    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(report_file.read_text())
    assert report["target"].startswith(f"local {pattern} at ") and report["score"] == 1.0
