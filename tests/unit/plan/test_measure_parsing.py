"""What ``--measure`` reads from a function's log: the model calls and tokens of its EMF records, and their series."""

from __future__ import annotations

import json

from aws_lambda_powertools.metrics import Metrics, MetricUnit

from agentrail_cli.plan.measure import _emf_values


def emf_line(service: str, agent: str, steps: int, input_tokens: int) -> str:
    """One EMF record as Powertools writes it, behind the log prefix local mode's function logs carry."""
    metrics = Metrics(namespace="Agentrail", service=service)
    metrics.add_dimension(name="agent", value=agent)
    metrics.add_metric(name="Steps", unit=MetricUnit.Count, value=steps)
    metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=input_tokens)
    record = metrics.serialize_metric_set()
    metrics.clear_metrics()
    return "2026-01-01T00:00:00Z\t" + json.dumps(record)


def test_model_calls_and_tokens_are_summed_over_the_emf_records_and_other_lines_are_skipped() -> None:
    lines = [
        emf_line("sessions", "demo", steps=3, input_tokens=1200),
        '{"level": "INFO", "message": "not a metric", "Steps": 99}',
        "START RequestId: 1 Version: 7",
        emf_line("sessions", "demo", steps=2, input_tokens=800),
        '{"_aws": broken json',
    ]
    series: set[str] = set()

    totals = _emf_values(lines, series)

    assert totals == {"Steps": 5.0, "InputTokens": 2000.0, "CacheReadTokens": 0.0, "CacheWriteTokens": 0.0, "OutputTokens": 0.0}
    assert series == {"Agentrail/Steps/agent=demo,service=sessions", "Agentrail/InputTokens/agent=demo,service=sessions"}


def test_each_dimension_value_is_its_own_series() -> None:
    series: set[str] = set()

    _emf_values([emf_line("worker", "billing", 1, 10), emf_line("worker", "support", 1, 10)], series)

    assert len(series) == 4  # two metrics x two agents


def test_tokens_read_from_or_written_to_the_prompt_cache_count_as_the_run_s_input() -> None:
    from agentrail_cli.plan.measure import raw_counts
    from agentrail_local.metering import MeterReading

    emf = {
        "Agent": {"Steps": 2.0, "InputTokens": 300.0, "CacheReadTokens": 600.0, "CacheWriteTokens": 100.0, "OutputTokens": 50.0}
    }

    counts = raw_counts(MeterReading(), emf, stored_before={}, roles={})

    assert counts["input_tokens"] == 1000.0  # the planner prices the cache's share itself, from its price table
    assert counts["output_tokens"] == 50.0
