"""Daily budget checks in one process against moto: DynamoDB calls around each model call, and warm request time
against the same request without budgets.

Usage: ``python budget_checks.py COUNT WARMUP BLOCK REPORT.json``.

Two stateless apps of the demo agent in one process, the same except that one enforces a tenant and an agent
budget (limits no request reaches, so every check is a real reserve and settle in one TransactWriteItems each).
Every DynamoDB call is counted by botocore hooks on the default session, and classified from its parameters: a
reserve carries a ConditionExpression, a settle does not. Model calls are marked in the same log by the model
provider, so each DynamoDB call falls before or after a given model call.
"""

import copy
import gc
import json
import os
import sys
import time
from pathlib import Path

from alternation import in_alternating_blocks
from aws_calls import AwsCalls
from lambda_shapes import LambdaContext, load_event
from moto_account import start_moto

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
TABLE = "agentrail-bench-budget-counters"
MESSAGE = "Calculate (12 + 30) * 2 and convert 10 km to mi"

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


class BudgetCalls(AwsCalls):
    """DynamoDB calls, each logged as ``reserve`` or ``settle``, with ``model`` marks between them, while ``on``."""

    def __init__(self) -> None:
        super().__init__(service="dynamodb")

    def reset(self) -> None:
        super().reset()
        self.log: list[str] = []

    def register(self, events) -> None:
        super().register(events)
        for operation in ("UpdateItem", "TransactWriteItems", "GetItem"):
            events.register(f"before-parameter-build.dynamodb.{operation}", self._classify)

    def _classify(self, params, model, **_) -> None:
        if not self.on:
            return
        updates = [item["Update"] for item in params.get("TransactItems", [])] or [params]
        kind = "reserve" if any("ConditionExpression" in update for update in updates) else "settle"
        self.log.append(f"{kind}:{model.name}")

    def model_call(self) -> None:
        if self.on:
            self.log.append("model")


def around_each_model_call(log: list[str]) -> dict:
    """The most DynamoDB calls before any model call (since the previous one) and after any (until the next)."""
    marks = [i for i, entry in enumerate(log) if entry == "model"]
    before, after = [], []
    for n, mark in enumerate(marks):
        start = marks[n - 1] + 1 if n else 0
        end = marks[n + 1] if n + 1 < len(marks) else len(log)
        before.append(sum(1 for entry in log[start:mark] if entry.startswith("reserve")))
        after.append(sum(1 for entry in log[mark + 1 : end] if entry.startswith("settle")))
    return {
        "model_calls": len(marks),
        "max_before": max(before, default=0),
        "max_after": max(after, default=0),
        "dynamodb_calls": sum(1 for entry in log if entry != "model"),
        "operations": sorted({entry.split(":", 1)[1] for entry in log if entry != "model"}),
    }


def main() -> int:
    count, warmup, block, report_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import boto3

    calls = BudgetCalls()
    mock = start_moto(calls)
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    from agentrail_runtime.api.stateless import create_stateless_app
    from agentrail_runtime.config import RuntimeSettings
    from agentrail_runtime.contract import BudgetLimit, budgets_to_env
    from agentrail_runtime.demo import definition
    from agentrail_runtime.models.local import LocalModel
    from agentrail_runtime.service import AgentService

    class MarkedModel(LocalModel):
        def converse(self, **kwargs):
            calls.model_call()
            return super().converse(**kwargs)

    class Providers:
        model = MarkedModel()

        def get(self, spec):
            return self.model

    def app(**settings):
        service = AgentService(definition=definition, settings=RuntimeSettings(**settings), providers=Providers())
        return create_stateless_app(service=service, settings=service.settings)

    limits = [BudgetLimit("tenant", "tokens", 10**12), BudgetLimit("agent", "usd", 10.0**9)]
    plain = app()
    budgeted = app(budgets=budgets_to_env(limits), budget_table=TABLE)
    tenant_only = app(budgets=budgets_to_env(limits[:1]), budget_table=TABLE)
    context = LambdaContext()
    event = load_event(str(EVENTS / "stateless" / "invoke.json"))
    event["body"] = json.dumps({"message": MESSAGE})

    def ok(response: dict) -> dict:
        if response.get("statusCode") != 200:
            raise SystemExit(f"answered {response.get('statusCode')}: {response.get('body')}")
        return response

    # Calls: one request with both budgets (TransactWriteItems), one with the tenant's only (UpdateItem).
    counted = {}
    for name, resolver in (("tenant_and_agent", budgeted), ("tenant_only", tenant_only), ("none", plain)):
        calls.reset()
        calls.on = True
        ok(resolver.resolve(copy.deepcopy(event), context))
        calls.on = False
        counted[name] = around_each_model_call(calls.log)

    def timed(resolver, samples, dynamo) -> None:
        request = copy.deepcopy(event)
        calls.reset()
        calls.on = True
        started = time.perf_counter_ns()
        ok(resolver.resolve(request, context))
        elapsed = time.perf_counter_ns() - started
        calls.on = False
        if samples is not None:
            samples.append(elapsed)
            dynamo.append(calls.ns)

    for _ in range(warmup):
        timed(plain, None, None)
        timed(budgeted, None, None)
    gc.collect()
    samples = {"budgets": [], "plain": []}
    dynamo = {"budgets": [], "plain": []}
    runs = {"budgets": budgeted, "plain": plain}
    in_alternating_blocks(list(runs), count, block, lambda name, _: timed(runs[name], samples[name], dynamo[name]))
    with open(report_path, "w") as report:
        json.dump({"samples_ns": samples, "dynamo_ns": dynamo, "calls": counted, "message": MESSAGE}, report)
    mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
