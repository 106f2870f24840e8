"""Cold start: a fresh process imports the stateless handler and serves its first ``POST /invoke``.

Baseline: the same in a fresh process running the hand-written Powertools
handler (``baselines/powertools_handler.py``). Runs alternate B F, F B, ... so
a drift over the run weighs on both sides alike. Target: ratio <= 1.10, with tracing
off (as in local mode) and on (as in Lambda with active tracing, the constructs' default).

The bytecode rows run on the functions' own Python (python3.13) from the
layers as the constructs build them (``built_layers``): once with the
bytecode the layers ship, once from a copy without it. Without python3.13
they fall back to the venv's Python, with and without a bytecode cache.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.built_layers import BuiltLayers, build
from benchmarks.lambda_process import (
    BASELINE_HANDLER,
    FRAMEWORK_HANDLER,
    INVOKE_EVENT,
    PYTHON,
    ChildRun,
    RunnerError,
    alternating_sides,
    handler_environment,
    layer_environment,
    run_runner,
    traced_environment,
)
from benchmarks.report import Figure, Result, Table, Target, median

__all__ = ["BENCHMARK", "extra_imports_table", "import_time_table"]

BASELINE = "hand-written Powertools handler, fresh process (benchmarks/baselines/powertools_handler.py)"
TARGET = Target(on="ratio", op="<=", limit=1.10)
TOP_IMPORTS = 10


@dataclass(frozen=True)
class ColdSample:
    """One fresh process's timings, in milliseconds."""

    to_response_ms: float
    import_ms: float
    first_request_ms: float
    process_ms: float


def _sample(run: ChildRun) -> ColdSample:
    report = run.report
    if report["status_code"] != 200:
        raise RunnerError(f"first request answered {report['status_code']}: {str(report['body'])[:500]}")
    return ColdSample(
        to_response_ms=(report["responded_ns"] - report["started_ns"]) / 1e6,
        import_ms=(report["imported_ns"] - report["started_ns"]) / 1e6,
        first_request_ms=(report["responded_ns"] - report["imported_ns"]) / 1e6,
        process_ms=run.process_ns / 1e6,
    )


def _import_times(stderr: str) -> list[tuple[str, int, float, float]]:
    """(module, depth, cumulative ms, self ms) per line of ``python -X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((name.strip(), depth, int(cumulative_us) / 1000, int(self_us) / 1000))
    return rows


def import_time_table(stderr: str, *, top: int = TOP_IMPORTS, handler: str = "the stateless handler") -> Table:
    """The ``top`` imports by cumulative time from ``python -X importtime`` output (nesting shown by indent)."""
    rows = sorted(_import_times(stderr), key=lambda row: row[2], reverse=True)[:top]
    return Table(
        title=f"Top {top} imports of {handler} by cumulative time (python -X importtime, one run)",
        header=("Module (indent = imported by the line above it)", "Cumulative", "Self"),
        rows=[("  " * depth + name, f"{cumulative:.1f} ms", f"{self_ms:.1f} ms") for name, depth, cumulative, self_ms in rows],
    )


def extra_imports_table(ours: str, baseline: str, *, top: int = TOP_IMPORTS, handler: str = "the stateless handler") -> Table:
    """Modules only our handler imports, by self time: where the cold-start difference comes from."""
    theirs = {name for name, *_ in _import_times(baseline)}
    extra = [row for row in _import_times(ours) if row[0] not in theirs]
    total = sum(self_ms for *_, self_ms in extra)
    rows = sorted(extra, key=lambda row: row[3], reverse=True)[:top]
    return Table(
        title=f"Top {top} of the {len(extra)} modules only {handler} imports, by self time ({total:.1f} ms in all, one run each)",
        header=("Module", "Self", "Cumulative"),
        rows=[(name, f"{self_ms:.1f} ms", f"{cumulative:.1f} ms") for name, _, cumulative, self_ms in rows],
    )


def _alternating(
    first_request: Callable[[str], ChildRun], repetitions: int, progress: Callable[[str], None], label: str
) -> dict[str, list[ColdSample]]:
    return alternating_sides(lambda side: _sample(first_request(side)), repetitions, progress, label)


def _result(name: str, samples: dict[str, list[ColdSample]], attribute: str, target: Target | None = None) -> Result:
    ours, base = ([getattr(s, attribute) for s in samples[side]] for side in ("framework", "baseline"))
    return Result(
        name=name,
        value=median(ours),
        unit="ms",
        baseline=BASELINE,
        baseline_value=median(base),
        target=target,
        details={"samples": [round(v, 3) for v in ours], "baseline_samples": [round(v, 3) for v in base]},
    )


def _bytecode_results(
    layers: BuiltLayers | None, runner: Callable[..., Callable[[str], ChildRun]], context: RunContext, repetitions: int
) -> tuple[list[Result], list[str]]:
    """Cold starts with the layers' shipped bytecode and without it (rows and notes); see the module docstring."""
    if layers is None:
        empty = context.workdir / "no-pycache"
        empty.mkdir(exist_ok=True)
        uncached = runner(handler_environment(empty, write_bytecode=False))
        samples = _alternating(uncached, repetitions, context.progress, "cold start, no bytecode")
        return [_result("cold start, no bytecode cache: script start to first response", samples, "to_response_ms")], [
            f"No python3.13 here, so the bytecode row runs on the venv's Python {platform.python_version()} "
            f"(median of {repetitions} per side): every module compiled from source on every start, as from layers "
            "that ship no .pyc files on Lambda's read-only file system."
        ]
    shipped = runner(layer_environment(layers.compiled), python=layers.python)
    source_only = runner(layer_environment(layers.source_only), python=layers.python)
    for side in ("framework", "baseline"):
        _sample(shipped(side))  # warms the OS page cache
    with_bytecode = _alternating(shipped, repetitions, context.progress, "cold start, layers' bytecode")
    without_bytecode = _alternating(source_only, repetitions, context.progress, "cold start, layers without bytecode")
    ours = [sample.to_response_ms for sample in with_bytecode["framework"]]
    theirs = [sample.to_response_ms for sample in without_bytecode["framework"]]
    mib = {kind: f"{size / 2**20:.1f} MiB" for kind, size in layers.sizes.items()}
    return [
        _result(
            f"python{layers.python_version}, layers with their bytecode: script start to first response",
            with_bytecode,
            "to_response_ms",
        ),
        _result(
            f"python{layers.python_version}, layers without bytecode: script start to first response",
            without_bytecode,
            "to_response_ms",
        ),
        Result(
            name=f"python{layers.python_version}, stateless handler: layers with their bytecode against without",
            value=median(ours),
            unit="ms",
            baseline="the same layers without their __pycache__ folders",
            baseline_value=median(theirs),
            details={"samples": [round(v, 3) for v in ours], "baseline_samples": [round(v, 3) for v in theirs]},
        ),
    ], [
        f"Bytecode rows: python{layers.python_version} ({layers.python}) imports from the runtime and dependencies "
        "layers as the constructs build them for this machine's architecture (the hashed lock, bytecode compiled at "
        f"synth), never writing bytecode; median of {repetitions} per side. 'Without bytecode' is a copy of the same "
        "layers without __pycache__: every module compiled from source on every start.",
        "Layer sizes on disk, with bytecode / without: "
        + "; ".join(f"{kind} {mib[kind]} / {mib[f'{kind} without bytecode']}" for kind in ("runtime", "dependencies"))
        + ".",
    ]


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Measure cold starts of both handlers; see the module docstring."""
    repetitions = repetitions or 15
    report_path = context.workdir / "first_request.json"
    sides = {"framework": FRAMEWORK_HANDLER, "baseline": BASELINE_HANDLER}

    def runner(env: dict[str, str], flags: tuple[str, ...] = (), python: str | Path = PYTHON) -> Callable[[str], ChildRun]:
        def first_request(side: str) -> ChildRun:
            return run_runner(
                "first_request.py",
                [sides[side], str(INVOKE_EVENT)],
                env=env,
                report_path=report_path,
                python_flags=flags,
                python=python,
            )

        return first_request

    cached = runner(handler_environment(context.workdir / "pycache"))
    # One discarded run per side fills the bytecode cache and the OS page cache.
    for side in sides:
        _sample(cached(side))
    samples = _alternating(cached, repetitions, context.progress, "cold start")
    traced = runner(traced_environment(handler_environment(context.workdir / "pycache")))
    for side in sides:
        _sample(traced(side))
    traced_samples = _alternating(traced, repetitions, context.progress, "cold start, tracing on")
    profiled = runner(handler_environment(context.workdir / "pycache"), ("-X", "importtime"))
    imports, baseline_imports = profiled("framework"), profiled("baseline")

    context.progress("building the layers (python3.13, this machine's architecture)")
    bytecode_results, bytecode_notes = _bytecode_results(
        build(context.workdir, context.shared), runner, context, max(3, repetitions // 3)
    )

    answer = json.loads(imports.report["body"]).get("answer", "")
    return Figure(
        key="cold",
        title="Cold start: fresh process to first POST /invoke response",
        results=[
            _result("cold start: script start to first response", samples, "to_response_ms", TARGET),
            _result("  of which handler import (init)", samples, "import_ms"),
            _result("  of which first request", samples, "first_request_ms"),
            _result("cold start: total process wall time", samples, "process_ms"),
            _result(
                "cold start with X-Ray tracing on, both sides: script start to first response",
                traced_samples,
                "to_response_ms",
                TARGET,
            ),
            *bytecode_results,
        ],
        notes=[
            f"Median of {repetitions} fresh processes per side, alternating baseline/framework; "
            "one discarded warm-up run per side before.",
            "'Script start' is time.perf_counter_ns() on the runner's first line (after interpreter start-up); "
            "total process wall time is spawn to exit, measured by the parent.",
            f"The first five rows run on the venv's Python {platform.python_version()}, with bytecode cached "
            "(PYTHONPYCACHEPREFIX) for both sides.",
            "The first four run with POWERTOOLS_TRACE_DISABLED=true on both sides: there the runtime gives the Tracer "
            "a provider that records nothing and never imports the X-Ray SDK, which the baseline's Tracer() still "
            "imports, so ours can start faster. The tracing-on row is what Lambda with active tracing (the "
            "constructs' default) sees: both sides import the SDK; the baseline's Tracer() patches every library "
            "the SDK supports that is installed (patch_all) at init, ours patches each one when the function first "
            "imports it (botocore with its first client; see the tracing_cold figure).",
            *bytecode_notes,
            f"Event: {INVOKE_EVENT.relative_to(INVOKE_EVENT.parents[2])}, local model; our answer: {answer!r}.",
        ],
        tables=[import_time_table(imports.stderr), extra_imports_table(imports.stderr, baseline_imports.stderr)],
    )


BENCHMARK = Benchmark(
    key="cold",
    title="Cold start",
    run=run,
    repetitions=15,
    quick_repetitions=5,
)
