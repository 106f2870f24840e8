"""The AWS call budgets of the hot paths: a base figure per path and one increment per feature, each exact.

Every AWS call is latency, money (DynamoDB write units, SQS requests, EventBridge events) and a place to fail, so
the benchmarks that count calls assert these budgets with ``==``, not ``<=``: a change that adds a call (or drops
one) fails ``python -m benchmarks --check`` until its author changes the budget here, in the same commit, with the
reason in the commit message. Operations are named ``Service.Operation`` as botocore's hooks see them
(``runners/aws_calls.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sized
from dataclasses import dataclass

from benchmarks.report import Result, Target

__all__ = [
    "BUDGET_CHECK_AFTER",
    "BUDGET_CHECK_BEFORE",
    "IDEMPOTENCY",
    "RESPONSE_CACHE_LOOKUP",
    "RESPONSE_CACHE_STORE",
    "ROUTED_PARTS",
    "SESSION_TURN",
    "SHADOW_COPY",
    "SIDE_EFFECT_CHECKPOINT",
    "TASK_EVENT",
    "TASK_WRITES",
    "CallBudget",
    "budget_results",
    "budget_rows",
    "per_request",
    "total",
]


@dataclass(frozen=True)
class CallBudget:
    """The calls one part of a path makes, by operation, and why it needs them."""

    part: str
    calls: Mapping[str, int]
    why: str

    @property
    def count(self) -> int:
        return sum(self.calls.values())


#: Powertools idempotency, per message of an idempotent handler: its record in progress, then completed.
IDEMPOTENCY = CallBudget(
    "Powertools idempotency", {"DynamoDB.PutItem": 1, "DynamoDB.UpdateItem": 1}, "the record in progress, then completed"
)
#: The task worker's own writes on the task: it starts running, then it finishes.
TASK_WRITES = CallBudget(
    "task writes",
    {"DynamoDB.UpdateItem": 2},
    "running (the attempt counted, an earlier checkpoint read in the same write); finished with result, spend, usage "
    "and transcript in one write",
)
#: ``Task Finished`` from the task's outbox; nothing is written after it on the worker's path.
TASK_EVENT = CallBudget("Task Finished event", {"EventBridge.PutEvents": 1}, "the event the finish write put in the outbox")
#: The exactly-once checkpoint, per call of a tool with side effects.
SIDE_EFFECT_CHECKPOINT = CallBudget(
    "exactly-once checkpoint, per side-effecting tool call",
    {"DynamoDB.UpdateItem": 2},
    "a started marker before the tool runs (a crash then ends the call outcome_unknown instead of running it twice) "
    "and its outcome after (a failure later in the run never loses it)",
)
#: A daily budget check, per model call: a reserve before it and a settle after.
BUDGET_CHECK_BEFORE = CallBudget(
    "budget check before a model call",
    {"DynamoDB.TransactWriteItems": 1},
    "the reserve, on every budget that applies at once (an UpdateItem when only one applies)",
)
BUDGET_CHECK_AFTER = CallBudget(
    "budget check after a model call",
    {"DynamoDB.TransactWriteItems": 1},
    "the settle, on every budget that applies at once (an UpdateItem when only one applies)",
)
#: A shadow copy, per sampled request.
SHADOW_COPY = CallBudget("shadow copy, per sampled request", {"SQS.SendMessage": 1}, "the request to the shadow queue")
#: A response-cache lookup, per cacheable request; a miss then stores the answer.
RESPONSE_CACHE_LOOKUP = CallBudget("response-cache lookup", {"DynamoDB.GetItem": 1}, "the answer by the question's key")
RESPONSE_CACHE_STORE = CallBudget("response-cache store, per miss", {"DynamoDB.PutItem": 1}, "the new answer")
#: A session turn: its window in one read, the turn (with the session's meta and state) in one transaction.
SESSION_TURN = CallBudget(
    "session turn",
    {"DynamoDB.Query": 1, "DynamoDB.TransactWriteItems": 1},
    "the history window; the turn, meta and state together",
)

#: A routed multi-agent request (router, specialist, orchestrator), besides the router's and the specialist's
#: idempotency records.
#: The router's writes on the task.
ROUTER_WRITES = CallBudget(
    "router writes",
    {"DynamoDB.UpdateItem": 2},
    "running (the task read in the same write); its spend and transcript, returning the task's totals for the hand-off",
)
#: The messages between the three handlers.
ROUTED_MESSAGES = CallBudget(
    "hand-off and outcome",
    {"SQS.SendMessage": 2},
    "the router's hand-off (with the task's owner and spend so far) to the specialist; the specialist's outcome",
)
#: The specialist's one write on the task: the hand-off told it what it would otherwise read.
SPECIALIST_WRITES = CallBudget("specialist write", {"DynamoDB.UpdateItem": 1}, "its spend and transcript; nothing read")
#: The orchestrator's writes: it has no idempotency record to say the event went out, so the outbox is emptied.
ORCHESTRATOR_WRITES = CallBudget(
    "orchestrator writes",
    {"DynamoDB.UpdateItem": 2},
    "finished with its result (one conditional write, nothing read first); the outbox emptied after the event",
)
ROUTED_PARTS = (ROUTER_WRITES, ROUTED_MESSAGES, SPECIALIST_WRITES, ORCHESTRATOR_WRITES, TASK_EVENT)


def total(*parts: CallBudget, times: Mapping[str, int] | None = None) -> dict[str, int]:
    """The calls of ``parts`` added up by operation; ``times`` repeats a part (by its name) that many times."""
    summed: Counter[str] = Counter()
    for part in parts:
        repeat = (times or {}).get(part.part, 1)
        for operation, count in part.calls.items():
            summed[operation] += count * repeat
    return dict(summed)


def per_request(counts: Mapping[str, Mapping[str, int]], requests: Mapping[str, Sized]) -> dict[str, dict[str, float]]:
    """Calls by operation per request, for each side: ``counts`` summed over the side's ``requests`` (its samples)."""
    return {side: {op: n / len(requests[side]) for op, n in counted.items()} for side, counted in counts.items()}


def budget_results(
    label: str, measured: Mapping[str, float], budget: Mapping[str, int], *, baseline: str, baseline_calls: float = 0.0
) -> list[Result]:
    """One exact result per operation measured or budgeted, then the total: ``label`` names the path."""
    operations = sorted(set(measured) | set(budget))
    results = [
        Result(
            f"{label}: {operation}",
            float(measured.get(operation, 0)),
            "calls",
            baseline,
            None,
            Target(on="value", op="==", limit=budget.get(operation, 0)),
        )
        for operation in operations
    ]
    results.append(
        Result(
            f"{label}: all AWS calls",
            float(sum(measured.values())),
            "calls",
            baseline,
            baseline_calls,
            Target(on="value", op="==", limit=sum(budget.values())),
        )
    )
    return results


def budget_rows(parts: Iterable[CallBudget], *, times: Mapping[str, str] | None = None) -> list[tuple[str, str, str, str]]:
    """The rows of a budget table: part, calls by operation, how many times per path, and why."""
    return [
        (
            part.part,
            ", ".join(f"{count} {operation}" for operation, count in part.calls.items()),
            (times or {}).get(part.part, "1"),
            part.why,
        )
        for part in parts
    ]
