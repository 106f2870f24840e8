"""ASGI overhead: what mangum (and FastAPI) add to a warm request, against a plain handler answering the same route.

Three handlers answer ``GET /health`` (``events/asgi/health.json``) with the same JSON body, in one process,
each wrapped by the runtime's ``observed``: the ASGI handler (mangum over the FastAPI example agent), mangum over a
bare ASGI app (the adapter alone), and a plain handler that returns the proxy response itself (the baseline). The
overheads are differences of medians; their ratios are relative to the plain handler.
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import REPO_ROOT, Figure, Result, Target, median, percentile, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "a plain handler (observed, same route and body), same process"
HEALTH_EVENT = REPO_ROOT / "events" / "asgi" / "health.json"
EXAMPLE_DIR = REPO_ROOT / "examples" / "fastapi_agent"
#: mangum builds a scope, runs one event-loop cycle and reads the response: well under a millisecond.
MANGUM_TARGET = Target(on="value", op="<", limit=1.0)
BLOCK = 50


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Measure warm requests of the three handlers; see the module docstring."""
    count = repetitions or 2000
    warmup = max(20, min(200, count // 10))
    context.progress(f"asgi_overhead: {count} invocations per handler after {warmup} warm-up invocations")
    child = run_in_workdir(
        context.workdir,
        "asgi_requests.py",
        [str(HEALTH_EVENT), str(EXAMPLE_DIR), str(count), str(warmup), str(BLOCK)],
        timeout=900,
    )
    samples = {name: [ns / 1e6 for ns in values] for name, values in child.report["samples_ns"].items()}
    plain, mangum, asgi = samples["plain"], samples["mangum"], samples["asgi"]
    base = median(plain)
    spread = {f"{name}_p05_p50_p95_p99_ms": percentiles(values, (5, 50, 95, 99), digits=4) for name, values in samples.items()}
    return Figure(
        key="asgi_overhead",
        title="ASGI overhead: warm GET /health through mangum and FastAPI against a plain handler",
        results=[
            Result("ASGI handler (mangum + FastAPI example), median", median(asgi), "ms", BASELINE, base, details=spread),
            Result(
                "mangum overhead per request (mangum + bare ASGI app - plain), median",
                median(mangum) - base,
                "ms",
                BASELINE,
                base,
                MANGUM_TARGET,
            ),
            Result(
                "mangum overhead per request, p95",
                percentile(mangum, 95) - percentile(plain, 95),
                "ms",
                BASELINE,
                percentile(plain, 95),
            ),
            Result(
                "mangum + FastAPI overhead per request (ASGI handler - plain), median", median(asgi) - base, "ms", BASELINE, base
            ),
        ],
        notes=[
            f"{count} timed invocations per handler after {warmup} warm-up each, in blocks of {BLOCK} alternating; "
            "every handler is wrapped by observed() and answers the same body (checked); logs go to /dev/null.",
            "Overhead rows: the value is the difference, their ratio is that difference relative to the plain handler; "
            "the target applies to mangum's difference.",
        ],
    )


BENCHMARK = Benchmark(
    key="asgi_overhead",
    title="ASGI overhead",
    run=run,
    repetitions=2000,
    quick_repetitions=300,
)
