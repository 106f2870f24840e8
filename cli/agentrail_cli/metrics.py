"""``agentrail metrics``: per-agent tokens, cost, tool success and latency from the EMF records local functions printed.

Local mode writes each function's stdout to ``<state-dir>/logs/<function>.log``; Powertools Metrics prints one
CloudWatch Embedded Metric Format (EMF) JSON object per line there. This module reads those lines back, keeps every
metric of the namespace (by name, unit and dimensions, so metrics it does not know are still counted), and sums
them per agent: the ``agent`` dimension when a record has it, with its ``service``. One record counts once, however
many dimension sets it declares. Standard library only: it runs in the CLI without the runtime.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from agentrail_cli.synth import default_state_dir

#: The namespace the constructs give agent metrics (``AgentFunctionOptions.metrics_namespace``).
DEFAULT_NAMESPACE = "Agentrail"
#: The record's agent when no dimension set names one (a function's own flush carries ``service`` only).
NO_AGENT = "-"
#: Tool outcomes that are neither a success nor a failure yet.
UNFINISHED_OUTCOMES = frozenset({"pending_approval"})


@dataclass(frozen=True)
class MetricPoint:
    """One metric of one EMF record: its values (EMF allows a list), unit and the record's dimension values."""

    namespace: str
    name: str
    unit: str
    values: tuple[float, ...]
    dimensions: dict[str, str]
    timestamp_ms: int | None = None


def parse_emf_line(line: str) -> list[MetricPoint]:
    """Every metric of one log line if it is an EMF record, else ``[]`` (any other log line, or half a line).

    The dimensions are the union of the record's dimension sets, valued from the record's top-level keys.
    """
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return []
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return []
    meta = record.get("_aws") if isinstance(record, dict) else None
    if not isinstance(meta, dict):
        return []
    points: list[MetricPoint] = []
    for directive in meta.get("CloudWatchMetrics") or []:
        names = {name for dimension_set in directive.get("Dimensions") or [] for name in dimension_set}
        dimensions = {name: str(record[name]) for name in sorted(names) if name in record}
        for metric in directive.get("Metrics") or []:
            name = metric.get("Name")
            values = _values(record.get(name))
            if name and values:
                points.append(
                    MetricPoint(
                        namespace=str(directive.get("Namespace", "")),
                        name=name,
                        unit=str(metric.get("Unit", "None")),
                        values=values,
                        dimensions=dimensions,
                        timestamp_ms=meta.get("Timestamp"),
                    )
                )
    return points


def _values(raw: Any) -> tuple[float, ...]:
    items = raw if isinstance(raw, list) else [raw]
    return tuple(float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool))


def read_points(paths: Iterable[Path], *, namespace: str = DEFAULT_NAMESPACE) -> Iterator[MetricPoint]:
    """The metrics of ``namespace`` in the given log files, in file order."""
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                yield from (p for p in parse_emf_line(line) if p.namespace == namespace)


def percentile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q <= 100), or None without values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class ToolStats:
    calls: float = 0
    outcomes: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def success_rate(self) -> float | None:
        """Successful calls over finished ones (a call waiting for approval is neither)."""
        finished = self.calls - sum(self.outcomes.get(o, 0) for o in UNFINISHED_OUTCOMES)
        return self.outcomes.get("success", 0) / finished if finished else None


@dataclass
class AgentStats:
    """What one agent (of one service) reported: the known metrics summed, every metric kept by name."""

    service: str
    agent: str
    outcomes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    tools: dict[str, ToolStats] = field(default_factory=lambda: defaultdict(ToolStats))
    totals: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, point: MetricPoint) -> None:
        self.totals[point.name] += sum(point.values)
        self.samples[point.name].extend(point.values)
        if point.name.startswith("Tasks_"):
            self.outcomes[point.name.removeprefix("Tasks_")] += sum(point.values)
        if point.name == "ToolCalls" and "tool" in point.dimensions:
            stats = self.tools[point.dimensions["tool"]]
            stats.calls += sum(point.values)
            stats.outcomes[point.dimensions.get("outcome", "unknown")] += sum(point.values)

    @property
    def tasks(self) -> float:
        return sum(self.outcomes.values())

    @property
    def tool_calls(self) -> float:
        return sum(t.calls for t in self.tools.values())

    @property
    def tool_success_rate(self) -> float | None:
        whole = ToolStats()
        for stats in self.tools.values():
            whole.calls += stats.calls
            for outcome, count in stats.outcomes.items():
                whole.outcomes[outcome] += count
        return whole.success_rate

    @property
    def input_tokens(self) -> float:
        """Every input token: plain (``InputTokens``), read from the prompt cache and written to it."""
        return sum(self.totals.get(name, 0) for name in ("InputTokens", "CacheReadTokens", "CacheWriteTokens"))

    def latency(self, name: str, q: float) -> float | None:
        return percentile(self.samples.get(name, ()), q)

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "agent": self.agent,
            "tasks": self.tasks,
            "outcomes": dict(sorted(self.outcomes.items())),
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.totals.get("CacheReadTokens", 0),
            "cache_write_tokens": self.totals.get("CacheWriteTokens", 0),
            "output_tokens": self.totals.get("OutputTokens", 0),
            "cost_usd": round(self.totals.get("CostUSD", 0), 6),
            "steps": self.totals.get("Steps", 0),
            "tool_calls": self.tool_calls,
            "tool_success_rate": self.tool_success_rate,
            "tools": {
                name: {"calls": t.calls, "outcomes": dict(sorted(t.outcomes.items())), "success_rate": t.success_rate}
                for name, t in sorted(self.tools.items())
            },
            "latency_ms": {
                name: {"p50": self.latency(name, 50), "p99": self.latency(name, 99), "count": len(self.samples[name])}
                for name in ("StepLatency", "TaskLatency")
                if self.samples.get(name)
            },
            "metrics": {name: {"sum": total, "count": len(self.samples[name])} for name, total in sorted(self.totals.items())},
        }


def aggregate(points: Iterable[MetricPoint]) -> list[AgentStats]:
    """Per (service, agent), sorted by cost then tokens, highest first.

    A record without an ``agent`` dimension counts for the one agent its service reported elsewhere (each function
    serves one agent), and under the agent ``-`` when its service reported none or several.
    """
    listed = list(points)
    agents_of: dict[str, set[str]] = defaultdict(set)
    for point in listed:
        if "agent" in point.dimensions:
            agents_of[point.dimensions.get("service", "-")].add(point.dimensions["agent"])
    agents: dict[tuple[str, str], AgentStats] = {}
    for point in listed:
        service = point.dimensions.get("service", "-")
        only = agents_of[service]
        agent = point.dimensions.get("agent") or (next(iter(only)) if len(only) == 1 else NO_AGENT)
        agents.setdefault((service, agent), AgentStats(service, agent)).add(point)
    return sorted(
        agents.values(),
        key=lambda a: (
            -a.totals.get("CostUSD", 0),
            -(a.input_tokens + a.totals.get("OutputTokens", 0)),
            a.service,
            a.agent,
        ),
    )


# -- rendering ------------------------------------------------------------------------------------------------


def _number(value: float | None, *, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def render_table(agents: list[AgentStats]) -> str:
    """The per-agent table, then one line per tool."""
    header = (
        "SERVICE",
        "AGENT",
        "TASKS",
        "IN TOKENS",
        "OUT TOKENS",
        "COST USD",
        "TOOL CALLS",
        "TOOL OK",
        "STEP p50/p99 ms",
        "TASK p50/p99 ms",
    )
    rows = [header]
    rows.extend(
        (
            a.service,
            a.agent,
            _number(a.tasks),
            _number(a.input_tokens),
            _number(a.totals.get("OutputTokens", 0)),
            _number(a.totals.get("CostUSD", 0), digits=4),
            _number(a.tool_calls),
            _percent(a.tool_success_rate),
            f"{_number(a.latency('StepLatency', 50))}/{_number(a.latency('StepLatency', 99))}",
            f"{_number(a.latency('TaskLatency', 50))}/{_number(a.latency('TaskLatency', 99))}",
        )
        for a in agents
    )
    lines = _columns(rows)
    tool_rows = [("AGENT", "TOOL", "CALLS", "OK", "OUTCOMES")]
    for a in agents:
        for name, t in sorted(a.tools.items()):
            outcomes = ", ".join(f"{o}={_number(c)}" for o, c in sorted(t.outcomes.items()))
            tool_rows.append((a.agent, name, _number(t.calls), _percent(t.success_rate), outcomes))
    if len(tool_rows) > 1:
        lines += ["", *_columns(tool_rows)]
    return "\n".join(lines)


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def chart_metric(agents: list[AgentStats]) -> str:
    """``cost`` when any agent cost something, else ``tokens`` (a local model is free)."""
    return "cost" if any(a.totals.get("CostUSD", 0) > 0 for a in agents) else "tokens"


def render_chart(agents: list[AgentStats], *, metric: str, width: int = 40) -> str:
    """A text bar chart of cost (USD) or tokens (input plus output) per agent."""

    def value(a: AgentStats) -> float:
        if metric == "cost":
            return a.totals.get("CostUSD", 0)
        return a.input_tokens + a.totals.get("OutputTokens", 0)

    top = max((value(a) for a in agents), default=0)
    labels = [f"{a.agent} ({a.service})" if a.agent != NO_AGENT else a.service for a in agents]
    pad = max((len(label) for label in labels), default=0)
    title = "Cost per agent (USD)" if metric == "cost" else "Tokens per agent (input + output)"
    lines = [title]
    for label, a in zip(labels, agents, strict=True):
        bar = "█" * (round(value(a) / top * width) if top else 0)
        shown = f"{value(a):.4f}" if metric == "cost" else f"{value(a):,.0f}"
        lines.append(f"  {label.ljust(pad)}  {bar} {shown}")
    return "\n".join(lines)


# -- the command ------------------------------------------------------------------------------------------------


def add_metrics_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``agentrail metrics`` on the ``agentrail`` parser."""
    parser = commands.add_parser(
        "metrics",
        help="local mode: per-agent tasks, tokens, cost, tool success and latency of what ran, as a table and a chart",
        description="Read the EMF metrics local functions printed into <state-dir>/logs and sum them per agent.",
    )
    parser.add_argument(
        "--state-dir", type=Path, help="local mode's folder (default: .agentrail in the project, found from any subfolder)"
    )
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="metrics namespace (default: %(default)s)")
    parser.add_argument("--chart", choices=["cost", "tokens"], help="what the bars show (default: cost, or tokens when free)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    parser.set_defaults(run=run_metrics)


def log_files(state_dir: Path) -> list[Path]:
    """Each function's log of local mode in ``state_dir`` (not the APIs' access logs)."""
    return sorted(p for p in (state_dir / "logs").glob("*.log") if not p.name.endswith(".access.log"))


def run_metrics(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    state_dir = args.state_dir or default_state_dir()
    files = log_files(state_dir)
    agents = aggregate(read_points(files, namespace=args.namespace))
    if args.json:
        print(json.dumps({"namespace": args.namespace, "agents": [a.as_dict() for a in agents]}, indent=2), file=out)
        return 0
    if not agents:
        where = f"{state_dir / 'logs'}" if files else f"{state_dir / 'logs'} (no function logs: run `agentrail local` first)"
        print(f"No {args.namespace} metrics in {where}.", file=out)
        return 0
    print(f"Agent metrics of local mode ({len(files)} function logs in {state_dir / 'logs'}):\n", file=out)
    print(render_table(agents), file=out)
    print("", file=out)
    print(render_chart(agents, metric=args.chart or chart_metric(agents)), file=out)
    return 0


__all__ = [
    "DEFAULT_NAMESPACE",
    "AgentStats",
    "MetricPoint",
    "ToolStats",
    "add_metrics_command",
    "aggregate",
    "chart_metric",
    "log_files",
    "parse_emf_line",
    "percentile",
    "read_points",
    "render_chart",
    "render_table",
    "run_metrics",
]
