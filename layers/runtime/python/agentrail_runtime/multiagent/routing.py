"""Router → specialists → orchestrator, over SQS, with a hop limit and a per-task spend limit.

Every agent's tokens and cost are added to the task under the agent's name
(``TaskStore.add_spend``), so a task's total is the sum over every agent that
worked on it, whatever order they ran in.

What a routed request costs in AWS calls (besides the Powertools idempotency
records of the router and each specialist, two writes each): the router marks
the task running (reading it in the same write), adds its spend and sends the
hand-off; a specialist adds its spend and sends its outcome (the hand-off
carries the task's owner and spend, so it reads nothing); the orchestrator
finishes the task, puts ``Task Finished`` and empties the outbox. No run reads
its checkpoint up front (:meth:`TaskService.run_agent` without
``read_checkpoint``): a run's first save finds an earlier attempt's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.loop import AgentResult, AgentStatus
from agentrail_runtime.agent.tools import Tool, tool
from agentrail_runtime.aws import LazyClient
from agentrail_runtime.contract import StepKind
from agentrail_runtime.multiagent.models import AgentOutcome, RoutedMessage, SpecialistSpec, SpendLimit, SpentSoFar
from agentrail_runtime.observability import correlate, logger, sqs_trace_attributes
from agentrail_runtime.service import AgentService
from agentrail_runtime.tasks.models import FINISHED, TaskError, TaskRecord, TaskResult, TaskStatus
from agentrail_runtime.tasks.service import TaskService
from agentrail_runtime.tasks.store import TaskFinished

ROUTER = "router"
ROUTER_PROMPT = (
    "You route customer requests. Call exactly one hand-off tool: the specialist whose description fits the "
    "request best. Do not answer the request yourself."
)


def handoff_tool(spec: SpecialistSpec) -> Tool:
    """A terminal tool: calling it hands the request to ``spec`` and ends this agent's run."""

    def handoff(request: str) -> dict[str, str]:
        return {"handed_off_to": spec.name}

    return tool(handoff, name=f"handoff_to_{spec.name}", description=spec.description, terminal=True)


def handoff_target(result: AgentResult) -> str | None:
    if result.status != AgentStatus.HANDED_OFF or not result.handoff:
        return None
    return result.handoff.removeprefix("handoff_to_")


class AgentTeam:
    """What every member of a multi-agent system shares: tasks, specialists, queues, limits.

    Parameters
    ----------
    tasks:
        The task service (store, events) of the system's API.
    specialists:
        Name, description and queue of each specialist.
    spend_limit:
        Cap across all agents of one task.
    max_hops:
        Hand-offs allowed before routing stops as a loop.
    """

    sqs = LazyClient("sqs")

    def __init__(
        self,
        *,
        tasks: TaskService,
        specialists: Sequence[SpecialistSpec],
        orchestrator_queue_url: str | None,
        spend_limit: SpendLimit | None = None,
        max_hops: int = 4,
        sqs_client: Any = None,
    ) -> None:
        self.tasks = tasks
        self.specialists = {s.name: s for s in specialists}
        self.orchestrator_queue_url = orchestrator_queue_url
        self.spend_limit = spend_limit or SpendLimit()
        self.max_hops = max_hops
        self.sqs = sqs_client

    def send(self, queue_url: str | None, body: RoutedMessage | AgentOutcome) -> None:
        if not queue_url:
            raise RuntimeError("no queue configured for this hand-off")
        self.sqs.send_message(QueueUrl=queue_url, MessageBody=body.model_dump_json(), **sqs_trace_attributes())

    def forward(self, message: RoutedMessage, target: str) -> None:
        spec = self.specialists.get(target)
        if spec is None:
            raise RuntimeError("hand-off to an unknown specialist")
        self.send(spec.queue_url, message)

    def report(self, outcome: AgentOutcome) -> None:
        self.send(self.orchestrator_queue_url, outcome)

    def run_agent(
        self,
        agents: AgentService,
        extra_tools: Sequence[Tool],
        message: str,
        task_id: str,
        name: str,
        correlation_id: str | None,
        remaining_tokens: int | None,
        *,
        run: str,
        tenant: str | None = None,
        step: StepKind | None = None,
    ) -> tuple[AgentResult, TaskRecord | None]:
        """One agent's run within the task, under the task's remaining budget and the daily budgets of ``tenant`` (the
        task's owner) and of the agent ``name``, on the model of ``step``'s kind (the router's ``routing``); its spend
        and metrics are recorded. Returns the run's result and the task as the spend's write left it (``None`` when
        the task is gone).

        A redelivery repeats ``run`` from its last checkpoint (:meth:`TaskService.run_agent`, which finds it at the
        run's first save instead of reading it first): a tool with side effects never runs twice for one delivered
        message."""
        agent = agents.agent(token_budget=remaining_tokens, extra_tools=extra_tools, step=step)
        budget = agents.budgets.guard(tenant=tenant, agent=name) if agents.budgets is not None else None
        result = self.tasks.run_agent(
            agent, task_id, run, message, correlation_id=correlation_id, budget=budget, read_checkpoint=False
        )
        task = self.tasks.record_agent_run(
            task_id,
            name,
            result,
            run=run,
            bound_by_task=agent.token_budget == remaining_tokens,
            agents=agents,
            returning=True,
        )
        return result, task


#: A run stopped by the task's spend limit or by a daily budget (tenant or agent): the task ends ``budget_exceeded``.
_OVER_BUDGET = frozenset({AgentStatus.TOKEN_BUDGET_EXCEEDED, AgentStatus.BUDGET_EXCEEDED})


class Router:
    """Classifies a task and hands it to one specialist (or the fallback), as the first hop."""

    def __init__(self, team: AgentTeam, agents: AgentService, *, fallback: str | None = None) -> None:
        self.team = team
        self.agents = agents
        self.fallback = fallback
        self.tools = [handoff_tool(spec) for spec in team.specialists.values()]

    @classmethod
    def definition(cls) -> AgentDefinition:
        return AgentDefinition(name=ROUTER, system_prompt=ROUTER_PROMPT, description="Routes requests to specialists.")

    def route(self, task_id: str) -> str | None:
        """Returns the specialist chosen, or None when the task was answered (or skipped) here, or finished (was
        cancelled) while the router ran: its spend is kept, nothing is handed on."""
        try:
            record = self.team.tasks.store.mark_running(task_id)
        except TaskFinished:
            return None
        correlate(record.correlation_id, task_id=task_id)
        exceeded, remaining = self.team.spend_limit.check(record)
        if exceeded:
            self.team.report(
                AgentOutcome(task_id=task_id, correlation_id=record.correlation_id, agent=ROUTER, kind="budget_exceeded")
            )
            return None
        result, task = self.team.run_agent(
            self.agents,
            self.tools,
            record.message,
            task_id,
            ROUTER,
            record.correlation_id,
            remaining,
            run=ROUTER,
            tenant=record.owner,
            step="routing",
        )
        if task is None or task.status in FINISHED:
            logger.info("task finished while routed: not handed on", extra={"event": "route_skipped"})
            return None
        if result.status in _OVER_BUDGET:
            # Not "unclassifiable": answering with a clarifying question here would hide the spend limit.
            logger.warning("router stopped by the spend limit", extra={"event": "route_budget_exceeded"})
            self.team.report(
                AgentOutcome(
                    task_id=task_id, correlation_id=record.correlation_id, agent=ROUTER, kind="budget_exceeded", trail=[ROUTER]
                )
            )
            return None
        target = handoff_target(result) or self.fallback
        if target is None:
            logger.info("request not routed", extra={"event": "route_fallback", "outcome": "answered"})
            self.team.report(
                AgentOutcome(
                    task_id=task_id,
                    correlation_id=record.correlation_id,
                    agent=ROUTER,
                    kind="answer",
                    answer="I could not tell which specialist should handle this; please say whether it is about "
                    + ", ".join(sorted(self.team.specialists))
                    + ".",
                    trail=[ROUTER],
                )
            )
            return None
        logger.info("request routed", extra={"event": "routed", "specialist": target, "fallback": handoff_target(result) is None})
        self.team.forward(
            RoutedMessage(
                task_id=task_id,
                correlation_id=record.correlation_id,
                message=record.message,
                hop=1,
                sender=ROUTER,
                trail=[ROUTER],
                owner=record.owner,
                spent=SpentSoFar.of(task),
            ),
            target,
        )
        return target


class Specialist:
    """Answers what it was handed, or hands it on (hop + 1), within the hop and spend limits."""

    def __init__(self, team: AgentTeam, agents: AgentService, *, name: str, handoffs: Sequence[str] = ()) -> None:
        self.team = team
        self.agents = agents
        self.name = name
        self.tools = [handoff_tool(team.specialists[h]) for h in handoffs if h in team.specialists and h != name]

    def handle(self, message: RoutedMessage, *, redelivered: bool = False) -> AgentOutcome | None:
        """Run this specialist on ``message``; returns the outcome it reported, or ``None`` when it handed the task
        on or found it finished (cancelled, say: its run's spend is still added).

        The task is read only for a message ``redelivered`` (an earlier attempt may have added spend since it was
        sent) or one that carries no owner and spend (from an older router)."""
        correlate(message.correlation_id, task_id=message.task_id)
        owner, spent = message.owner, message.spent
        if redelivered or owner is None or spent is None:
            record = self.team.tasks.store.get(message.task_id)
            if record is None or record.status in FINISHED:
                return None
            owner, spent = record.owner, SpentSoFar.of(record)
        trail = [*message.trail, self.name]
        exceeded, remaining = self.team.spend_limit.check_spent(spent)
        if exceeded:
            outcome = AgentOutcome(
                task_id=message.task_id,
                correlation_id=message.correlation_id,
                agent=self.name,
                kind="budget_exceeded",
                hop=message.hop,
                trail=trail,
            )
            self.team.report(outcome)
            return outcome
        result, task = self.team.run_agent(
            self.agents,
            self.tools,
            message.message,
            message.task_id,
            self.name,
            message.correlation_id,
            remaining,
            run=f"hop{message.hop}-{self.name}",
            tenant=owner,
        )
        if task is None or task.status in FINISHED:
            logger.info("task finished while its specialist ran: nothing reported", extra={"event": "specialist_skipped"})
            return None
        target = handoff_target(result)
        if target is not None:
            if message.hop + 1 > self.team.max_hops:
                logger.warning("routing loop stopped", extra={"event": "routing_loop", "hop": message.hop, "trail": trail})
                outcome = AgentOutcome(
                    task_id=message.task_id,
                    correlation_id=message.correlation_id,
                    agent=self.name,
                    kind="routing_loop",
                    detail=f"stopped after {message.hop} hand-offs: {' > '.join(trail)}",
                    hop=message.hop,
                    trail=trail,
                )
                self.team.report(outcome)
                return outcome
            handed_on = {
                "hop": message.hop + 1,
                "sender": self.name,
                "trail": trail,
                "owner": owner,
                "spent": SpentSoFar.of(task),
            }
            self.team.forward(message.model_copy(update=handed_on), target)
            return None
        kind = (
            "answer"
            if result.status == AgentStatus.COMPLETED
            else ("budget_exceeded" if result.status in _OVER_BUDGET else "failed")
        )
        outcome = AgentOutcome(
            task_id=message.task_id,
            correlation_id=message.correlation_id,
            agent=self.name,
            kind=kind,  # type: ignore[arg-type]
            answer=result.answer,
            detail=None if kind == "answer" else result.status.value,
            hop=message.hop,
            trail=trail,
        )
        self.team.report(outcome)
        return outcome


class Orchestrator:
    """Completes a routed task from the outcome a specialist reports: status, result, notification."""

    def __init__(self, tasks: TaskService) -> None:
        self.tasks = tasks

    def complete(self, outcome: AgentOutcome) -> TaskStatus | None:
        """Finish the task with ``outcome`` (one conditional write) and announce it; ``None`` when it had finished.

        Nothing is read first: a duplicate delivery's write finds the task finished and changes nothing, and a
        redelivery after a failed ``PutEvents`` then publishes the event the outbox still holds."""
        correlate(outcome.correlation_id, task_id=outcome.task_id)
        status, error = {
            "answer": (TaskStatus.SUCCEEDED, None),
            "routing_loop": (TaskStatus.FAILED, TaskError(code="routing_loop", message=outcome.detail or "too many hand-offs")),
            "budget_exceeded": (
                TaskStatus.BUDGET_EXCEEDED,
                TaskError(code="budget_exceeded", message="the task's spend limit was reached"),
            ),
            "failed": (TaskStatus.FAILED, TaskError(code="agent_failed", message=outcome.detail or "the agent did not finish")),
        }[outcome.kind]
        result = TaskResult(
            answer=outcome.answer,
            agent_status=outcome.kind,
            model="multiple",
            data={"answered_by": outcome.agent, "trail": outcome.trail, "hops": outcome.hop},
        )
        finished = self.tasks.finish(
            outcome.task_id, status, result=result, error=error, expected=(TaskStatus.QUEUED, TaskStatus.RUNNING)
        )
        return status if finished else None


__all__ = ["AgentTeam", "Orchestrator", "Router", "Specialist", "handoff_tool"]
