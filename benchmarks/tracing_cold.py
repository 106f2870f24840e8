"""Tracing's cold-start cost: a fresh process imports the stateless handler with X-Ray tracing on, and with it off.

On Lambda with active tracing, the runtime's Tracer imports the X-Ray SDK and patches each library the SDK supports
when the function first imports it (``agentrail_runtime.observability.patch_on_import``: botocore with its first
client, httpx, requests, sqlite3 ... if ever), rather than importing all of them at init as ``patch_all`` does: that
is the ``traced`` side, run with ``LAMBDA_TASK_ROOT`` set and tracing not disabled, as in Lambda. The baseline is the same handler with
``POWERTOOLS_TRACE_DISABLED=true``, where the runtime gives the Tracer its ``UntracedProvider`` and the X-Ray
SDK's core is never imported (each run checks both, and that a boto3 client made after the init is traced). The ratio is what tracing adds to a cold start, kept
visible; the target only catches a regression. Runs alternate B F, F B, ...
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.cold_start import extra_imports_table, import_time_table
from benchmarks.lambda_process import (
    ChildRun,
    RunnerError,
    alternating_sides,
    handler_environment,
    run_runner,
    traced_environment,
)
from benchmarks.report import Figure, Result, Target, median

__all__ = ["BENCHMARK"]

HANDLER = "agentrail_handlers.stateless.app:handler"
BASELINE = "the same handler with tracing off (POWERTOOLS_TRACE_DISABLED=true: no X-Ray SDK), fresh process"
#: Measured here at 1.52 (469 ms against 309 ms, 2026-12, a busy 2-CPU machine).
TARGET = Target(on="ratio", op="<=", limit=3.0)


def _import_ms(run: ChildRun, *, traced: bool) -> float:
    report = run.report
    if traced and "botocore" not in report["xray_patched_with_a_client"]:
        patched = report["xray_patched_with_a_client"]
        raise RunnerError(f"tracing was on but the X-Ray SDK did not patch botocore for a client (patched: {patched})")
    if not traced and report["xray_core_loaded"]:
        raise RunnerError("tracing was off but aws_xray_sdk.core was imported")
    return (report["imported_ns"] - report["started_ns"]) / 1e6


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Time the handler's import with tracing on and off in fresh processes; see the module docstring."""
    repetitions = repetitions or 15
    report_path = context.workdir / "tracing_import.json"
    untraced_env = handler_environment(context.workdir / "pycache")
    envs = {"framework": traced_environment(untraced_env), "baseline": untraced_env}

    def runner(flags: tuple[str, ...] = ()) -> Callable[[str], ChildRun]:
        def imported(side: str) -> ChildRun:
            return run_runner("handler_import.py", [HANDLER], env=envs[side], report_path=report_path, python_flags=flags)

        return imported

    timed = runner()
    for side in envs:  # one discarded run per side fills the bytecode and page caches
        _import_ms(timed(side), traced=side == "framework")
    samples = alternating_sides(
        lambda side: _import_ms(timed(side), traced=side == "framework"), repetitions, context.progress, "tracing cold start"
    )
    profiled = runner(("-X", "importtime"))
    traced, untraced = profiled("framework"), profiled("baseline")

    return Figure(
        key="tracing_cold",
        title="Tracing's cold-start cost: the stateless handler imported with X-Ray tracing on and off",
        results=[
            Result(
                name="stateless handler import (init), X-Ray tracing on (SDK imported, libraries patched on import)",
                value=median(samples["framework"]),
                unit="ms",
                baseline=BASELINE,
                baseline_value=median(samples["baseline"]),
                target=TARGET,
                details={
                    "samples": [round(v, 3) for v in samples["framework"]],
                    "baseline_samples": [round(v, 3) for v in samples["baseline"]],
                    "patched_at_init": traced.report["xray_patched"],
                    "patched_with_a_client": traced.report["xray_patched_with_a_client"],
                },
            )
        ],
        notes=[
            f"Median of {repetitions} fresh processes per side, alternating; one discarded warm-up run per side; "
            "bytecode cached (PYTHONPYCACHEPREFIX) for both sides.",
            "Traced: LAMBDA_TASK_ROOT set and tracing not disabled, so the Tracer imports the X-Ray SDK; at init it "
            f"patched {', '.join(traced.report['xray_patched']) or 'nothing'} (the supported libraries the handler "
            f"imported), and {', '.join(traced.report['xray_patched_with_a_client'])} once a boto3 client was made "
            "(after the clock stopped). Untraced: POWERTOOLS_TRACE_DISABLED=true, the runtime's UntracedProvider, no "
            "aws_xray_sdk.core.",
            "Powertools' default Tracer (patch_all, the cold figure's baseline) imports every supported library "
            "installed; the venv holds more of them (httpx with its CLI, requests) than the dependencies layer.",
        ],
        tables=[
            import_time_table(traced.stderr, handler="the stateless handler with tracing on"),
            extra_imports_table(traced.stderr, untraced.stderr, handler="the stateless handler with tracing on"),
        ],
    )


BENCHMARK = Benchmark(
    key="tracing_cold",
    title="Tracing cold start",
    run=run,
    repetitions=15,
    quick_repetitions=5,
)
