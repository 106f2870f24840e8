"""The response cache in one process against moto: the stateless agent's warm ``POST /invoke`` answered from the
cache (a hit), and run with the cache (a miss: the lookup, the run and the write), against the same kind of request
run without a cache (the model call).

Usage: ``python cached_requests.py COUNT WARMUP BLOCK REPORT.json``.

Two stateless apps of the demo's cacheable agent (``agentrail_runtime.demo:cacheable_definition``: calculator and
unit conversion, three model calls on the local model), the same except the cache. The hit side repeats one question
stored during warm-up; the miss and plain sides ask a new question each time (another number, the same work), so
neither is ever served from the cache. DynamoDB calls are timed by botocore hooks: against moto in process a call
costs botocore's and moto's CPU, not the network.
"""

import copy
import gc
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from alternation import in_alternating_blocks
from aws_calls import AwsCalls
from lambda_shapes import LambdaContext, load_event
from moto_account import create_tables, start_moto

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
TABLE = "agentrail-bench-response-cache"
QUESTION = "Calculate (12 + {n}) * 2 and convert 10 km to mi"
REPEATED = QUESTION.format(n=30)

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def main() -> int:
    count, warmup, block, report_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import boto3

    calls = AwsCalls(service="dynamodb")
    mock = start_moto(calls)
    dynamodb = boto3.client("dynamodb")
    create_tables(dynamodb, {TABLE: "pk"})

    from agentrail_runtime.api.stateless import create_stateless_app
    from agentrail_runtime.config import RuntimeSettings
    from agentrail_runtime.demo import cacheable_definition
    from agentrail_runtime.response_cache import ResponseCache
    from agentrail_runtime.service import AgentService

    def app(cached: bool):
        service = AgentService(definition=cacheable_definition, settings=RuntimeSettings())
        cache = ResponseCache.for_agent(cacheable_definition, TABLE, client=dynamodb) if cached else None
        return create_stateless_app(service=service, settings=service.settings, cache=cache)

    plain, cached = app(False), app(True)
    context = LambdaContext()
    event = load_event(str(EVENTS / "stateless" / "invoke.json"))
    numbers = iter(range(1_000, 10_000_000))

    def ask(target, message: str) -> dict:
        request = copy.deepcopy(event)
        request["body"] = json.dumps({"message": message})
        response = target.resolve(request, context)
        if response.get("statusCode") != 200:
            raise SystemExit(f"answered {response.get('statusCode')}: {response.get('body')}")
        return json.loads(response["body"])

    sides = {
        "plain": lambda: (plain, QUESTION.format(n=next(numbers)), None),
        "miss": lambda: (cached, QUESTION.format(n=next(numbers)), "miss"),
        "hit": lambda: (cached, REPEATED, "hit"),
    }
    first = ask(cached, REPEATED)
    assert first["cache"] == "miss" and first["status"] == "completed", first

    def timed(name: str, index: int, samples, inside) -> None:
        target, message, expected = sides[name]()
        calls.reset()
        calls.on = True
        started = time.perf_counter_ns()
        body = ask(target, message)
        elapsed = time.perf_counter_ns() - started
        calls.on = False
        if body.get("cache") != expected:
            raise SystemExit(f"{name}: expected cache {expected}, got {body.get('cache')}")
        if expected == "hit" and body["usage"]["total_tokens"] != 0:
            raise SystemExit(f"a hit reported tokens: {body['usage']}")
        if samples is not None:
            samples[name].append(elapsed)
            inside[name].append(calls.ns)
            operations[name].update(calls.counts)

    for index in range(warmup):
        for name in sides:
            timed(name, index, None, None)
    gc.collect()
    samples = {name: [] for name in sides}
    inside = {name: [] for name in sides}
    operations = {name: Counter() for name in sides}
    in_alternating_blocks(list(sides), count, block, lambda name, index: timed(name, index, samples, inside))
    report = {
        "samples_ns": samples,
        "dynamodb_ns": inside,
        "calls": {name: {f"DynamoDB.{op}": n for op, n in counted.items()} for name, counted in operations.items()},
        "message": REPEATED,
        "steps": first["steps"],
        "tokens": first["usage"]["total_tokens"],
    }
    with open(report_path, "w") as out:
        json.dump(report, out)
    mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
