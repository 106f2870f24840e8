"""Task batches in one process against moto: the task worker and a bare Powertools batch handler on the same records.

Usage: ``python task_batches.py COUNT BATCH WARMUP REPORT.json``.

Then SIDE_EFFECT_TASKS more tasks, each making one call of a tool with side effects, run one per batch with their
calls counted apart (the exactly-once checkpoint's increment).

COUNT tasks are submitted through the task service (record + SQS message); the
baseline queue gets a message with the same task id for each. Then batches of
up to BATCH messages are received, handed to each handler as the SQS event
Lambda builds, and deleted unless reported failed, alternating A B B A. The
handler call is timed alone and together with the receive and delete. Every
AWS call made by a handler is counted, and the time inside it summed, by botocore hooks on the default session, registered
before the handlers build their clients (and on the idempotency layer's own
client). Moto runs in process.
"""

import gc
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import moto
from aws_calls import AwsCalls
from lambda_shapes import LambdaContext, load_event, load_handler
from moto_account import create_queue, create_tables

from agentrail_local.awslambda.event_sources import sqs_event

REPO = Path(__file__).resolve().parents[2]
TASK_TABLE = "agentrail-bench-tasks"
IDEMPOTENCY_TABLE = "agentrail-bench-idempotency"
BASELINE_TABLE = "agentrail-bench-baseline"
BUS = "agentrail-bench-tasks"
OWNER = "iam:arn:aws:sts::123456789012:assumed-role/agentrail-caller/agentrail-client"
#: One call of the demo's ``issue_refund`` (side effects, no approval at or under 100 USD), then the answer.
SIDE_EFFECT_MESSAGE = "refund 50 usd for order A-1002"
SIDE_EFFECT_TASKS = 10


def main() -> int:
    count, batch, warmup, report_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    # Imported once moto is running: boto3's default session must send every call to moto.
    import boto3

    mock = moto.mock_aws()
    mock.start()
    boto3.setup_default_session()
    calls = {"framework": AwsCalls(), "baseline": AwsCalls()}
    for counter in calls.values():
        counter.register(boto3.DEFAULT_SESSION.events)
    dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
    create_tables(dynamodb, {TASK_TABLE: "task_id", IDEMPOTENCY_TABLE: "id", BASELINE_TABLE: "task_id"})
    boto3.client("events").create_event_bus(Name=BUS)
    queues = {name: create_queue(sqs, f"agentrail-bench-{name}") for name in ("framework", "baseline")}
    os.environ.update(
        {
            "AGENT_TASK_TABLE": TASK_TABLE,
            "AGENT_TASK_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
            "AGENT_TASK_QUEUE_URL": queues["framework"][0],
            "AGENT_TASK_EVENT_BUS": BUS,
            "BASELINE_TABLE": BASELINE_TABLE,
        }
    )
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "bench")
    os.environ["POWERTOOLS_SERVICE_NAME"] = f"{service}-framework"
    worker = __import__("agentrail_handlers.task_worker.app", fromlist=["handler"])
    os.environ["POWERTOOLS_SERVICE_NAME"] = f"{service}-baseline"
    # Powertools idempotency builds its client from a session of its own.
    calls["framework"].register(worker.persistence.client.meta.events)
    handlers = {"framework": worker.handler, "baseline": load_handler("benchmarks.baselines.powertools_batch_handler:handler")}
    context = LambdaContext()

    # Imported after moto and the call counters are in place: the runtime builds clients and reads settings at import.
    from agentrail_runtime.tasks import TaskSubmission

    message = json.loads(load_event(str(REPO / "events" / "stateless" / "invoke.json"))["body"])["message"]
    total = count + warmup
    for _ in range(total):
        record = worker.tasks.submit(TaskSubmission(message=message), owner=OWNER)
        sqs.send_message(QueueUrl=queues["baseline"][0], MessageBody=json.dumps({"task_id": record.task_id}))

    def one_batch(name: str, timed: dict | None) -> int:
        url, arn = queues[name]
        started = time.perf_counter_ns()
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch, MessageSystemAttributeNames=["All"]).get(
            "Messages", []
        )
        if not received:
            return 0
        event = sqs_event(received, arn, sqs.meta.region_name)
        calls[name].on = timed is not None
        inside_before = calls[name].ns
        handler_started = time.perf_counter_ns()
        result = handlers[name](event, context)
        handler_ns = time.perf_counter_ns() - handler_started
        calls[name].on = False
        inside_ns = calls[name].ns - inside_before
        if result["batchItemFailures"]:
            raise SystemExit(f"{name} reported failures: {result['batchItemFailures']}")
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)],
        )
        if timed is not None:
            timed["handler_ns"].append(handler_ns)
            timed["aws_ns"].append(inside_ns)
            timed["path_ns"].append(time.perf_counter_ns() - started)
            timed["records"].append(len(received))
        return len(received)

    for name in handlers:
        done = 0
        while done < warmup:
            done += one_batch(name, None)
    gc.collect()
    timed = {name: {"handler_ns": [], "aws_ns": [], "path_ns": [], "records": []} for name in handlers}
    names = list(handlers)
    round_index = 0
    while any(sum(t["records"]) < count for t in timed.values()):
        for name in names if round_index % 2 == 0 else names[::-1]:
            if sum(timed[name]["records"]) < count:
                one_batch(name, timed[name])
        round_index += 1

    # The checkpoint's increment: tasks whose one tool call has side effects (a refund under the approval limit), each
    # alone in its batch, counted apart from the timed tasks.
    timed_calls = {name: dict(counter.counts) for name, counter in calls.items()}
    side_effect_calls = calls["framework"]  # its hooks are on every client the worker built
    side_effect_calls.reset()
    refunded = []
    for _ in range(SIDE_EFFECT_TASKS):
        record = worker.tasks.submit(TaskSubmission(message=SIDE_EFFECT_MESSAGE), owner=OWNER)
        url, arn = queues["framework"]
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"])["Messages"]
        side_effect_calls.on = True
        result = handlers["framework"](sqs_event(received, arn, sqs.meta.region_name), context)
        side_effect_calls.on = False
        if result["batchItemFailures"]:
            raise SystemExit(f"a side-effecting task failed: {result['batchItemFailures']}")
        sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
        finished = worker.tasks.store.get(record.task_id)
        refunded.append([c.tool for c in finished.result.tool_calls if c.outcome == "success"].count("issue_refund"))
    if refunded != [1] * SIDE_EFFECT_TASKS:
        raise SystemExit(f"each side-effecting task should refund once, not {refunded}")

    statuses = Counter(item["status"]["S"] for item in dynamodb.scan(TableName=TASK_TABLE)["Items"])
    with open(report_path, "w") as report:
        json.dump(
            {
                "timed": timed,
                "calls": timed_calls,
                "side_effect": {
                    "tasks": SIDE_EFFECT_TASKS,
                    "message": SIDE_EFFECT_MESSAGE,
                    "calls": dict(side_effect_calls.counts),
                },
                "task_statuses": dict(statuses),
                "batch": batch,
                "warmup": warmup,
            },
            report,
        )
    mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
