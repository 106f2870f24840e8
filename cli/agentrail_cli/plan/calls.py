"""What each pattern really does per task, as the benchmarks measured it in local mode, and the hash that dates it.

``data/call_counts.json`` is written by ``python -m benchmarks --only plan_calls`` (`the plan_calls benchmark (`python -m benchmarks --only plan_calls` in the agentrail repository)`), never by
hand. For each *variant* of a pattern (a request, a session, a task on the queue, a long task, a task that waits
for an approval, a routed request, a research task) it holds a straight line per raw count: the count per task is
``intercept + slope * x``, fitted over request kinds with different ``x``: the task's model calls, or for a research
task its subtasks (a supervisor's work grows with what it fans out, not with its calls). It also holds what the synthesized templates contain (alarms, dashboards, secrets, queues), and a
SHA-256 of the code that makes the calls (the runtime, the handlers and the constructs): when that code changes,
the file is stale until the benchmark runs again (``tests/unit/plan/test_call_counts.py`` fails).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from agentrail_cli.plan.errors import PlanInputError
from agentrail_cli.plan.workloads import Regressor

__all__ = [
    "CALL_COUNTS",
    "HASHED_PACKAGES",
    "RAW_COUNTS",
    "CallCounts",
    "Line",
    "MeasuredKind",
    "VariantCounts",
    "code_hash",
    "fit_line",
    "load_call_counts",
]

#: The packages whose code makes the calls that are counted: a change to any of their modules dates the file.
HASHED_PACKAGES = ("agentrail_runtime", "agentrail_handlers", "agentrail_constructs")
CALL_COUNTS = "call_counts.json"

#: The raw counts per task that local mode measures (``measure.py``), and what each is.
RAW_COUNTS: dict[str, str] = {
    "model_calls": "model calls (the runs' Steps)",
    "subtasks": "subtasks a research task fans out (the workload's own)",
    "input_tokens": "input tokens of the local model",
    "output_tokens": "output tokens of the local model",
    "aws_calls": "AWS API calls the functions and workflows make",
    "lambda_requests": "Lambda invocations, whatever invoked them",
    "lambda_framework_gb_seconds": "GB-seconds of the invocations as measured locally (billed per 1 ms; no model wait)",
    "model_function_memory_gb": "GB of function memory held during each model call, summed over the calls",
    "api_requests": "API Gateway requests",
    "websocket_messages": "WebSocket messages in and out (32 KB each)",
    "dynamodb_read_units": "DynamoDB read request units",
    "dynamodb_write_units": "DynamoDB write request units (global secondary indexes included)",
    "dynamodb_stored_bytes": "bytes the task leaves in DynamoDB records (100 bytes per item included)",
    "dynamodb_approval_bytes": "bytes the task leaves in the approvals' audit trail",
    "dynamodb_idempotency_bytes": "bytes of idempotency records (kept an hour)",
    "sqs_requests": "SQS requests the functions make (64 KB each), standard queues",
    "sqs_fifo_requests": "SQS requests the functions make (64 KB each), FIFO queues",
    "sqs_messages": "messages sent to queues (each is received and deleted by an event source mapping)",
    "eventbridge_events": "EventBridge events put (64 KB each)",
    "sfn_transitions": "Step Functions state transitions",
    "log_bytes": "bytes the functions logged",
}


class Line(BaseModel):
    """``intercept + slope * x``: one raw count per task, ``x`` the variant's regressor (model calls or subtasks)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    intercept: float
    slope: float = 0.0

    def at(self, x: float) -> float:
        """The count at ``x`` (model calls or subtasks per task), never below zero."""
        return max(0.0, self.intercept + self.slope * x)


class MeasuredKind(BaseModel):
    """One kind of request the benchmark ran, and what it measured per task."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    label: str
    tasks: int = Field(ge=1)
    counts: dict[str, float]


class VariantCounts(BaseModel):
    """The raw counts of one variant, as lines in its regressor: the model calls of a task, or its subtasks."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    pattern: str
    unit: str
    regressor: Regressor = "model_calls"
    lines: dict[str, Line]
    kinds: list[MeasuredKind]
    note: str = ""

    def at(self, x: float) -> dict[str, float]:
        """Every raw count per task at ``x`` of the regressor (model calls, or subtasks)."""
        counts = {name: line.at(x) for name, line in self.lines.items()}
        counts[self.regressor] = x
        return counts


class CallCounts(BaseModel):
    """The whole file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: int = 1
    generated_by: str
    code_hash: str
    hashed_packages: list[str]
    machine: dict[str, str] = Field(default_factory=dict)
    variants: dict[str, VariantCounts]
    templates: dict[str, dict[str, int]]

    def variant(self, name: str) -> VariantCounts:
        """The counts of ``name``.

        Raises
        ------
        PlanInputError
            When the file has no such variant (it was written by an older benchmark).
        """
        try:
            return self.variants[name]
        except KeyError:
            raise PlanInputError(
                f"the call-count file has no '{name}' variant; refresh it with the plan_calls benchmark (`python -m benchmarks --only plan_calls` in the agentrail repository)."
            ) from None


def fit_line(points: Sequence[tuple[float, float]]) -> Line:
    """Least-squares line through ``(model_calls, count)`` points; flat (the mean) when model calls do not vary."""
    if not points:
        raise ValueError("no points to fit")
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread < 1e-9:
        return Line(intercept=round(mean_y, 6), slope=0.0)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return Line(intercept=round(mean_y - slope * mean_x, 6), slope=round(slope, 6))


def _package_files(package: str) -> Iterable[tuple[str, Path]]:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PlanInputError(f"package {package} is not installed, so the call counts cannot be dated.")
    root = Path(next(iter(spec.submodule_search_locations)))
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield f"{package}/{path.relative_to(root).as_posix()}", path


def code_hash(packages: Sequence[str] = HASHED_PACKAGES) -> str:
    """SHA-256 over the path and text of every module of ``packages`` (line endings normalized)."""
    digest = hashlib.sha256()
    for package in packages:
        for name, path in _package_files(package):
            digest.update(name.encode())
            digest.update(b"\0")
            digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
            digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


def load_call_counts(path: Path | None = None) -> CallCounts:
    """The call-count file shipped with the CLI, or ``path``.

    Raises
    ------
    PlanInputError
        When the file is missing or malformed.
    """
    try:
        if path is None:
            text = resources.files("agentrail_cli.plan").joinpath("data", CALL_COUNTS).read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
    except OSError:
        raise PlanInputError(
            "the call-count file is missing; write it with the plan_calls benchmark (`python -m benchmarks --only plan_calls` in the agentrail repository)."
        ) from None
    try:
        return CallCounts.model_validate(json.loads(text))
    except (ValueError, TypeError):
        raise PlanInputError(
            "the call-count file is malformed; write it again with the plan_calls benchmark (`python -m benchmarks --only plan_calls` in the agentrail repository)."
        ) from None


def dump_call_counts(counts: CallCounts, path: Path) -> None:
    """Write ``counts`` as stable, reviewable JSON."""
    path.write_text(json.dumps(counts.model_dump(mode="json"), indent=1, sort_keys=True) + "\n", encoding="utf-8")
