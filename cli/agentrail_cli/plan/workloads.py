"""The kinds of request each variant of a pattern is measured with, and the two mixes: the benchmark's and a check's.

A *variant* is one way a pattern is used, priced per its own unit of work. The benchmark (``benchmarks/plan_calls.py``)
runs every kind of a variant in its own batch, so each kind gives one point (model calls per task, count per task)
for the straight lines of ``calls.py``. ``agentrail plan --measure`` and the accuracy test run a different mix
(:data:`CHECK_MIX`): other proportions of the kinds in one batch, so the estimate is never checked against the
figures it was fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: What a variant's counts are fitted against: the task's model calls, or a research task's subtasks.
Regressor = Literal["model_calls", "subtasks"]

__all__ = [
    "CHECK_MIX",
    "HARDENED",
    "KINDS",
    "NO_MODEL_CALLS",
    "STREAMING_STATEFUL",
    "VARIANTS",
    "Kind",
    "Regressor",
    "Variant",
]

#: The templates' key of the stateful stack with its WebSocket streaming API (``-c streaming=true``).
STREAMING_STATEFUL = "stateful_streaming"
#: The suffix of the templates' keys of the stacks in the hardened profile (``-c security=hardened``).
HARDENED = "_hardened"
#: Variants that call no model: their lines are read at zero model calls.
NO_MODEL_CALLS = frozenset({"session_start", "stream_connect"})


@dataclass(frozen=True)
class Variant:
    """One way a pattern is used: its pattern, what one task is, and what its counts grow with."""

    name: str
    pattern: str
    unit: str
    regressor: Regressor = "model_calls"


@dataclass(frozen=True)
class Kind:
    """One kind of request of a variant: the body that is sent (a session turn's message, or a task)."""

    label: str
    body: dict[str, Any]
    subtasks: int = 0  # a research task's subtasks (the demo supervisor makes one per ';'-separated part)


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("request", "stateless", "request (POST /invoke)"),
        Variant("session_start", "stateful", "session opened (POST /sessions)"),
        Variant("turn", "stateful", "session turn (POST /sessions/{id}/messages)"),
        Variant("stream_connect", "stateful", "streaming connection: a connect ticket, $connect, and $disconnect at the end"),
        Variant("stream_turn", "stateful", "streamed session turn (sendMessage over the WebSocket API, events until final)"),
        Variant("task", "async", "task on the queue (POST /tasks, one GET when done)"),
        Variant("long_task", "async", "long task in Step Functions (task_type long, one GET when done)"),
        Variant("reviewed_task", "async", "task that waits for one approval (task_type reviewed: list, approve, one GET)"),
        Variant("routed", "multiagent", "routed request: router, one specialist, orchestrator (one GET when done)"),
        Variant(
            "research",
            "hierarchical",
            "research task: plan, a Map of workers, review, synthesis (one GET when done)",
            regressor="subtasks",
        ),
    )
}

_NO_TOOL = Kind("no tool", {"message": "Hello! What can you do?"})
_ONE_TOOL = Kind("one tool", {"message": "Calculate (12 + 30) * 2"})
_TWO_TOOLS = Kind("two tools", {"message": "Calculate (12 + 30) * 2 and convert 10 km to mi"})

KINDS: dict[str, tuple[Kind, ...]] = {
    "request": (_NO_TOOL, _ONE_TOOL, _TWO_TOOLS),
    "session_start": (Kind("open a session", {}),),
    "turn": (_NO_TOOL, _ONE_TOOL, _TWO_TOOLS),
    "stream_connect": (Kind("connect", {}),),
    "stream_turn": (_NO_TOOL, _ONE_TOOL, _TWO_TOOLS),
    "task": (_NO_TOOL, _ONE_TOOL, _TWO_TOOLS),
    "long_task": (
        Kind("one tool", {"message": "Calculate (12 + 30) * 2", "task_type": "long"}),
        Kind("two tools", {"message": "Calculate (12 + 30) * 2 and convert 10 km to mi", "task_type": "long"}),
    ),
    "reviewed_task": (
        Kind("refund above 100 USD", {"message": "Please refund 150 USD for order A-1002", "task_type": "reviewed"}),
    ),
    "routed": (
        Kind("billing", {"message": "Why was I charged twice on invoice INV-1001?"}),
        Kind("support", {"message": "The dashboard is down and login is slow, is something broken?"}),
        Kind("unclear", {"message": "Hello there"}),
    ),
    "research": (
        Kind("two subtasks", {"message": "Research Lambda; compare DynamoDB and SQS", "task_type": "research"}, subtasks=2),
        Kind(
            "three subtasks",
            {"message": "Research Lambda; research SQS; compare DynamoDB and S3", "task_type": "research"},
            subtasks=3,
        ),
        Kind(
            "four subtasks",
            {"message": "Research Lambda; research SQS; research SNS; compare DynamoDB and S3", "task_type": "research"},
            subtasks=4,
        ),
    ),
}

#: Turns of each session in the benchmark's batches (the check mix runs two more).
TURNS_PER_SESSION = 4

#: The check's mix: per variant, (kind label, tasks) in one batch; other proportions than the benchmark's equal ones.
CHECK_MIX: dict[str, tuple[tuple[str, int], ...]] = {
    "request": (("no tool", 1), ("two tools", 4)),
    "session_start": (("open a session", 3),),
    "turn": (("one tool", 2), ("two tools", 4)),
    "stream_connect": (("connect", 3),),
    "stream_turn": (("no tool", 1), ("two tools", 3), ("one tool", 2)),
    "task": (("one tool", 4), ("two tools", 1)),
    "long_task": (("two tools", 3), ("one tool", 1)),
    "reviewed_task": (("refund above 100 USD", 3),),
    "routed": (("billing", 3), ("support", 1), ("unclear", 1)),
    "research": (("four subtasks", 1), ("two subtasks", 2)),
}
