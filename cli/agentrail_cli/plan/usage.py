"""What one task uses, item by item: the quantities the cost model prices.

A *task* is the unit of work of a pattern: a request (``stateless``), a session of N turns (``stateful``), a task
(``async``, with or without an approval), a routed request (``multiagent``) or a research task (``hierarchical``).

Every quantity says where it comes from (:class:`Basis`): counted in local mode (the planner's call-count file, or
``--measure``), or estimated from a documented rate for what AWS does on its own side and local mode cannot see.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FIXED_ITEMS", "ITEMS", "Basis", "FixedMonthly", "Quantity", "TaskUsage", "TokenUse"]


class Basis(StrEnum):
    """Where a quantity comes from."""

    COUNTED = "counted"  # counted in local mode: AWS calls the functions made, invocations, transitions
    ESTIMATED = "estimated"  # from a documented rate: what AWS does on its side (KMS behind DynamoDB, logs, X-Ray)
    GIVEN = "given"  # from the requirements (tokens per model call, turns per session)


class Quantity(BaseModel):
    """One priced quantity per task, e.g. 3.0 DynamoDB write request units."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    value: float = Field(ge=0)
    basis: Basis
    note: str = ""


class TokenUse(BaseModel):
    """Model tokens of one task on one model (``provider:model-id``, as the price file names it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model: str
    calls: float = Field(ge=0)
    input_tokens: float = Field(ge=0)
    output_tokens: float = Field(ge=0)
    cache_read_tokens: float = Field(default=0, ge=0)
    cache_write_tokens: float = Field(default=0, ge=0)
    batch: bool = False  # priced at the model's batch price (the batch lane)
    basis: Basis = Basis.GIVEN


class TaskUsage(BaseModel):
    """Everything one task uses that is priced per use. Keys of ``quantities`` are :data:`ITEMS` names."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    pattern: str
    unit: str  # what one task is, in words: "request", "session of 10 turns", "task with one approval"
    architecture: str = "arm64"  # of every function: arm64 or x86_64
    quantities: dict[str, Quantity] = Field(default_factory=dict)
    tokens: list[TokenUse] = Field(default_factory=list)


class FixedMonthly(BaseModel):
    """What a deployment costs per month whatever its traffic: keys, secrets, alarms, dashboards, endpoints."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    quantities: dict[str, Quantity] = Field(default_factory=dict)


#: The per-task items, with their units. The price file prices each (``prices.py``).
ITEMS: dict[str, str] = {
    "lambda_requests": "requests",
    "lambda_gb_seconds": "GB-seconds",
    "rest_api_requests": "requests",
    "http_api_requests": "requests",
    "websocket_messages": "messages (32 KB each)",
    "websocket_connection_minutes": "connection-minutes",
    "dynamodb_read_units": "read request units",
    "dynamodb_write_units": "write request units",
    "dynamodb_gb_months": "GB-months stored",
    "sqs_requests": "requests (64 KB each)",
    "sqs_fifo_requests": "requests (64 KB each)",
    "sfn_transitions": "state transitions",
    "eventbridge_events": "events (64 KB each)",
    "log_gb": "GB ingested",
    "xray_traces": "traces recorded",
    "kms_requests": "requests",
    "secrets_api_calls": "API calls",
}

#: The fixed monthly items, with their units.
FIXED_ITEMS: dict[str, str] = {
    "kms_keys": "customer managed keys",
    "secrets": "secrets",
    "custom_metrics": "metrics",
    "alarms": "standard alarms",
    "dashboards": "dashboards",
    "vpc_endpoint_hours": "endpoint-AZ-hours",
    "provisioned_gb_seconds": "GB-seconds of provisioned concurrency",
}
