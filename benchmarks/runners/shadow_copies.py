"""Shadow deployment's live side in one process against moto: what sampling and copying a request to the shadow
queue adds to the stateless agent's warm ``POST /invoke``, against the same request without shadow.

Usage: ``python shadow_copies.py COUNT WARMUP BLOCK REPORT.json``.

Three stateless apps of the demo agent, the same except their shadow sampler: none, 10% and 100% (every request
copied). Each request has its own request id (the sample is a hash of it), the same ids for every app. SQS calls are
timed by botocore hooks: against moto in process a SendMessage costs botocore's and moto's CPU, not the network.
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
from moto_account import start_moto

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
MESSAGE = "Calculate (12 + 30) * 2 and convert 10 km to mi"

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def main() -> int:
    count, warmup, block, report_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import boto3

    calls = AwsCalls(service="sqs")
    mock = start_moto(calls)
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="agentrail-bench-shadow")["QueueUrl"]

    from agentrail_runtime.api.stateless import create_stateless_app
    from agentrail_runtime.config import RuntimeSettings
    from agentrail_runtime.demo import definition
    from agentrail_runtime.service import AgentService
    from agentrail_runtime.shadow import ShadowSampler

    def app(percent: float):
        service = AgentService(definition=definition, settings=RuntimeSettings())
        shadow = ShadowSampler(queue_url=queue_url if percent else None, percent=percent, sqs=sqs)
        return create_stateless_app(service=service, settings=service.settings, shadow=shadow)

    apps = {"plain": app(0), "shadow_10": app(10), "shadow_100": app(100)}
    context = LambdaContext()
    event = load_event(str(EVENTS / "stateless" / "invoke.json"))
    event["body"] = json.dumps({"message": MESSAGE})

    def timed(name: str, index: int, samples, inside) -> None:
        request = copy.deepcopy(event)
        request["requestContext"]["requestId"] = f"bench-{index:08d}"
        calls.reset()
        calls.on = True
        started = time.perf_counter_ns()
        response = apps[name].resolve(request, context)
        elapsed = time.perf_counter_ns() - started
        calls.on = False
        if response.get("statusCode") != 200:
            raise SystemExit(f"answered {response.get('statusCode')}: {response.get('body')}")
        if samples is not None:
            samples[name].append(elapsed)
            inside[name].append(calls.ns)
            operations[name].update(calls.counts)

    for index in range(warmup):
        for name in apps:
            timed(name, index, None, None)
    gc.collect()
    samples = {name: [] for name in apps}
    inside = {name: [] for name in apps}
    operations = {name: Counter() for name in apps}
    in_alternating_blocks(list(apps), count, block, lambda name, index: timed(name, warmup + index, samples, inside))
    sent = int(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    with open(report_path, "w") as report:
        json.dump(
            {
                "samples_ns": samples,
                "sqs_ns": inside,
                "calls": {name: {f"SQS.{op}": n for op, n in counted.items()} for name, counted in operations.items()},
                "sent": sent,
                "message": MESSAGE,
            },
            report,
        )
    mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
