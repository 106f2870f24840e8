"""Warm requests of the stateless handler with its agent metrics emitted, and with the emitter a no-op, alternating.

Usage: ``python metered_requests.py EVENT.json COUNT WARMUP BLOCK REPORT.json``.

One handler, one process: the two sides differ only in
``agentrail_runtime.service.emit_task_metrics`` (the real one: one EMF record per run plus one line per tool and
outcome, written to stdout, which the harness sends to /dev/null as Lambda sends it to CloudWatch Logs). Blocks
alternate A B B A, as in ``warm_requests.py``.
"""

import copy
import gc
import json
import sys
import time

from alternation import in_alternating_blocks
from lambda_shapes import LambdaContext, load_event, load_handler


def main() -> int:
    event_path, count, warmup, block, report_path = sys.argv[1:]
    count, warmup, block = int(count), int(warmup), int(block)
    handler = load_handler("agentrail_handlers.stateless.app:handler")
    import agentrail_runtime.service as service  # loaded by the handler above

    emitters = {"metered": service.emit_task_metrics, "unmetered": lambda *args, **kwargs: None}
    event = load_event(event_path)
    context = LambdaContext()

    def invoke(name: str, samples: list[int] | None) -> None:
        service.emit_task_metrics = emitters[name]
        request = copy.deepcopy(event)
        started = time.perf_counter_ns()
        response = handler(request, context)
        elapsed = time.perf_counter_ns() - started
        if response.get("statusCode") != 200:
            raise SystemExit(f"{name} answered {response.get('statusCode')}: {response.get('body')}")
        if samples is not None:
            samples.append(elapsed)

    for name in emitters:
        for _ in range(warmup):
            invoke(name, None)
    gc.collect()

    samples: dict[str, list[int]] = {name: [] for name in emitters}
    in_alternating_blocks(list(emitters), count, block, lambda name, _: invoke(name, samples[name]))

    with open(report_path, "w") as report:
        json.dump({"samples_ns": samples, "warmup": warmup, "block": block}, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
