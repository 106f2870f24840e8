"""Log redaction: what the runtime's redacting formatter costs per log line.

One process (``runners/log_lines.py``) formats distinct, seeded records of three kinds (a plain tool-call line, a
line with digits and no personal data, a line with an email and a phone number) through ``RedactingFormatter`` and,
alternating with it, through Powertools' own ``LambdaPowertoolsFormatter`` (the baseline, the same records).
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "LambdaPowertoolsFormatter().format of the same record, same process"
BLOCK = 100
KINDS = {
    "plain": "a tool-call line (no digit in a redacted text)",
    "repeated": "a reasoning-step line, the function's model id (texts with digits that repeat)",
    "digits": "a reasoning-step line, a distinct model id and counts each (recognizers run, find nothing)",
    "pii": "a line with an email and a phone number in extra (redacted)",
}


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Measure the formatter and the baseline; see the module docstring."""
    count = repetitions or 5000
    warmup = max(50, min(500, count // 10))
    context.progress(f"log_redaction: {count} records per side after {warmup} warm-up records")
    child = run_in_workdir(context.workdir, "log_lines.py", [str(count), str(warmup), str(BLOCK)], timeout=900)
    samples = {name: [ns / 1e3 for ns in values] for name, values in child.report["samples_ns"].items()}
    results = [
        Result(
            f"redacting formatter per log line, {description}, median",
            median(samples[kind]),
            "us",
            BASELINE,
            median(samples[f"{kind}_bare"]),
            details={
                "p05_p50_p95_p99_us": percentiles(samples[kind], (5, 50, 95, 99), digits=2),
                "bare_p05_p50_p95_p99_us": percentiles(samples[f"{kind}_bare"], (5, 50, 95, 99), digits=2),
                "lines_with_a_marker": child.report["redacted_lines"][kind],
            },
        )
        for kind, description in KINDS.items()
    ]
    return Figure(
        key="log_redaction",
        title="Log redaction: the redacting formatter per log line",
        results=results,
        notes=[
            f"{count} distinct seeded records per side after {warmup} warm-up records, in blocks of {BLOCK} "
            "alternating A B B A; the recognizers were loaded during the warm-up.",
            "Each ratio is against Powertools' own formatter on records of the same kind.",
        ],
    )


BENCHMARK = Benchmark(
    key="log_redaction",
    title="Log redaction",
    run=run,
    repetitions=5000,
    quick_repetitions=500,
)
