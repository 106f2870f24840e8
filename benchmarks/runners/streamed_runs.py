"""The demo agent's run streamed to an event sink, against the same run without one (the model's ``converse``).

Usage: ``python streamed_runs.py COUNT WARMUP BLOCK REPORT.json``.

One agent, one process, the local model, the message of ``events/stateless/invoke.json`` (three model calls, two tool
calls, as in the ``warm`` figure). Sides,
alternating A B B A in blocks: ``converse`` (``Agent.run`` without a sink: no event is built), ``streamed``
(``on_event=list.append``: the loop's own cost, the local model's word-by-word stream, batching, events), and
``streamed_json`` (a sink that dumps each event to JSON, as a publisher does first). Logs go to stdout, which the
harness sends to /dev/null.
"""

import gc
import json
import sys
import time

from alternation import in_alternating_blocks

from agentrail_runtime.agent.loop import Agent
from agentrail_runtime.demo import calculator, convert_units
from agentrail_runtime.models.local import LocalModel

PROMPT = "Calculate (12 + 30) * 2 and convert 10 km to mi"


def main() -> int:
    count, warmup, block, report_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    agent = Agent(model=LocalModel(), tools=[calculator, convert_units])
    dumped: list[str] = []

    def as_json(event: object) -> None:
        dumped.append(json.dumps(event.model_dump(mode="json")))  # type: ignore[attr-defined]

    sides = {
        "converse": lambda: agent.run(PROMPT),
        "streamed": lambda: agent.run(PROMPT, on_event=[].append),
        "streamed_json": lambda: agent.run(PROMPT, on_event=as_json),
    }
    answers = {name: side().answer for name, side in sides.items()}
    if len(set(answers.values())) != 1:
        raise SystemExit(f"the sides answered differently: {answers}")
    for side in sides.values():
        for _ in range(warmup):
            side()
    gc.collect()
    samples: dict[str, list[int]] = {name: [] for name in sides}

    def measure(name: str, index: int) -> None:
        started = time.perf_counter_ns()
        sides[name]()
        samples[name].append(time.perf_counter_ns() - started)
        dumped.clear()

    in_alternating_blocks(list(sides), count, block, measure)
    events = []
    agent.run(PROMPT, on_event=events.append)
    with open(report_path, "w") as report:
        json.dump({"samples_ns": samples, "events": [e.type for e in events]}, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
