"""Warm requests in one process: time each invocation of two handlers, in alternating blocks.

Usage: ``python warm_requests.py NAME=MODULE:FUNCTION ... EVENT.json COUNT WARMUP BLOCK REPORT.json``.

Each handler is imported under its own ``POWERTOOLS_SERVICE_NAME``, so their
Loggers do not share one ``logging.Logger``. Blocks alternate in the order
A B B A ..., which cancels a linear drift (thermal, frequency) between them,
while each block keeps one handler's code hot in the CPU caches as
consecutive requests to one Lambda environment would.
"""

import copy
import gc
import json
import os
import sys
import time

from alternation import in_alternating_blocks
from lambda_shapes import LambdaContext, load_event, load_handler


def main() -> int:
    *specs, event_path, count, warmup, block, report_path = sys.argv[1:]
    count, warmup, block = int(count), int(warmup), int(block)
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "bench")
    handlers = {}
    for named in specs:
        name, _, spec = named.partition("=")
        os.environ["POWERTOOLS_SERVICE_NAME"] = f"{service}-{name}"
        handlers[name] = load_handler(spec)
    event = load_event(event_path)
    context = LambdaContext()

    def invoke(name: str, samples: list[int] | None) -> None:
        request = copy.deepcopy(event)  # Lambda hands every invocation a fresh event
        started = time.perf_counter_ns()
        response = handlers[name](request, context)
        elapsed = time.perf_counter_ns() - started
        if response.get("statusCode") != 200:
            raise SystemExit(f"{name} answered {response.get('statusCode')}: {response.get('body')}")
        if samples is not None:
            samples.append(elapsed)

    for name in handlers:
        for _ in range(warmup):
            invoke(name, None)
    gc.collect()

    samples: dict[str, list[int]] = {name: [] for name in handlers}
    in_alternating_blocks(list(handlers), count, block, lambda name, _: invoke(name, samples[name]))

    with open(report_path, "w") as report:
        json.dump({"samples_ns": samples, "warmup": warmup, "block": block}, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
