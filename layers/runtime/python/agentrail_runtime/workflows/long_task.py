"""The steps of a long task in a Step Functions Standard workflow, with the agent checkpointed between them.

The state machine calls one function with ``{"action": "start" | "step" | "fail", "task_id": ...}``:

- ``start`` marks the task running and stores the first checkpoint;
- ``step`` continues the agent for at most ``slice_steps`` model calls and stores the new checkpoint,
  or records the outcome when the run ends (``{"done": true}``);
- ``fail`` (the workflow's Catch) marks the task failed with the error's type and message only.

With approvals (the ApprovalWorkflow), a step that reaches a tool needing
approval returns ``{"awaiting_approval": true}`` and three more actions apply:

- ``request_approval`` (invoked with ``.waitForTaskToken``) stores the approval and its token;
- ``approval_timeout`` applies the timeout policy and returns a rejection;
- ``resume`` checks the approved arguments against the checkpoint, then continues the agent.
"""

from __future__ import annotations

from typing import Any

from agentrail_runtime.agent.loop import AgentCheckpoint, AgentResult, AgentStatus, ApprovalDecision
from agentrail_runtime.approvals.models import DecisionOutput
from agentrail_runtime.approvals.service import ApprovalService
from agentrail_runtime.observability import correlate, logger
from agentrail_runtime.tasks.models import FINISHED, TaskRecord, TaskStatus
from agentrail_runtime.tasks.service import TaskService, short_cause
from agentrail_runtime.tasks.store import TaskFinished
from agentrail_runtime.workflows.approval import ApprovalSteps


def progress(
    task_id: str, status: str, *, done: bool, awaiting_approval: bool = False, steps: int | None = None
) -> dict[str, Any]:
    """What every step answers the workflow. Each field is always present: the state machines' ResultSelectors
    read them all, and a missing one is a States.Runtime error that fails the execution."""
    answer: dict[str, Any] = {"task_id": task_id, "done": done, "awaiting_approval": awaiting_approval, "status": status}
    if steps is not None:
        answer["steps"] = steps
    return answer


class LongTaskSteps:
    """Parameters
    ----------
    tasks:
        The task service (store, agent, events).
    slice_steps:
        Model calls per workflow step: small enough to stay far inside the Lambda timeout. Default: 2.
    approvals:
        The approval service, when the workflow pauses for approvals (the ApprovalWorkflow). Default: none.
    """

    def __init__(self, tasks: TaskService, *, slice_steps: int = 2, approvals: ApprovalService | None = None) -> None:
        self.tasks = tasks
        self.slice_steps = slice_steps
        self.approvals = ApprovalSteps(approvals, tasks) if approvals is not None else None

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        action = event.get("action")
        task_id = str(event.get("task_id") or "")
        correlate(event.get("correlation_id"), task_id=task_id)
        if action == "start":
            return self.start(task_id)
        if action == "step":
            return self.step(task_id)
        if action == "fail":
            return self.fail(task_id, event.get("error") or {})
        if self.approvals is not None:
            level = int(event.get("level") or 0)
            if action == "request_approval":
                record = self.approvals.request(task_id, task_token=str(event["task_token"]), level=level)
                return {"task_id": task_id, "approval_id": record.approval_id}
            if action == "approval_timeout":
                return self.approvals.on_timeout(task_id, level=level).model_dump()
            if action == "resume":
                return self.resume(task_id, DecisionOutput.model_validate(event.get("decision") or {}))
        raise ValueError("unknown workflow action")

    def start(self, task_id: str) -> dict[str, Any]:
        store = self.tasks.store
        try:
            record = store.mark_running(task_id)
        except TaskFinished as finished:
            if finished.record is not None:
                self.tasks.announce(finished.record)
            return progress(task_id, finished.status.value, done=True)
        agent = self.tasks.agents.agent(record.model)
        checkpoint = agent.start(record.message)
        store.save_checkpoint(task_id, checkpoint.model_dump_json(), steps=0, usage=checkpoint.usage)
        return progress(task_id, TaskStatus.RUNNING.value, done=False)

    def step(self, task_id: str) -> dict[str, Any]:
        store = self.tasks.store
        record, raw = store.get_checkpointed(task_id)
        if record is None or record.status in FINISHED:
            return self._finished(task_id, record)
        if raw is None:
            raise RuntimeError("the task has no checkpoint; was the start step skipped?")
        checkpoint = AgentCheckpoint.model_validate_json(raw)
        return self._outcome(task_id, self.tasks.advance(record, checkpoint, max_steps=self.slice_steps))

    def resume(self, task_id: str, decision: DecisionOutput) -> dict[str, Any]:
        """Continue after a decision; the tool runs only if the approved arguments are still the checkpoint's.

        A retry of this step (a throttled model, a crashed function) finds the decision applied in the checkpoint
        and continues from there: the approved tool never runs twice.
        """
        assert self.approvals is not None
        record, raw = self.tasks.store.get_checkpointed(task_id)
        if record is None or record.status in FINISHED:
            return self._finished(task_id, record)
        stored = AgentCheckpoint.model_validate_json(raw) if raw else None
        if stored is not None and stored.pending is None and stored.turn is not None:
            return self._outcome(task_id, self.tasks.advance(record, stored, max_steps=self.slice_steps))
        checkpoint, approved, reason = self.approvals.approvals.verified_decision(task_id, decision, raw)
        self.tasks.store.set_status(task_id, TaskStatus.RUNNING, expected=(TaskStatus.WAITING_APPROVAL, TaskStatus.RUNNING))
        if not approved:
            # A person's rejection and a timeout alike; a retried step finds the decision applied and never counts again.
            self.tasks.agents.emit_rejected(record.model)
        result = self.tasks.advance(
            record, checkpoint, max_steps=self.slice_steps, decision=ApprovalDecision(approved=approved, reason=reason)
        )
        return self._outcome(task_id, result)

    def _finished(self, task_id: str, record: TaskRecord | None) -> dict[str, Any]:
        if record is None:
            return progress(task_id, "missing", done=True)
        self.tasks.announce(record)  # an earlier attempt finished the task but could not publish its event
        return progress(task_id, record.status.value, done=True)

    def _outcome(self, task_id: str, result: AgentResult) -> dict[str, Any]:
        store = self.tasks.store
        waiting = result.status == AgentStatus.AWAITING_APPROVAL
        if result.status == AgentStatus.IN_PROGRESS or (waiting and self.approvals is not None):
            assert result.checkpoint is not None
            store.save_checkpoint(task_id, result.checkpoint.model_dump_json(), steps=result.steps, usage=result.usage)
            logger.info(
                "long task checkpoint",
                extra={"event": "task_checkpoint", "task_id": task_id, "steps": result.steps, "awaiting_approval": waiting},
            )
            self.tasks.agents.emit_slice(result)
            status = TaskStatus.WAITING_APPROVAL if waiting else TaskStatus.RUNNING
            return progress(task_id, status.value, done=False, awaiting_approval=waiting, steps=result.steps)
        finished = self.tasks.complete(task_id, result)
        if finished is not None:
            # Once per task, at its end: its totals (every slice's) and its wall time since submission.
            self.tasks.agents.emit_metrics(result, task_latency_ms=self.tasks.latency_ms(finished))
        final_status = finished.status.value if finished else "cancelled"
        return progress(task_id, final_status, done=True, steps=result.steps)

    def fail(self, task_id: str, error: dict[str, Any]) -> dict[str, Any]:
        failed = self.tasks.fail(task_id, short_cause(error))
        return progress(task_id, failed.status.value if failed else "unchanged", done=True)


__all__ = ["LongTaskSteps", "progress"]
