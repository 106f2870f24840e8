"""Routed requests in one process against moto: the multi-agent handlers through SQS, and the same two agents called directly.

Usage: ``python routed_requests.py COUNT WARMUP BLOCK REPORT.json``.

Framework side, per request: the task is submitted (record + message, not
timed), then the task queue, the chosen specialist's queue and the outcome
queue are each received from and handed, as the SQS event Lambda builds, to the
router, specialist and orchestrator handlers, and the message deleted, as
Lambda's poller would. Baseline side, per request: ``Agent.run`` of the router
definition (with its hand-off tools) and of the specialist definition (with its
tools and hand-offs), nothing else. Both use the local model; the requests
rotate over one per specialist. Sides alternate in blocks (A B B A). AWS calls
inside the handlers are counted and timed by botocore hooks in every session,
and counted again by handler (router, specialist, orchestrator) and, apart,
those on the idempotency table (Powertools' records).
"""

import gc
import importlib
import json
import os
import sys
import time
from collections import Counter

import moto
from alternation import in_alternating_blocks
from aws_calls import AwsCalls
from lambda_shapes import LambdaContext
from moto_account import create_queue, create_tables

from agentrail_local.awslambda.event_sources import sqs_event

TASK_TABLE = "agentrail-bench-team-tasks"
IDEMPOTENCY_TABLE = "agentrail-bench-team-idempotency"
BUS = "agentrail-bench-team"
OWNER = "iam:arn:aws:sts::123456789012:assumed-role/agentrail-caller/agentrail-client"
TEAM = {
    # name: (definition, hand-offs)
    "billing": ("agentrail_runtime.demo_team:billing", ("account",)),
    "technical": ("agentrail_runtime.demo_team:technical", ()),
    "account": ("agentrail_runtime.demo_team:account", ("billing",)),
}
REQUESTS = [
    ("Why was I charged twice on invoice INV-1001?", "billing"),
    ("The dashboard is down", "technical"),
    ("Change my email to a@b.co", "account"),
]


def import_handler(name: str, environment: dict[str, str]):
    """``agentrail_handlers.<name>.app`` initialized under ``environment``, as its own Lambda function's cold start."""
    # Imported after moto and the call counters are in place: the runtime builds clients and reads settings at import.
    from agentrail_runtime.config import load_settings
    from agentrail_runtime.multiagent.settings import load_multi_settings
    from agentrail_runtime.tasks.settings import load_task_settings

    os.environ.update(environment)
    for cache in (load_settings, load_task_settings, load_multi_settings):
        cache.cache_clear()
    module_name = f"agentrail_handlers.{name}.app"
    sys.modules.pop(module_name, None)
    module = importlib.import_module(module_name)
    sys.modules.pop(module_name, None)
    for key in environment:
        os.environ.pop(key)
    return module


class CallsBy:
    """AWS calls while ``calls.on``, by handler (``function``) and operation, and those on the idempotency table."""

    def __init__(self, calls: AwsCalls) -> None:
        self.calls = calls
        self.function = ""
        self.by_function: Counter[str] = Counter()
        self.idempotency: Counter[str] = Counter()

    def install(self) -> None:
        from botocore.handlers import BUILTIN_HANDLERS

        BUILTIN_HANDLERS.append(("provide-client-params", self._count))

    def _count(self, params, model, **_) -> None:
        if not self.calls.on:
            return
        operation = f"{model.service_model.service_id}.{model.name}"
        self.by_function[f"{self.function} {operation}"] += 1
        if params.get("TableName") == IDEMPOTENCY_TABLE:
            self.idempotency[operation] += 1


def main() -> int:
    count, warmup, block, report_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    # Imported once moto is running: boto3's default session must send every call to moto.
    import boto3

    calls = AwsCalls()
    calls.install()
    calls_by = CallsBy(calls)
    calls_by.install()
    mock = moto.mock_aws()
    mock.start()
    dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
    create_tables(dynamodb, {TASK_TABLE: "task_id", IDEMPOTENCY_TABLE: "id"})
    boto3.client("events").create_event_bus(Name=BUS)
    queues = {name: create_queue(sqs, f"agentrail-bench-{name}") for name in ("tasks", "outcomes", *TEAM)}

    # Imported after moto and the call counters are in place: the runtime builds clients and reads settings at import.
    from agentrail_runtime.demo_team import ACCOUNT_DESCRIPTION, BILLING_DESCRIPTION, TECHNICAL_DESCRIPTION

    descriptions = {"billing": BILLING_DESCRIPTION, "technical": TECHNICAL_DESCRIPTION, "account": ACCOUNT_DESCRIPTION}
    catalog = [{"name": n, "description": descriptions[n], "queue_url": queues[n][0]} for n in TEAM]
    shared = {
        "AGENT_TASK_TABLE": TASK_TABLE,
        "AGENT_TASK_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "AGENT_TASK_EVENT_BUS": BUS,
        "AGENT_MULTI_SPECIALISTS": json.dumps(catalog),
        "AGENT_MULTI_ORCHESTRATOR_QUEUE_URL": queues["outcomes"][0],
    }
    handlers = {
        "router": import_handler(
            "router",
            shared
            | {
                "AGENT_TASK_QUEUE_URL": queues["tasks"][0],
                "AGENT_MULTI_AGENT_NAME": "router",
                "AGENT_MULTI_HANDOFFS": json.dumps(list(TEAM)),
            },
        ),
        **{
            name: import_handler(
                "specialist",
                shared
                | {
                    "AGENT_MULTI_AGENT_NAME": name,
                    "AGENT_DEFINITION": definition,
                    "AGENT_MULTI_HANDOFFS": json.dumps(list(handoffs)),
                },
            )
            for name, (definition, handoffs) in TEAM.items()
        },
        "orchestrator": import_handler("orchestrator", {k: v for k, v in shared.items() if k.startswith("AGENT_TASK_")}),
    }
    context = LambdaContext()

    # Imported after moto and the call counters are in place: the runtime builds clients and reads settings at import.
    from agentrail_runtime.agent.definition import load_definition
    from agentrail_runtime.agent.loop import Agent
    from agentrail_runtime.models.local import LocalModel
    from agentrail_runtime.multiagent import Router, SpecialistSpec, handoff_tool
    from agentrail_runtime.multiagent.routing import handoff_target
    from agentrail_runtime.tasks.service import TaskSubmission

    specs = {n: SpecialistSpec(name=n, description=descriptions[n]) for n in TEAM}
    model = LocalModel()
    router_definition = Router.definition()
    direct = {
        "router": Agent(
            model=model, tools=[handoff_tool(s) for s in specs.values()], system_prompt=router_definition.system_prompt
        ),
        **{
            name: Agent(
                model=model,
                tools=[*load_definition(definition).tools, *(handoff_tool(specs[h]) for h in handoffs)],
                system_prompt=load_definition(definition).system_prompt,
            )
            for name, (definition, handoffs) in TEAM.items()
        },
    }

    def deliver(function: str, queue_name: str, *, counted: bool) -> int:
        url, arn = queues[queue_name]
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"]).get(
            "Messages", []
        )
        if len(received) != 1:
            raise SystemExit(f"{queue_name}: expected one message, got {len(received)}")
        event = sqs_event(received, arn, sqs.meta.region_name)
        calls_by.function = "specialist" if function in TEAM else function
        calls.on = counted
        started = time.perf_counter_ns()
        result = handlers[function].handler(event, context)
        elapsed = time.perf_counter_ns() - started
        calls.on = False
        if result["batchItemFailures"]:
            raise SystemExit(f"{function} reported a failure")
        sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
        return elapsed

    router_tasks = handlers["router"].tasks

    def routed(index: int, timed: dict | None) -> None:
        message, specialist = REQUESTS[index % len(REQUESTS)]
        router_tasks.submit(TaskSubmission(message=message), owner=OWNER, correlation_id=f"bench-{index}")
        counted = timed is not None
        inside_before = calls.ns
        started = time.perf_counter_ns()
        handler_ns = sum(
            deliver(function, queue_name, counted=counted)
            for function, queue_name in (("router", "tasks"), (specialist, specialist), ("orchestrator", "outcomes"))
        )
        path_ns = time.perf_counter_ns() - started
        if timed is not None:
            timed["handler_ns"].append(handler_ns)
            timed["aws_ns"].append(calls.ns - inside_before)
            timed["path_ns"].append(path_ns)

    def baseline(index: int, timed: dict | None) -> None:
        message, specialist = REQUESTS[index % len(REQUESTS)]
        started = time.perf_counter_ns()
        first = direct["router"].run(message)
        answer = direct[handoff_target(first)].run(message)
        elapsed = time.perf_counter_ns() - started
        if handoff_target(first) != specialist or not answer.answer:
            raise SystemExit(f"the direct agents did not answer {message!r} as {specialist}")
        if timed is not None:
            timed["handler_ns"].append(elapsed)
            timed["aws_ns"].append(0)
            timed["path_ns"].append(elapsed)

    sides = {"framework": routed, "baseline": baseline}
    for side in sides.values():
        for index in range(warmup):
            side(index, None)
    gc.collect()
    timed = {name: {"handler_ns": [], "aws_ns": [], "path_ns": []} for name in sides}
    in_alternating_blocks(list(sides), count, block, lambda name, index: sides[name](index, timed[name]))

    statuses = Counter(item["status"]["S"] for item in dynamodb.scan(TableName=TASK_TABLE)["Items"])
    with open(report_path, "w") as report:
        json.dump(
            {
                "timed": timed,
                "aws_calls": dict(calls.counts),
                "idempotency_calls": dict(calls_by.idempotency),
                "calls_by_handler": dict(calls_by.by_function),
                "task_statuses": dict(statuses),
                "count": count,
            },
            report,
        )
    mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
