"""Task notifications: an EventBridge event when a task finishes or waits, always."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agentrail_runtime.aws import LazyClient
from agentrail_runtime.observability import eventbridge_trace_fields
from agentrail_runtime.tasks.models import TaskRecord

SOURCE = "agentrail_runtime.tasks"
TASK_FINISHED = "Task Finished"
TASK_WAITING = "Task Waiting For Approval"


def event_detail(record: TaskRecord) -> dict[str, Any]:
    """What subscribers see: status, cost and routing data, never the prompt or the result."""
    return {
        "task_id": record.task_id,
        "task_type": record.task_type,
        "status": record.status.value,
        "owner": record.owner,
        "finished_at": record.finished_at,
        "steps": record.steps,
        "usage": record.usage.model_dump(),
        "cost_usd": record.cost_usd,
        "error": record.error.model_dump() if record.error else None,
        "callback_url": record.callback_url,
        "correlation_id": record.correlation_id,
    }


class TaskEventNotPublished(RuntimeError):
    """EventBridge refused a task's event, or could not be reached.

    The event stays in the task's outbox (``event_pending``): a retry of the workflow step (Step Functions
    retries this error by name, ``contract.TASK_EVENT_NOT_PUBLISHED_ERROR``) or a redelivery of the queue's
    message finds the task finished with its event pending, and publishes it.
    """


class TaskEvents:
    """Puts task events on the stack's EventBridge bus.

    Parameters
    ----------
    bus_name:
        The bus; ``None`` disables events (tests of the pure logic).
    """

    client = LazyClient("events")

    def __init__(self, bus_name: str | None, *, client: Any = None) -> None:
        self.bus_name = bus_name
        self.client = client

    def publish(self, detail_type: str, record: TaskRecord, extra: dict[str, Any] | None = None) -> None:
        """Raises :class:`TaskEventNotPublished` when EventBridge refuses the entry or the call fails (it is then
        retried with the task)."""
        if self.bus_name is None:
            return
        detail = {**event_detail(record), **(extra or {})}
        try:
            response = self.client.put_events(
                Entries=[
                    {
                        "Source": SOURCE,
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail),
                        "EventBusName": self.bus_name,
                        **eventbridge_trace_fields(),
                    }
                ]
            )
        except (ClientError, BotoCoreError) as error:
            raise TaskEventNotPublished(f"EventBridge could not take the task event ({type(error).__name__})") from error
        if response.get("FailedEntryCount"):
            code = response["Entries"][0].get("ErrorCode", "unknown")
            raise TaskEventNotPublished(f"EventBridge refused the task event ({code})")
