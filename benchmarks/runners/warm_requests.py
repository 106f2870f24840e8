"""Warm requests in one process: time each invocation of two handlers, in alternating blocks, and of variants of
the first one without some of its features.

Usage: ``python warm_requests.py NAME=MODULE:FUNCTION ... [NAME=~FEATURE,FEATURE ...] EVENT.json COUNT WARMUP BLOCK
REPORT.json``.

Each handler is imported under its own ``POWERTOOLS_SERVICE_NAME``, so their
Loggers do not share one ``logging.Logger``. A variant (``NAME=~FEATURE,...``) is
the first handler with each named feature of the stateless handler switched off
for its invocations (see :data:`FEATURES`): what the rest of the framework costs
without them. Blocks alternate in the order A B B A ..., which cancels a linear
drift (thermal, frequency) between them, while each block keeps one handler's
code hot in the CPU caches as consecutive requests to one Lambda environment would.
"""

import copy
import gc
import json
import os
import sys
import time

from alternation import in_alternating_blocks
from lambda_shapes import LambdaContext, load_event, load_handler

#: The features of the stateless handler a variant may run without: what each switches, on the handler's module.
FEATURES = ("agent_metrics", "guards", "prompt_cache")


def feature_switches(module_name):
    """For each of :data:`FEATURES`, a function that turns it on (``True``) or off in the stateless handler's module."""
    import agentrail_runtime.service as service_module  # loaded by the handler
    from agentrail_runtime.agent.build import GuardPipelines
    from agentrail_runtime.guardrails.base import GuardPipeline

    handler_module = sys.modules[module_name]
    service = handler_module.service
    emit, guards, model = service_module.emit_task_metrics, service.guards, service.model()
    cache = model.prompt_cache
    no_guards = GuardPipelines(*(GuardPipeline((), stage=stage) for stage in ("input", "tool_result", "output")))

    def agent_metrics(on):
        # One EMF record per run and a line per tool and outcome (the metrics_overhead figure's no-op).
        service_module.emit_task_metrics = emit if on else (lambda *args, **kwargs: None)

    def set_guards(on):
        # The agent definition's input, tool-result and output guard pipelines.
        service.guards = guards if on else no_guards

    def prompt_cache(on):
        # The local model's simulated prompt cache (AGENT_PROMPT_CACHING, on by default): the accounting Bedrock
        # does on its side and reports in the response.
        model.prompt_cache = cache if on else None

    return {"agent_metrics": agent_metrics, "guards": set_guards, "prompt_cache": prompt_cache}


def main() -> int:
    *specs, event_path, count, warmup, block, report_path = sys.argv[1:]
    count, warmup, block = int(count), int(warmup), int(block)
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "bench")
    handlers = {}
    without = {}
    for named in specs:
        name, _, spec = named.partition("=")
        if spec.startswith("~"):
            without[name] = tuple(feature for feature in spec[1:].split(",") if feature)
            continue
        os.environ["POWERTOOLS_SERVICE_NAME"] = f"{service}-{name}"
        handlers[name] = load_handler(spec)
    first_name, _, first_spec = specs[0].partition("=")
    switches = feature_switches(first_spec.partition(":")[0]) if without else {}
    for name in without:
        handlers[name] = handlers[first_name]
    event = load_event(event_path)
    context = LambdaContext()

    def invoke(name: str, samples: list[int] | None) -> None:
        for feature, switch in switches.items():
            switch(feature not in without.get(name, ()))
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
