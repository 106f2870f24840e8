"""Supervisor and workers in a Step Functions Standard workflow: plan → fan out (Map) → review → synthesize.

One function serves every state, by ``action``:

- ``plan``: the supervisor splits the task into subtasks (one item each in the task table);
- ``work``: a worker agent does one subtask; a failed or weak result raises, so the Map counts it;
- ``review``: the supervisor re-runs failed or weak subtasks, a bounded number of rounds, and refuses a
  share of failures above the tolerated percentage (the same threshold the Map enforces in the cloud);
- ``synthesize``: the supervisor combines the answers and completes the task;
- ``fail``: the Catch marks the task failed with the error's type and message only.

Every step checks the task's spend limit first; once reached, the task ends ``budget_exceeded`` with the
answers gathered so far. Every model call of the supervisor and of the workers also runs under the daily budgets
of the task's owner (the tenant) and of the calling agent (``supervisor`` or ``worker``): a run whose next call
would cross one stops before it, and the task ends ``budget_exceeded`` at once, naming the budget, with the answers
gathered so far and the tokens it used.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.loop import AgentResult, AgentStatus
from agentrail_runtime.agent.tools import tool
from agentrail_runtime.contract import StepKind
from agentrail_runtime.multiagent.models import SpendLimit
from agentrail_runtime.observability import correlate, logger
from agentrail_runtime.service import AgentService
from agentrail_runtime.tasks.models import FINISHED, TaskError, TaskResult, TaskStatus
from agentrail_runtime.tasks.service import TaskService, short_cause
from agentrail_runtime.tasks.store import TaskFinished, TaskStore

SUPERVISOR, WORKER = "supervisor", "worker"
MAX_SUBTASKS = 8


_SPLIT = re.compile(r"\s*(?:;|\n|\bthen\b|\band then\b|\balso\b|(?:^|\s)\d+[.)]\s)\s*", re.IGNORECASE)


class SubtaskFailed(Exception):
    """A worker could not do its subtask well; the Map counts the iteration as failed."""


@tool(local_patterns=[r"(?s)^Plan subtasks for:\s*(?P<request>.+)$"])
def split_into_subtasks(
    request: Annotated[str, Field(min_length=1, max_length=8000)],
    subtasks: Annotated[list[str] | None, Field(max_length=MAX_SUBTASKS)] = None,
) -> list[str]:
    """Split a request into independent subtasks. Pass ``subtasks`` yourself, or only the request to split it on ';', 'then', 'also' and numbered items."""
    parts = subtasks or [part.strip(" .,") for part in _SPLIT.split(request)]
    cleaned = [part for part in parts if len(part) >= 3][:MAX_SUBTASKS]
    return cleaned or [request.strip()]


@tool(local_patterns=[r"(?s)^Synthesize one answer from these findings:\s*(?P<findings>.+)$"])
def summarize_findings(findings: Annotated[str, Field(min_length=1, max_length=60_000)]) -> str:
    """Combine numbered findings into one answer."""
    lines = [line.strip() for line in findings.splitlines() if line.strip()]
    return f"Combined answer from {len(lines)} findings:\n" + "\n".join(lines)


SUPERVISOR_DEFINITION = AgentDefinition(
    name=SUPERVISOR,
    description="Plans research and analysis tasks, reviews the workers' results and writes the final answer.",
    system_prompt=(
        "You supervise a team. To plan, call split_into_subtasks with a list of independent subtasks. "
        "To synthesize, combine the findings into one clear answer."
    ),
    tools=(split_into_subtasks, summarize_findings),
)


def is_weak(status: AgentStatus, answer: str | None) -> bool:
    """A result worth a re-run: the agent did not finish, produced nothing, or reported a failed tool."""
    if status != AgentStatus.COMPLETED or not answer or len(answer.strip()) < 8:
        return True
    return "was not completed" in answer or "could not match" in answer


class SupervisorSteps:
    """Parameters
    ----------
    tasks:
        Task records, subtasks and events.
    supervisor, worker:
        The agents (definition, model, limits) of the two roles.
    spend_limit:
        Cap across the supervisor and every worker of one task.
    max_review_rounds:
        Re-runs of failed or weak subtasks. Default: 1.
    tolerated_failure_percentage:
        Share of subtasks that may still fail after the last review. Default: 50.
    """

    def __init__(
        self,
        tasks: TaskService,
        *,
        supervisor: AgentService,
        worker: AgentService,
        spend_limit: SpendLimit | None = None,
        max_review_rounds: int = 1,
        tolerated_failure_percentage: float = 50.0,
    ) -> None:
        self.tasks = tasks
        self.supervisor = supervisor
        self.worker = worker
        self.spend_limit = spend_limit or SpendLimit()
        self.max_review_rounds = max_review_rounds
        self.tolerance = tolerated_failure_percentage

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        action = event.get("action")
        task_id = str(event.get("task_id") or "")
        correlate(event.get("correlation_id"), task_id=task_id)
        if action == "plan":
            return self.plan(task_id, event.get("correlation_id"))
        if action == "work":
            return self.work(task_id, int(event["index"]), int(event.get("attempt") or 1))
        if action == "review":
            return self.review(task_id, int(event.get("round") or 0), event.get("correlation_id"))
        if action == "synthesize":
            return self.synthesize(task_id, budget_exceeded=bool(event.get("budget_exceeded")))
        if action == "fail":
            failed = self.tasks.fail(task_id, short_cause(event.get("error") or {}))
            return {"task_id": task_id, "status": failed.status.value if failed else "unchanged"}
        raise ValueError("unknown supervisor action")

    # -- budget ----------------------------------------------------------------------------

    def _spent(self, task_id: str) -> tuple[bool, int | None]:
        record = self.tasks.store.get(task_id)
        return (True, 0) if record is None else self.spend_limit.check(record)

    def _run(
        self,
        agents: AgentService,
        name: str,
        task_id: str,
        prompt: str,
        remaining: int | None,
        *,
        run: str,
        tenant: str | None,
        state: dict | None = None,
        step: StepKind | None = None,
    ) -> AgentResult:
        """One run of the supervisor or a worker, under the task's remaining tokens and the daily budgets of
        ``tenant`` (the task's owner) and of the agent ``name``, on the model of ``step``'s kind (the supervisor's
        ``planning`` and ``review``); its spend and metrics are recorded on the task."""
        # A retried step (Lambda error, same input) continues ``run`` from its checkpoint: side effects run once.
        agent = agents.agent(token_budget=remaining, step=step)
        budget = agents.budgets.guard(tenant=tenant, agent=name) if agents.budgets is not None else None
        result = self.tasks.run_agent(agent, task_id, run, prompt, state=state, budget=budget)
        self.tasks.record_agent_run(task_id, name, result, run=run, bound_by_task=agent.token_budget == remaining, agents=agents)
        return result

    def _stop_over_daily_budget(self, task_id: str, result: AgentResult) -> bool:
        """End the task ``budget_exceeded`` when a daily budget stopped ``result``'s run (its next model call would
        have crossed it); the steps after this one find the task finished and spend nothing."""
        if result.status != AgentStatus.BUDGET_EXCEEDED:
            return False
        sentence = result.budget.sentence if result.budget is not None else "a daily budget is spent"
        self._finish(task_id, TaskStatus.BUDGET_EXCEEDED, answer=None, message=sentence)
        return True

    # -- steps -------------------------------------------------------------------------------

    def plan(self, task_id: str, correlation_id: str | None) -> dict[str, Any]:
        """Plan the task's subtasks. The answer carries every key the workflow's ``Planned?`` Choice reads
        (``finished``, ``budget_exceeded``): a task already finished (cancelled before its execution planned it, or
        a redriven execution) answers ``finished`` and the workflow goes straight to Synthesize, which only
        re-announces it."""
        try:
            record = self.tasks.store.mark_running(task_id)
        except TaskFinished as finished:
            return self._planned(task_id, budget_exceeded=finished.status == TaskStatus.BUDGET_EXCEEDED, finished=finished.status)
        exceeded, remaining = self.spend_limit.check(record)
        if exceeded:
            return self._planned(task_id, budget_exceeded=True)
        result = self._run(
            self.supervisor,
            SUPERVISOR,
            task_id,
            f"Plan subtasks for: {record.message}",
            remaining,
            run="plan",
            tenant=record.owner,
            step="planning",
        )
        if self._stop_over_daily_budget(task_id, result):
            return self._planned(task_id, budget_exceeded=True)
        subtasks = _subtasks_of(result) or [record.message]
        self.tasks.store.put_subtasks(task_id, subtasks)
        logger.info("task planned", extra={"event": "task_planned", "subtasks": len(subtasks)})
        # Ids and indexes only: the Map's items land in the execution's history; the text stays in the table.
        items = [{"task_id": task_id, "correlation_id": correlation_id, "index": i, "attempt": 1} for i in range(len(subtasks))]
        return self._planned(task_id, budget_exceeded=False, items=items)

    def _planned(
        self,
        task_id: str,
        *,
        budget_exceeded: bool,
        items: list[dict[str, Any]] | None = None,
        finished: TaskStatus | None = None,
    ) -> dict[str, Any]:
        """The answer of :meth:`plan`; ``finished`` is the status of a task that was already finished."""
        planned = {
            "task_id": task_id,
            "finished": finished is not None,
            "budget_exceeded": budget_exceeded,
            "items": items or [],
            "tolerance": self.tolerance,
        }
        if finished is not None:
            planned["status"] = finished.value
        return planned

    def work(self, task_id: str, index: int, attempt: int) -> dict[str, Any]:
        """Do subtask ``index`` of the plan; its text is read from the table, never passed through the workflow."""
        record = self.tasks.store.get(task_id)
        if record is None or record.status in FINISHED:
            return {"index": index, "status": "skipped"}
        subtasks = self.tasks.store.subtasks(task_id)
        if not 0 <= index < len(subtasks):
            raise ValueError(f"task has no subtask {index}")
        text = subtasks[index]["text"]
        exceeded, remaining = self.spend_limit.check(record)
        if exceeded:
            self.tasks.store.record_subtask(task_id, index, status="skipped_budget", answer=None, attempt=attempt)
            return {"index": index, "status": "skipped_budget"}
        result = self._run(
            self.worker,
            WORKER,
            task_id,
            text,
            remaining,
            run=TaskStore.subtask_run(index, attempt),
            tenant=record.owner,
            state={"attempt": attempt},
        )
        if result.status == AgentStatus.BUDGET_EXCEEDED:
            # Not a weak result to re-run: no model call of this task fits the day's budget any more.
            self.tasks.store.record_subtask(task_id, index, status="skipped_budget", answer=None, attempt=attempt)
            self._stop_over_daily_budget(task_id, result)
            return {"index": index, "status": "skipped_budget"}
        weak = is_weak(result.status, result.answer)
        self.tasks.store.record_subtask(
            task_id, index, status="failed" if weak else "done", answer=result.answer, attempt=attempt
        )
        if weak:
            raise SubtaskFailed(f"subtask {index} gave a failed or weak result on attempt {attempt}")
        return {"index": index, "status": "done"}

    def review(self, task_id: str, round_: int, correlation_id: str | None) -> dict[str, Any]:
        record = self.tasks.store.get(task_id)
        if record is not None and record.status in FINISHED:
            # Stopped by a daily budget (or cancelled) meanwhile: no re-run, and Synthesize only announces the outcome.
            return {
                "task_id": task_id,
                "budget_exceeded": record.status == TaskStatus.BUDGET_EXCEEDED,
                "rerun": False,
                "round": round_,
                "items": [],
                "too_many_failed": False,
            }
        exceeded, _ = self._spent(task_id)
        if exceeded:
            return {"task_id": task_id, "budget_exceeded": True, "rerun": False, "round": round_, "items": []}
        subtasks = self.tasks.store.subtasks(task_id)
        failed = [s for s in subtasks if s["status"] != "done"]
        if failed and round_ < self.max_review_rounds:
            items = [
                {
                    "task_id": task_id,
                    "correlation_id": correlation_id,
                    "index": s["index"],
                    "attempt": s["attempts"] + 1,
                }
                for s in failed
            ]
            logger.info(
                "review re-runs subtasks",
                extra={"event": "review_rerun", "round": round_ + 1, "subtasks": [s["index"] for s in failed]},
            )
            return {"task_id": task_id, "budget_exceeded": False, "rerun": True, "round": round_ + 1, "items": items}
        share = 100.0 * len(failed) / max(1, len(subtasks))
        return {
            "task_id": task_id,
            "budget_exceeded": False,
            "rerun": False,
            "round": round_,
            "items": [],
            "too_many_failed": share > self.tolerance,
        }

    def synthesize(self, task_id: str, *, budget_exceeded: bool = False) -> dict[str, Any]:
        record = self.tasks.store.get(task_id)
        if record is None:
            return {"task_id": task_id, "status": "missing"}
        if record.status in FINISHED:
            # A retry of this step after the bus refused the event, or a task a daily budget stopped earlier: the
            # outbox still holds its event.
            self.tasks.announce(record)
            return {"task_id": task_id, "status": record.status.value}
        subtasks = self.tasks.store.subtasks(task_id)
        done = [s for s in subtasks if s["status"] == "done"]
        over, remaining = self.spend_limit.check(record)
        over = over or budget_exceeded
        answer = None
        if done and not over:
            findings = "\n".join(f"{s['index'] + 1}. {s['text']}: {s['answer']}" for s in done)
            result = self._run(
                self.supervisor,
                SUPERVISOR,
                task_id,
                f"Synthesize one answer from these findings:\n{findings}",
                remaining,
                run="synthesize",
                tenant=record.owner,
                step="review",
            )
            if self._stop_over_daily_budget(task_id, result):
                return {"task_id": task_id, "status": TaskStatus.BUDGET_EXCEEDED.value}
            answer = _tool_output(result, "summarize_findings") or result.answer
            # The synthesis itself may cross the limit: the task's totals now include its run.
            over = self.spend_limit.exceeded(
                record.usage.total_tokens + result.usage.total_tokens, (record.cost_usd or 0.0) + (result.cost_usd or 0.0)
            )
        status = TaskStatus.BUDGET_EXCEEDED if over else (TaskStatus.SUCCEEDED if done else TaskStatus.FAILED)
        message = "the spend limit was reached" if over else "every subtask failed"
        self._finish(
            task_id, status, answer=answer, message=None if status == TaskStatus.SUCCEEDED else message, subtasks=subtasks
        )
        return {"task_id": task_id, "status": status.value}

    def _finish(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        answer: str | None,
        message: str | None,
        subtasks: list[dict[str, Any]] | None = None,
    ) -> None:
        """Finish the task once with its subtasks (read when not given); a task stopped ``budget_exceeded`` answers
        with what its workers found so far, and ``message`` (none when it succeeded) is its error."""
        subtasks = self.tasks.store.subtasks(task_id) if subtasks is None else subtasks
        if status == TaskStatus.BUDGET_EXCEEDED:
            answer = "\n".join(f"{s['index'] + 1}. {s['answer']}" for s in subtasks if s["status"] == "done") or None
        self.tasks.finish(
            task_id,
            status,
            result=TaskResult(
                answer=answer,
                agent_status=status.value,
                model="multiple",
                data={"subtasks": subtasks, "review_reruns": sum(max(0, s["attempts"] - 1) for s in subtasks)},
            ),
            error=None if message is None else TaskError(code=status.value, message=message),
        )


def _tool_output(result: Any, name: str) -> Any:
    """What the named tool returned in this run (the last call), if it ran."""
    ids = {r.tool_use_id for r in result.tool_calls if r.tool == name and r.outcome == "success"}
    for message in reversed(result.new_messages):
        for block in message.tool_results:
            if block.tool_use_id in ids:
                return block.content
    return None


def _subtasks_of(result: Any) -> list[str] | None:
    output = _tool_output(result, "split_into_subtasks")
    if isinstance(output, list) and all(isinstance(item, str) for item in output):
        return output[:MAX_SUBTASKS]
    return None


__all__ = ["SUPERVISOR_DEFINITION", "SubtaskFailed", "SupervisorSteps", "is_weak"]
