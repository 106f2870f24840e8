"""The one result shape every figure reports, the machine facts, and the table and JSON they are written to."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"

__all__ = [
    "REPO_ROOT",
    "RESULTS_DIR",
    "Figure",
    "Result",
    "Table",
    "Target",
    "format_value",
    "machine_facts",
    "median",
    "percentile",
    "percentiles",
    "render",
    "started_at",
    "write_json",
]


def median(samples: Sequence[float]) -> float:
    """The median; every figure reports medians, so one slow outlier cannot move it."""
    return statistics.median(samples)


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by the nearest-rank method (an observed sample, never an interpolation)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def percentiles(samples: Sequence[float], pcts: Sequence[float], *, digits: int = 3) -> list[float]:
    """Each of ``pcts`` as :func:`percentile`, rounded to ``digits``: the spread a result's details record."""
    return [round(percentile(samples, pct), digits) for pct in pcts]


@dataclass(frozen=True)
class Target:
    """A limit from the issue, on the figure itself (``value``) or on its ratio to the baseline (``ratio``)."""

    on: Literal["value", "ratio"]
    op: Literal["<", "<=", "==", ">="]
    limit: float

    def met(self, value: float, ratio: float | None) -> bool:
        subject = value if self.on == "value" else ratio
        if subject is None:
            return False
        if self.op == "==":  # an exact budget (AWS calls): one call more or fewer is a change to own up to
            return math.isclose(subject, self.limit, abs_tol=1e-9)
        if self.op == ">=":
            return subject >= self.limit
        return subject < self.limit if self.op == "<" else subject <= self.limit

    def describe(self, unit: str) -> str:
        if self.on == "ratio":
            return f"ratio {self.op} {self.limit:g}"
        return f"{self.op} {format_value(self.limit, unit)}"


@dataclass(frozen=True)
class Result:
    """One figure: ``{name, value, unit, baseline, baseline_value, ratio, target, passed}``.

    ``baseline`` names what was measured for comparison in the same run;
    ``baseline_value`` is its figure in the same unit. Both are ``None`` only
    where the baseline has no counterpart (the one-function app has no layers).
    """

    name: str
    value: float
    unit: str
    baseline: str | None
    baseline_value: float | None
    target: Target | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_value": self.baseline_value,
            "ratio": self.ratio,
            "target": self.target.describe(self.unit) if self.target else None,
            "passed": self.passed,
            **({"details": self.details} if self.details else {}),
        }


@dataclass(frozen=True)
class Table:
    """A supporting table printed under a figure (top imports, asset list)."""

    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "header": list(self.header), "rows": [list(r) for r in self.rows]}


@dataclass
class Figure:
    """What one benchmark reports: its results, notes on how to read them, and supporting tables."""

    key: str
    title: str
    results: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "seconds": round(self.seconds, 2),
            "results": [r.to_dict() for r in self.results],
            "notes": self.notes,
            "tables": [t.to_dict() for t in self.tables],
        }


def format_value(value: float | None, unit: str) -> str:
    """``value`` for the table: ``1.234 ms``, ``4.10 s``, ``12,345 B`` or ``38.15 MB`` (decimal units)."""
    if value is None:
        return "-"
    if unit == "bytes":
        if value >= 1_000_000:
            return f"{value / 1_000_000:,.2f} MB"
        return f"{value:,.0f} B"
    if unit == "ms":
        return f"{value:,.3f} ms" if abs(value) < 10 else f"{value:,.1f} ms"
    if unit == "s":
        return f"{value:,.2f} s"
    return f"{value:g} {unit}"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git_revision() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}{' (uncommitted changes)' if dirty else ''}"


def _baseline_hashes() -> dict[str, str]:
    """SHA-256 (first 16 hex digits) of every baseline file, so two reports show whether their baselines were the same."""
    folder = Path(__file__).resolve().parent / "baselines"
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and "cdk.out" not in path.parts
    }


def _cdk_cli_version() -> str | None:
    try:
        return json.loads((REPO_ROOT / "node_modules" / "aws-cdk" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def machine_facts() -> dict[str, Any]:
    """What a reader needs to compare two runs: CPUs, Python, platform and the versions measured."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "git_revision": _git_revision(),
        "baseline_sha256": _baseline_hashes(),
        "versions": {
            "aws-lambda-powertools": _version("aws-lambda-powertools"),
            "pydantic": _version("pydantic"),
            "aws-cdk-lib": _version("aws-cdk-lib"),
            "aws-cdk (CLI)": _cdk_cli_version(),
        },
    }


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(r) for r in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)]


def _verdict(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "-"}[passed]


def render(figures: Sequence[Figure], machine: dict[str, Any], run: dict[str, Any]) -> str:
    """The stdout report: machine facts, then one Markdown table per figure (pastes into notes as is)."""
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    out = [
        "# agentrail benchmarks",
        "",
        f"Machine: {machine['cpu_count']} CPUs ({machine['usable_cpus']} usable), {machine['cpu_model']}; "
        f"Python {machine['python']}; {machine['platform']}",
        f"Versions: {versions}; revision {machine['git_revision']}"
        + (
            f"; base revision {run['base_revision'][:12]} (--base: 'Before and after' at the end)"
            if run.get("base_revision")
            else ""
        ),
        "Baselines (sha256): " + ", ".join(f"{name} {digest}" for name, digest in machine.get("baseline_sha256", {}).items()),
        f"Run: {run['started']}, figures {', '.join(run['figures'])}, "
        "repetitions "
        + (", ".join(f"{k} {v}" for k, v in run["repetitions"].items() if v) or "-")
        + (" (quick)" if run["quick"] else ""),
    ]
    load = run.get("load_average_1min", {})
    busiest = max((v for v in load.values() if v is not None), default=None)
    if busiest is not None:
        out.append(f"Load average (1 min): {load.get('start')} at start, {load.get('end')} at end")
        if busiest > (machine["usable_cpus"] or 1):
            out.append(
                f"Warning: the machine was busy (load {busiest} on {machine['usable_cpus']} CPUs): absolute times "
                "and tails are noisy; the alternating ratios hold up better."
            )
    for figure in figures:
        out += ["", f"## {figure.title}  ({figure.seconds:.1f} s)", ""]
        baselines = sorted({r.baseline for r in figure.results if r.baseline})
        for baseline in baselines:
            out.append(f"Baseline: {baseline}")
        if baselines:
            out.append("")
        rows = [
            (
                r.name,
                format_value(r.value, r.unit),
                format_value(r.baseline_value, r.unit),
                "-" if r.ratio is None else f"{r.ratio:.2f}",
                r.target.describe(r.unit) if r.target else "-",
                _verdict(r.passed),
            )
            for r in figure.results
        ]
        out += _markdown_table(("Figure", "Value", "Baseline", "Ratio", "Target", "Result"), rows)
        for table in figure.tables:
            out += ["", f"{table.title}:", ""]
            out += _markdown_table(table.header, table.rows)
        if figure.notes:
            out.append("")
            out += [f"- {note}" for note in figure.notes]
    checked = [r for f in figures for r in f.results if r.passed is not None]
    failed = [r for r in checked if not r.passed]
    out += ["", f"Targets: {len(checked) - len(failed)} of {len(checked)} met."]
    out += [
        f"  missed: {r.name} ({format_value(r.value, r.unit)}, target {r.target.describe(r.unit)})" for r in failed if r.target
    ]
    return "\n".join(out)


def write_json(path: Path, figures: Sequence[Figure], machine: dict[str, Any], run: dict[str, Any]) -> None:
    """The same figures as :func:`render`, with every sample, for pasting into notes and comparing runs."""
    checked = [r.passed for f in figures for r in f.results if r.passed is not None]
    document = {
        "machine": machine,
        "run": run,
        "all_targets_met": all(checked) if checked else None,
        "figures": [f.to_dict() for f in figures],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def started_at() -> str:
    """Now, in UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")
