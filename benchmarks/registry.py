"""The registry of benchmarks. A new figure is a module with a ``BENCHMARK`` and one line in ``all_benchmarks``.

Each figure returns :class:`~benchmarks.report.Figure` results in the common shape, against a baseline it
measures in the same run.
"""

from __future__ import annotations

from benchmarks import (
    asgi_layer,
    asgi_overhead,
    assets,
    batch_lane,
    budget_overhead,
    cold_start,
    console_page,
    guard_overhead,
    local_mode,
    log_redaction,
    metrics_overhead,
    plan_calls,
    response_cache,
    routed_overhead,
    session_calls,
    shadow_overhead,
    stream_first_token,
    streaming_overhead,
    synth,
    task_throughput,
    token_costs,
    tracing_cold,
    warm,
    worker_import,
)
from benchmarks.benchmark import Benchmark

__all__ = ["all_benchmarks"]


def all_benchmarks() -> dict[str, Benchmark]:
    """Every benchmark by key, in the order they run (``assets`` after ``synth``, whose output it reuses)."""
    return {
        b.key: b
        for b in (
            cold_start.BENCHMARK,
            worker_import.BENCHMARK,
            tracing_cold.BENCHMARK,
            warm.BENCHMARK,
            metrics_overhead.BENCHMARK,
            guard_overhead.BENCHMARK,
            log_redaction.BENCHMARK,
            synth.BENCHMARK,
            assets.BENCHMARK,
            session_calls.BENCHMARK,
            task_throughput.BENCHMARK,
            routed_overhead.BENCHMARK,
            budget_overhead.BENCHMARK,
            shadow_overhead.BENCHMARK,
            response_cache.BENCHMARK,
            streaming_overhead.BENCHMARK,
            asgi_overhead.BENCHMARK,
            asgi_layer.BENCHMARK,
            local_mode.BENCHMARK,
            stream_first_token.BENCHMARK,
            token_costs.BENCHMARK,
            batch_lane.BENCHMARK,
            console_page.BENCHMARK,
            plan_calls.BENCHMARK,
        )
    }
