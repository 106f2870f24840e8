"""One trace end to end in local mode: every function a multi-agent task passes through logs the same X-Ray trace id.

Local mode gives each invocation the trace header it was handed (the API request's, an SQS message's
``AWSTraceHeader``) in ``_X_AMZN_TRACE_ID``, as Lambda does; the runtime puts it on every message it sends, and
Powertools' Logger writes its root as ``xray_trace_id`` on every log line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _trace_ids_by_function(local: Any, task_id: str) -> dict[str, set[str]]:
    """Logical id -> the ``xray_trace_id`` of every log line of that function that names ``task_id``."""
    seen: dict[str, set[str]] = {}
    for function in local.ready["functions"]:
        for line in Path(function["log_file"]).read_text(errors="replace").splitlines():
            if task_id not in line or not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("xray_trace_id"):
                seen.setdefault(function["logical_id"], set()).add(record["xray_trace_id"])
    return seen


def test_a_routed_task_is_one_trace_from_the_api_through_router_specialist_and_orchestrator(
    local: Any, wait_for_task: Callable[..., dict[str, Any]]
) -> None:
    with local.client("multiagent") as team:
        submitted = team.request("POST", "/tasks", json={"message": "Why was I charged twice on invoice INV-1001?"})
        assert submitted.status_code == 202, submitted.text
        task = wait_for_task(team, submitted.json()["task_id"])
    assert task["status"] == "succeeded"

    deadline = time.monotonic() + 15  # the last function's log lines may take a moment to reach its file
    while len(seen := _trace_ids_by_function(local, task["task_id"])) < 4 and time.monotonic() < deadline:
        time.sleep(0.5)

    assert len(seen) >= 4, seen  # the API, the router, the billing specialist and the orchestrator
    assert len(set().union(*seen.values())) == 1, seen
