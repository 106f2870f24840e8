"""``agentrail metrics`` reads the EMF lines Powertools Metrics printed and sums them per agent."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from agentrail_cli.main import _parser
from agentrail_cli.metrics import aggregate, parse_emf_line, percentile, read_points, render_chart, render_table, run_metrics
from agentrail_runtime.agent.loop import AgentResult, AgentStatus, ToolCallRecord
from agentrail_runtime.metering.metrics import emit_task_metrics
from agentrail_runtime.models.base import Usage

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics:UserWarning")


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    metrics = Metrics(namespace="Agentrail", service="support-desk")
    metrics.clear_metrics()
    yield metrics
    metrics.clear_metrics()


def run(*, input_tokens: int, output_tokens: int, cost: float, calls: list[tuple[str, str]]) -> AgentResult:
    return AgentResult(
        status=AgentStatus.COMPLETED,
        answer="done",
        model="bedrock:amazon.nova-lite-v1:0",
        steps=3,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        cost_usd=cost,
        tool_calls=[
            ToolCallRecord(step=i + 1, tool=name, tool_use_id=f"t{i}", outcome=outcome, latency_ms=1.0)
            for i, (name, outcome) in enumerate(calls)
        ],
        new_messages=[],
    )


@pytest.fixture
def emitted(metrics: Metrics, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    """A function log holding what the runtime's emitter printed for two tasks of agent ``support``, among log lines."""
    print('{"level":"INFO","message":"task submitted","task_id":"t1"}')
    emit_task_metrics(
        metrics, run(input_tokens=1000, output_tokens=200, cost=0.01, calls=[("lookup", "success")]), agent_name="support"
    )
    metrics.flush_metrics()
    calls = [("lookup", "success"), ("lookup", "error"), ("refund", "pending_approval")]
    emit_task_metrics(metrics, run(input_tokens=500, output_tokens=100, cost=0.005, calls=calls), agent_name="support")
    metrics.flush_metrics()
    print("START RequestId: 1 Version: $LATEST")
    log = tmp_path / "logs" / "Worker.log"
    log.parent.mkdir()
    log.write_text(capsys.readouterr().out)
    return log


def test_a_log_line_that_is_not_emf_gives_no_metric() -> None:
    assert parse_emf_line('{"level":"INFO","message":"hello"}') == []
    assert parse_emf_line('{"_aws": {"CloudWatchMetrics"') == []
    assert parse_emf_line("REPORT RequestId: 1 Duration: 2 ms") == []


def test_the_runtimes_emf_records_sum_per_agent_with_tokens_cost_and_tool_success(emitted: Path) -> None:
    (agent,) = [a for a in aggregate(read_points([emitted])) if a.agent == "support"]

    figures = agent.as_dict()
    assert (figures["input_tokens"], figures["output_tokens"], figures["cost_usd"]) == (1500, 300, 0.015)
    assert figures["tools"]["lookup"] == {"calls": 3, "outcomes": {"error": 1, "success": 2}, "success_rate": 2 / 3}
    # A call waiting for approval is neither a success nor a failure.
    assert figures["tools"]["refund"]["success_rate"] is None
    assert figures["tool_success_rate"] == 2 / 3


def test_a_record_without_an_agent_dimension_counts_for_the_one_agent_of_its_service(emitted: Path) -> None:
    agents = aggregate(read_points([emitted]))

    assert [(a.service, a.agent) for a in agents] == [("support-desk", "support")]
    assert agents[0].tasks == 2


def test_one_record_under_two_dimension_sets_counts_once_and_latencies_give_percentiles(
    metrics: Metrics, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    metrics.add_dimensions(service="support-desk", agent="router", model="local")  # a second set beside [service]
    metrics.add_metric(name="TaskLatency", unit=MetricUnit.Milliseconds, value=900)
    for latency in (100, 200, 300, 400, 5000):
        metrics.add_metric(name="StepLatency", unit=MetricUnit.Milliseconds, value=latency)
    metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=42)
    metrics.flush_metrics()
    log = tmp_path / "router.log"
    log.write_text(capsys.readouterr().out)

    agents = {a.agent: a for a in aggregate(read_points([log]))}

    assert agents["router"].totals["InputTokens"] == 42
    assert (agents["router"].latency("StepLatency", 50), agents["router"].latency("StepLatency", 99)) == (300, 5000)
    assert agents["router"].as_dict()["latency_ms"]["TaskLatency"] == {"p50": 900, "p99": 900, "count": 1}


def test_metrics_of_another_namespace_are_left_out(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with single_metric(name="InputTokens", unit=MetricUnit.Count, value=7, namespace="Elsewhere") as record:
        record.add_dimension(name="service", value="other")
    log = tmp_path / "other.log"
    log.write_text(capsys.readouterr().out)

    assert aggregate(read_points([log])) == []
    assert len(aggregate(read_points([log], namespace="Elsewhere"))) == 1


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert (percentile([5, 1, 3], 50), percentile(range(1, 101), 99), percentile([7], 99)) == (3, 99, 7)


def test_the_table_and_the_chart_name_each_agent_with_its_figures(emitted: Path) -> None:
    agents = aggregate(read_points([emitted]))

    table = render_table(agents)
    chart = render_chart(agents, metric="cost", width=10)

    assert table.splitlines()[0].split()[:4] == ["SERVICE", "AGENT", "TASKS", "IN"]
    assert "support-desk  support" in table
    assert "lookup" in table and "67%" in table
    assert chart.splitlines()[0] == "Cost per agent (USD)"
    assert "support (support-desk)  ██████████ 0.0150" in chart


def test_the_metrics_command_prints_json_per_agent_from_the_state_dirs_logs(emitted: Path) -> None:
    args = _parser().parse_args(["metrics", "--state-dir", str(emitted.parent.parent), "--json"])
    out = io.StringIO()

    assert args.run(args, out) == 0

    document = json.loads(out.getvalue())
    (support,) = [a for a in document["agents"] if a["agent"] == "support"]
    assert support["input_tokens"] == 1500


def test_the_metrics_command_says_where_it_looked_when_nothing_ran(tmp_path: Path) -> None:
    out = io.StringIO()

    run_metrics(argparse.Namespace(state_dir=tmp_path, namespace="Agentrail", json=False, chart=None), out)

    assert out.getvalue() == f"No Agentrail metrics in {tmp_path / 'logs'} (no function logs: run `agentrail local` first).\n"


def test_tokens_read_from_or_written_to_the_prompt_cache_count_as_input_and_are_listed_apart(
    metrics: Metrics, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cached = run(input_tokens=10, output_tokens=50, cost=0.001, calls=[]).model_copy(
        update={"usage": Usage(input_tokens=10, output_tokens=50, cache_read_tokens=900, cache_write_tokens=90)}
    )
    emit_task_metrics(metrics, cached, agent_name="support")
    metrics.flush_metrics()
    emit_task_metrics(metrics, run(input_tokens=400, output_tokens=50, cost=0.001, calls=[]), agent_name="support")
    metrics.flush_metrics()
    log = tmp_path / "Worker.log"
    log.write_text(capsys.readouterr().out)

    (agent,) = [a for a in aggregate(read_points([log])) if a.agent == "support"]

    figures = agent.as_dict()
    assert (figures["input_tokens"], figures["cache_read_tokens"], figures["cache_write_tokens"]) == (1400, 900, 90)
    assert "1,400" in render_table([agent])  # IN TOKENS: every input token, cached or not
    # A run without the cache emits no cache metric: no series of its own on an account that never caches.
    assert figures["metrics"]["CacheReadTokens"]["count"] == 1
