"""One trace across the hops we make ourselves: the trace header of the invocation rides on what it sends on.

Lambda gives each invocation of a traced function its header in ``_X_AMZN_TRACE_ID``; the SQS message
(``AWSTraceHeader`` system attribute), the EventBridge entry (``TraceHeader``) and the Step Functions execution
(``traceHeader``) we send from it carry that header, so the next hop continues the same trace.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition
from agentrail_runtime.multiagent.models import RoutedMessage
from agentrail_runtime.multiagent.routing import AgentTeam
from agentrail_runtime.service import AgentService
from agentrail_runtime.tasks import TaskEvents, TaskService, TaskStore
from agentrail_runtime.tasks.events import TASK_FINISHED
from agentrail_runtime.tasks.models import TaskRecord
from agentrail_runtime.tasks.service import TaskSubmission

from .conftest import BUS

#: A trace header as Lambda sets it for an invocation of a sampled trace.
TRACE_HEADER = "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> str:
    """An invocation inside a trace: ``_X_AMZN_TRACE_ID`` set the way Lambda sets it."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", TRACE_HEADER)
    return TRACE_HEADER


def recording(client: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of every ``operation`` call ``client`` makes (moto still answers it)."""
    calls: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"provide-client-params.{service}.{operation}", lambda params, **_: calls.append(params))
    return calls


def task_service(aws: Any, *, routes: dict[str, str], sfn: Any = None) -> TaskService:
    return TaskService(
        store=TaskStore(aws.table, client=aws.dynamodb),
        agents=AgentService(definition=definition, settings=RuntimeSettings()),
        events=TaskEvents(None),
        routes=routes,
        queue_url=aws.queue_url,
        sqs_client=aws.sqs,
        sfn_client=sfn,
    )


def test_a_task_queued_inside_a_trace_carries_the_trace_header_on_its_message(aws, traced):
    tasks = task_service(aws, routes={"default": "queue"})

    tasks.submit(TaskSubmission(message="Calculate 2 + 2"), owner="alice")

    [message] = aws.queued()
    assert message["Attributes"]["AWSTraceHeader"] == traced


def test_a_task_queued_outside_a_trace_carries_no_trace_header(aws, monkeypatch):
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    tasks = task_service(aws, routes={"default": "queue"})

    tasks.submit(TaskSubmission(message="Calculate 2 + 2"), owner="alice")

    [message] = aws.queued()
    assert "AWSTraceHeader" not in message["Attributes"]


def test_a_workflow_task_starts_its_execution_inside_the_same_trace(aws, traced):
    sfn = boto3.client("stepfunctions")
    started = recording(sfn, "StartExecution")
    tasks = task_service(aws, routes={"default": "queue", "long": aws.state_machine_arn}, sfn=sfn)

    tasks.submit(TaskSubmission(message="Calculate 2 + 2", task_type="long"), owner="alice")

    [call] = started
    assert call["traceHeader"] == traced


def test_a_task_event_carries_the_trace_header_of_the_invocation_that_published_it(aws, traced):
    events = boto3.client("events")
    put = recording(events, "PutEvents")
    record = TaskRecord(task_id="t" * 32, owner="alice", task_type="default", message="hi", created_at=1, updated_at=1)

    TaskEvents(BUS, client=events).publish(TASK_FINISHED, record)

    [call] = put
    [entry] = call["Entries"]
    assert entry["TraceHeader"] == traced
    assert len(aws.task_events()) == 1


def test_a_routed_hand_off_carries_the_trace_header_to_the_specialist_queue(aws, traced):
    team = AgentTeam(
        tasks=task_service(aws, routes={"default": "queue"}), specialists=(), orchestrator_queue_url=None, sqs_client=aws.sqs
    )
    message = RoutedMessage(task_id="t" * 32, correlation_id="c-1", message="2 + 2", hop=1, sender="router")

    team.send(aws.queue_url, message)

    [sent] = aws.queued()
    assert sent["Attributes"]["AWSTraceHeader"] == traced
