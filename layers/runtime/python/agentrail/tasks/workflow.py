"""The steps of a long task in a Step Functions Standard workflow, with the agent checkpointed between them.

The state machine calls one function with ``{"action": "start" | "step" | "fail", "task_id": ...}``:

- ``start`` marks the task running and stores the first checkpoint;
- ``step`` continues the agent for at most ``slice_steps`` model calls and stores the new checkpoint,
  or records the outcome when the run ends (``{"done": true}``);
- ``fail`` (the workflow's Catch) marks the task failed with the error's type and message only.
"""

from __future__ import annotations

from typing import Any

from agentrail.agent.loop import AgentCheckpoint, AgentStatus
from agentrail.observability import logger
from agentrail.tasks.models import FINISHED, TaskStatus
from agentrail.tasks.service import TaskService, short_cause
from agentrail.tasks.store import TaskFinished


class LongTaskSteps:
    """Parameters
    ----------
    tasks:
        The task service (store, agent, events).
    slice_steps:
        Model calls per workflow step: small enough to stay far inside the Lambda timeout. Default: 2.
    """

    def __init__(self, tasks: TaskService, *, slice_steps: int = 2) -> None:
        self.tasks = tasks
        self.slice_steps = slice_steps

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        action = event.get("action")
        task_id = str(event.get("task_id") or "")
        if action == "start":
            return self.start(task_id)
        if action == "step":
            return self.step(task_id)
        if action == "fail":
            return self.fail(task_id, event.get("error") or {})
        raise ValueError("unknown workflow action")

    def start(self, task_id: str) -> dict[str, Any]:
        store = self.tasks.store
        try:
            record = store.mark_running(task_id)
        except TaskFinished as finished:
            return {"task_id": task_id, "done": True, "status": finished.status.value}
        agent = self.tasks.agents.agent(self.tasks.agents.model(record.model))
        checkpoint = agent.start(record.message)
        store.save_checkpoint(task_id, checkpoint.model_dump_json(), steps=0, usage=checkpoint.usage)
        return {"task_id": task_id, "done": False, "status": TaskStatus.RUNNING.value}

    def step(self, task_id: str) -> dict[str, Any]:
        store = self.tasks.store
        record = store.get(task_id)
        if record is None or record.status in FINISHED:
            return {"task_id": task_id, "done": True, "status": record.status.value if record else "missing"}
        raw = store.load_checkpoint(task_id)
        if raw is None:
            raise RuntimeError("the task has no checkpoint; was the start step skipped?")
        checkpoint = AgentCheckpoint.model_validate_json(raw)
        agent = self.tasks.agents.agent(self.tasks.agents.model(record.model))
        result = agent.advance(checkpoint, max_steps=self.slice_steps)
        if result.status == AgentStatus.IN_PROGRESS:
            assert result.checkpoint is not None
            store.save_checkpoint(task_id, result.checkpoint.model_dump_json(), steps=result.steps, usage=result.usage)
            logger.info("long task checkpoint", extra={"event": "task_checkpoint", "task_id": task_id, "steps": result.steps})
            return {"task_id": task_id, "done": False, "status": TaskStatus.RUNNING.value, "steps": result.steps}
        finished = self.tasks.complete(task_id, result)
        status = finished.status.value if finished else "cancelled"
        return {"task_id": task_id, "done": True, "status": status, "steps": result.steps}

    def fail(self, task_id: str, error: dict[str, Any]) -> dict[str, Any]:
        failed = self.tasks.fail(task_id, short_cause(error))
        return {"task_id": task_id, "done": True, "status": failed.status.value if failed else "unchanged"}
