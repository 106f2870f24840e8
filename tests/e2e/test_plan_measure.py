"""``agentrail plan --measure``: the estimate from the call-count file holds against what local mode counts.

Every variant of every pattern runs its check mix (other kinds in other proportions than the benchmark's
calibration batches, sessions of 6 turns instead of 4) on the synthesized app of all five patterns (the stateful one
streaming over its WebSocket API too), with the call meter on; the estimate is the call-count file's lines at the mix's own model calls per task. It must be within
10% on the AWS cost per task, and on every billed count (or one billing granule).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentrail_cli.plan.workloads import CHECK_MIX, NO_MODEL_CALLS, VARIANTS

ALL_PATTERNS = "stateless,stateful,async,multiagent,hierarchical"


@pytest.fixture(scope="module")
def measured(synthesized: Callable[..., Path], repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    assembly = synthesized(ALL_PATTERNS, streaming=True)
    state = tmp_path_factory.mktemp("plan-measure")
    command = [
        sys.executable, "-m", "agentrail_cli", "plan", "--file", str(repo_root / "examples" / "plans" / "refunds.yaml"),
        "--no-chart", "--json", "--measure", "--variants", "all", "--assembly", str(assembly), "--state-dir", str(state),
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=900, check=False)
    assert finished.returncode in (0, 1), finished.stderr[-3000:]
    document = json.loads(finished.stdout)
    document["exit_status"] = finished.returncode
    return document


def test_every_variant_was_measured_on_its_check_mix(measured: dict[str, Any]) -> None:
    checks = {check["variant"]: check for check in measured["measured"]}

    assert list(checks) == list(VARIANTS)
    for variant, check in checks.items():
        assert check["tasks"] == sum(count for _, count in CHECK_MIX[variant]), variant


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_estimate_is_within_ten_percent_of_what_local_mode_counts(measured: dict[str, Any], variant: str) -> None:
    (check,) = [c for c in measured["measured"] if c["variant"] == variant]

    assert abs(check["aws_difference"]) <= 0.10, (check["estimated_aws_usd_per_task"], check["measured_aws_usd_per_task"])
    assert check["off"] == [], {name: (check["estimated"].get(name), check["measured"].get(name)) for name in check["off"]}
    assert check["within"]


def test_the_plan_exits_zero_when_every_estimate_holds(measured: dict[str, Any]) -> None:
    assert measured["exit_status"] == 0


def test_the_meter_counted_what_each_pattern_really_does(measured: dict[str, Any]) -> None:
    """Not zeros on both sides: each variant's own machinery shows up in the counts."""
    counts = {check["variant"]: check["measured"] for check in measured["measured"]}

    assert counts["request"]["lambda_requests"] == 1 and counts["request"].get("aws_calls", 0) == 0
    assert counts["turn"]["dynamodb_read_units"] > 0 and counts["turn"]["dynamodb_write_units"] >= 2
    assert (
        counts["stream_turn"]["websocket_messages"] > 2
        and counts["stream_turn"]["sqs_fifo_requests"] + counts["stream_turn"]["sqs_requests"] >= 1
    )
    assert counts["stream_connect"]["api_requests"] == 1  # the connect ticket
    assert counts["task"]["sqs_messages"] >= 1 and counts["task"]["eventbridge_events"] >= 1
    assert counts["long_task"]["sfn_transitions"] > 0
    assert counts["reviewed_task"]["dynamodb_approval_bytes"] > 0 and counts["reviewed_task"]["api_requests"] == 4
    assert counts["routed"]["sqs_messages"] >= 2
    assert counts["research"]["sfn_transitions"] > counts["long_task"]["sfn_transitions"]
    assert all((c["model_calls"] > 0) == (v not in NO_MODEL_CALLS) for v, c in counts.items())
