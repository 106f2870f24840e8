"""Session turns: DynamoDB calls per turn at 10 and at 1,000 turns of history, and the warm per-turn overhead.

Calls are counted by botocore hooks on every DynamoDB client of the sessions
handler (``runners/session_turns.py``), against moto in the same process.
Targets: at most one read (the window Query) and one write (the turn's
transaction, which carries the state document only when a tool changed it) per
turn, whatever the length of the history; and exactly the session turn's call
budget (``call_budgets.SESSION_TURN``: 1 Query, 1 TransactWriteItems), by
operation, for the most any measured turn made.

The overhead is a session turn through the sessions handler minus a stateless
invocation of the same message, both with the local model, at the median. The
session turn includes its two DynamoDB calls against moto in process, which
cost what botocore and moto cost (parsing, serializing, moto's copy of the
table on each transaction), not what DynamoDB costs over the network. So the
figure is reported twice: as measured, and without the time inside the
DynamoDB calls; the targets apply to the latter, the framework's own work:
< 3 ms at the median, and a p95 under 3x that median. The p95 is of the same
per-turn figure: each timed turn's time without its DynamoDB calls, minus the
stateless median.

Warm turns find most of their window parsed already (the store's memo of the
turns it read, and of their compact history). A third side, "cold", empties
that memo before each turn, as on an instance that did not serve the session's
previous turns: reported without a target.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.call_budgets import SESSION_TURN, budget_results, total
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Table, Target, median, percentile, percentiles

__all__ = ["BENCHMARK"]

STATELESS = "stateless agent, same message, same process (no session: 0 DynamoDB calls)"
SHORT = "the same turn at 10 turns of history"
READ_TARGET = Target(on="value", op="<=", limit=1)
WRITE_TARGET = Target(on="value", op="<=", limit=1)
CALLS_TARGET = Target(on="value", op="<=", limit=2)
OVERHEAD_TARGET = Target(on="value", op="<", limit=3.0)
#: The p95 of the per-turn overhead under 3x its median (the row's ratio is p95 / median).
OVERHEAD_SPREAD_TARGET = Target(on="ratio", op="<", limit=3.0)
OVERHEAD_MEDIAN = "the per-turn overhead without the DynamoDB calls, median (the row above)"
CPU_OVERHEAD_MEDIAN = "that median in the thread's CPU time"
BLOCK = 25
WRITES = {"TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}


def _worst(turns: list[dict[str, Any]]) -> dict[str, int]:
    """The most calls any measured turn made: reads, writes and all calls."""
    per_turn = [Counter(t["operations"]) for t in turns]
    return {
        "reads": max(c["Query"] + c["GetItem"] + c["BatchGetItem"] for c in per_turn),
        "writes": max(sum(c[w] for w in WRITES) for c in per_turn),
        "calls": max(sum(c.values()) for c in per_turn),
    }


def _most_by_operation(turns: list[dict[str, Any]]) -> dict[str, int]:
    """The most calls of each operation any of ``turns`` made, named as the call budgets name them (``DynamoDB.Query``)."""
    most: Counter[str] = Counter()
    for turn in turns:
        for operation, count in turn["operations"].items():
            most[f"DynamoDB.{operation}"] = max(most[f"DynamoDB.{operation}"], count)
    return dict(most)


def _describe(turn: dict[str, Any]) -> tuple[str, str]:
    operations = ", ".join(f"{n} {op}" for op, n in sorted(Counter(turn["operations"]).items()))
    items = "; ".join(" + ".join(kinds) for kinds in turn["transactions"]) or "-"
    return operations, items


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Count calls per turn and time warm turns; see the module docstring."""
    count = repetitions or 1000
    warmup = max(10, min(50, count // 10))
    context.progress(f"session_calls: {count} timed turns per side after {warmup} warm-up, plus call counts")
    child = run_in_workdir(context.workdir, "session_turns.py", [str(count), str(warmup), str(BLOCK)], timeout=1800)
    report = child.report
    short, long = report["calls"]["10"], report["calls"]["1000"]
    at_10, at_1000 = _worst(short["turns"]), _worst(long["turns"])
    state_10, state_1000 = _worst([short["state_turn"]]), _worst([long["state_turn"]])

    ours = [ns / 1e6 for ns in report["samples_ns"]["sessions"]]
    base = [ns / 1e6 for ns in report["samples_ns"]["stateless"]]
    cold = [ns / 1e6 for ns in report["samples_ns"]["sessions_cold"]]
    dynamo = [ns / 1e6 for ns in report["dynamo_ns"]["sessions"]]
    cold_dynamo = [ns / 1e6 for ns in report["dynamo_ns"]["sessions_cold"]]
    own = [total - inside for total, inside in zip(ours, dynamo, strict=True)]
    cold_own = [total - inside for total, inside in zip(cold, cold_dynamo, strict=True)]
    ours_median, base_median = median(ours), median(base)
    # Per turn: its time without its DynamoDB calls, minus the stateless median.
    overhead = [turn - base_median for turn in own]
    overhead_median = median(overhead)
    cpu_base_median = median([ns / 1e6 for ns in report["cpu_ns"]["stateless"]])
    cpu_overhead = [
        (total - inside) / 1e6 - cpu_base_median
        for total, inside in zip(report["cpu_ns"]["sessions"], report["dynamo_cpu_ns"]["sessions"], strict=True)
    ]
    spread = {
        "session_turn_p05_p50_p95_p99_ms": percentiles(ours, (5, 50, 95, 99)),
        "stateless_p05_p50_p95_p99_ms": percentiles(base, (5, 50, 95, 99)),
        "inside_dynamodb_p05_p50_p95_ms": percentiles(dynamo, (5, 50, 95)),
        "overhead_without_dynamodb_p05_p50_p95_p99_ms": percentiles(overhead, (5, 50, 95, 99)),
        "cpu_overhead_without_dynamodb_p05_p50_p95_p99_ms": percentiles(cpu_overhead, (5, 50, 95, 99)),
        "cold_overhead_without_dynamodb_p05_p50_p95_p99_ms": percentiles([t - base_median for t in cold_own], (5, 50, 95, 99)),
    }
    history = f"{long['history_before']:,}"
    results = [
        Result("reads per turn (Query), 10 turns of history", at_10["reads"], "calls", STATELESS, 0.0, READ_TARGET),
        Result("writes per turn (transaction), 10 turns of history", at_10["writes"], "calls", STATELESS, 0.0, WRITE_TARGET),
        Result("DynamoDB calls per turn, 10 turns of history", at_10["calls"], "calls", STATELESS, 0.0, CALLS_TARGET),
        Result(
            f"reads per turn (Query), {history} turns of history", at_1000["reads"], "calls", SHORT, at_10["reads"], READ_TARGET
        ),
        Result(
            f"writes per turn (transaction), {history} turns of history",
            at_1000["writes"],
            "calls",
            SHORT,
            at_10["writes"],
            WRITE_TARGET,
        ),
        Result(
            f"DynamoDB calls per turn, {history} turns of history", at_1000["calls"], "calls", SHORT, at_10["calls"], CALLS_TARGET
        ),
        Result(
            "writes of a turn whose tool changes the state",
            max(state_10["writes"], state_1000["writes"]),
            "calls",
            SHORT,
            at_10["writes"],
            WRITE_TARGET,
        ),
        *budget_results(
            "a turn, any history (exact budget)",
            _most_by_operation([*short["turns"], short["state_turn"], *long["turns"], long["state_turn"]]),
            total(SESSION_TURN),
            baseline=STATELESS,
        ),
        Result("session turn, median", ours_median, "ms", STATELESS, base_median, details=spread),
        Result("session turn, p95", percentile(ours, 95), "ms", STATELESS, percentile(base, 95)),
        Result(
            "per-turn overhead as measured (incl. moto DynamoDB), median", ours_median - base_median, "ms", STATELESS, base_median
        ),
        Result("  of which inside the 2 DynamoDB calls (botocore + moto), median", median(dynamo), "ms", STATELESS, base_median),
        Result(
            "per-turn overhead without the DynamoDB calls, median",
            overhead_median,
            "ms",
            STATELESS,
            base_median,
            OVERHEAD_TARGET,
        ),
        Result(
            "per-turn overhead without the DynamoDB calls, p95 (of each turn's, minus the stateless median)",
            percentile(overhead, 95),
            "ms",
            OVERHEAD_MEDIAN,
            overhead_median,
            OVERHEAD_SPREAD_TARGET,
        ),
        Result(
            "  the same p95 in the thread's CPU time (a busy neighbour's preemptions left out)",
            percentile(cpu_overhead, 95),
            "ms",
            CPU_OVERHEAD_MEDIAN,
            median(cpu_overhead),
        ),
        Result(
            "per-turn overhead without the DynamoDB calls, median, cold (window parsed again)",
            median(cold_own) - base_median,
            "ms",
            STATELESS,
            base_median,
        ),
    ]
    rows = []
    for label, phase in ((f"{short['history_before']} turns", short), (f"{history} turns", long)):
        operations, items = _describe(phase["turns"][0])
        rows.append((label, "plain turn", operations, items))
        operations, items = _describe(phase["state_turn"])
        rows.append((label, "tool changed the state", operations, items))
    return Figure(
        key="session_calls",
        title="Session turn: DynamoDB calls per turn and warm overhead over the stateless agent",
        results=results,
        tables=[
            Table(
                "DynamoDB calls of one turn, by history length",
                ("History", "Turn", "Calls", "Items written (one transaction)"),
                rows,
            )
        ],
        notes=[
            f"Calls: the most any of {len(short['turns'])} measured turns made (plus one turn whose tool changed the state), "
            f"after 10 real turns, and again after the history was cloned to {history} turns. The window Query has "
            f"Limit = window + 4 ({report['window_turns']} turns + ~turn, ~summary, ~state, ~meta).",
            f"Timing: {count} turns per side after {warmup} warm-up, blocks of {BLOCK} alternating A B C, C B A; message "
            "'Calculate (12 + 30) * 2 and convert 10 km to mi' (3 model steps, 2 tools) on both sides; every session "
            f"turn has a full window ({report['window_turns']} earlier turns sent as history), sessions are replaced "
            f"after {report['timed_turns_per_session']} timed turns.",
            "Moto's in-process DynamoDB is included in the 'as measured' row: it is CPU work in this process (request "
            "parsing, response serialization, a copy of the table per transaction), not network latency. Real "
            "DynamoDB adds a few ms of latency per call instead. The targets apply to the rows without DynamoDB calls.",
            "Per-turn overhead without the DynamoDB calls: each timed session turn's time minus the time inside its "
            "DynamoDB calls, minus the stateless median; the median row and the p95 row are of that one series (the "
            "p95 row's ratio is p95 / median, target < 3). The row below it is the same series in the thread's CPU "
            "time (time.thread_time_ns, inside the DynamoDB calls too): wall time on a shared machine has the "
            "neighbours' preemptions in its tail, CPU time does not; compare the stateless side's own p95 / median "
            "in details. The cold row's turns first empty the store's memo of parsed "
            "turns and compact history, so they parse and build their whole window, as an instance that did not serve "
            "the session's previous turns does.",
        ],
    )


BENCHMARK = Benchmark(
    key="session_calls",
    title="Session turn calls and overhead",
    run=run,
    repetitions=1000,
    quick_repetitions=150,
)
