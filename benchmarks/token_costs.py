"""Token costs: what each saving does to the tokens and the USD of a fixed workload, against the same workload
without it, in one run.

One process (``runners/token_workloads.py``) runs each workload on the local model twice: without prompt caching
(the baseline) and with it, the local model's simulated cache following the priced model's own Bedrock rules
(minimum tokens per cache point, the fields that take one, the TTL). Each side is priced with the runtime's price
table. Workloads: TASKS tasks of a 5-step tool run (four tool calls, then the answer; about 2,000 tokens of system
prompt), a 20-turn session, and routed requests to the demo support team, the router on the specialist's model
(the baseline) or on a cheaper model of its own for its routing steps (``AGENT_STEP_MODELS``).
"""

from __future__ import annotations

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import run_in_workdir
from benchmarks.report import Figure, Result, Table, Target

__all__ = ["BENCHMARK"]

BASELINE = "the same workload without the saving, same run"
#: The issue names no limit; caching must at least pay for its writes on a workload that repeats its prompt.
TARGET = Target(on="ratio", op="<", limit=1.0)
_KINDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
_NAMES = {"tool_run": "5-step tool run", "session": "20-turn session", "routed": "routed team request"}
#: What the ``on`` side of each workload has that its ``off`` side has not.
_SAVING = {"tool_run": "prompt caching", "session": "prompt caching", "routed": "a routing model of its own"}


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Run the workloads; see the module docstring."""
    tasks = repetitions or 50
    context.progress(f"token_costs: {tasks} tool runs and a 20-turn session, caching off and on, per model")
    report = run_in_workdir(context.workdir, "token_workloads.py", [str(tasks)], timeout=600).report
    results: list[Result] = []
    rows: list[tuple[str, ...]] = []
    for workload, by_model in report.items():
        count = by_model.pop("tasks")
        for spec, sides in by_model.items():
            off, on = sides["off"], sides["on"]
            unit = "session" if workload == "session" else "task"
            results.append(
                Result(
                    f"{_NAMES[workload]}, {spec}: USD per {unit} with {_SAVING[workload]}",
                    on["usd"] / count,
                    "USD",
                    BASELINE,
                    off["usd"] / count,
                    TARGET,
                    details={"tokens_on": {k: on[k] for k in _KINDS}, "tokens_off": {k: off[k] for k in _KINDS}},
                )
            )
            for side, values in (("off", off), ("on", on)):
                rows.append(
                    (
                        _NAMES[workload],
                        spec,
                        _SAVING[workload] + (" on" if side == "on" else " off"),
                        *(f"{values[k] / count:,.0f}" for k in _KINDS),
                        f"{values['usd'] / count:.6f}",
                    )
                )
    return Figure(
        key="token_costs",
        title="Token costs: each saving against the same workload without it",
        results=results,
        notes=[
            "Tokens are the local model's estimate (one per four characters); the cache's split follows the priced"
            " model's Bedrock rules (BEDROCK_CACHE_RULES), simulated: no Bedrock call is made.",
            "USD is the runtime's built-in price table (list prices, us-east-1): cache reads and writes priced apart.",
            "The ratio is USD per task with the saving over USD per task without it; below 1 the saving pays.",
        ],
        tables=[
            Table(
                "Tokens and USD per task (per session for the session)",
                ("Workload", "Model", "Saving", "Input", "Cache read", "Cache write", "Output", "USD"),
                rows,
            )
        ],
    )


BENCHMARK = Benchmark(key="token_costs", title="Token costs", run=run, repetitions=50, quick_repetitions=10)
