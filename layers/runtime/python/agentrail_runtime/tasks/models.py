"""Task records of the async pattern: status, timestamps, tokens and cost, error and result."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentrail_runtime.agent.results import ToolCallOut
from agentrail_runtime.metering.feedback import Feedback
from agentrail_runtime.models.base import Usage


class TaskStatus(StrEnum):
    QUEUED = "queued"
    #: In a Bedrock batch inference job (the batch lane): answered within the job's window (24 hours).
    BATCHED = "batched"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUDGET_EXCEEDED = "budget_exceeded"


#: A task in one of these states never changes again.
FINISHED = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.BUDGET_EXCEEDED})
#: A task in one of these states may still be cancelled.
CANCELLABLE = frozenset({TaskStatus.QUEUED, TaskStatus.BATCHED, TaskStatus.RUNNING, TaskStatus.WAITING_APPROVAL})


class TaskError(BaseModel):
    code: str
    message: str


class TaskResult(BaseModel):
    answer: str | None
    agent_status: str
    model: str
    tool_calls: list[ToolCallOut] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


class AgentSpend(BaseModel):
    """Tokens and cost of one agent's (or one model's) part in a task (the roll-up of multi-agent tasks)."""

    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    calls: int = 0


class TaskRecord(BaseModel):
    """One task, as stored in the task table and returned (to its owner) by ``GET /tasks/{id}``."""

    model_config = ConfigDict(extra="ignore")

    task_id: str
    owner: str
    task_type: str = "default"
    status: TaskStatus = TaskStatus.QUEUED
    message: str
    model: str | None = None
    created_at: int
    updated_at: int
    started_at: int | None = None
    finished_at: int | None = None
    steps: int = 0
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    spend: dict[str, AgentSpend] = Field(default_factory=dict)
    #: The same spend per model (``bedrock:...``): a step model of its own (``AGENT_STEP_MODELS``) shows apart.
    spend_by_model: dict[str, AgentSpend] = Field(default_factory=dict)
    error: TaskError | None = None
    result: TaskResult | None = None
    attempts: int = 0
    callback_url: str | None = None
    execution_arn: str | None = None
    correlation_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    #: An agent run stopped because the task's remaining tokens could not pay for its next model call.
    spend_limit_reached: bool = False
    #: The owner's rating of the task (``POST /tasks/{id}/feedback``), once given.
    feedback: Feedback | None = None
    #: The outbox: the event (``Task Finished``) written with the final status and not yet published.
    event_pending: str | None = None
    #: The version of the agent that finished the task (``agent_version``), set with its outcome.
    agent_version: str | None = None
    #: ``batch`` for a task of the batch lane (``None``: on demand).
    lane: str | None = None
    #: The Bedrock batch inference job answering the task (its ARN), and when it was submitted.
    batch_job: str | None = None
    batch_submitted_at: int | None = None


class TaskMessage(BaseModel):
    """The body of a task's SQS message."""

    model_config = ConfigDict(extra="forbid")
    task_id: str
