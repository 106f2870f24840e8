"""MultiAgentSystem (router, specialists, orchestrator) and HierarchicalAgents (supervisor and workers)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.budgets import BudgetOptions, DailyBudgets, budgets_for
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions
from agentrail_constructs.nag import acknowledge, default_resource, execution_arn_pattern
from agentrail_constructs.queues import QueueWithDeadLetters, visibility_timeout_for
from agentrail_constructs.renames import check_exclusive, renamed_class, renamed_keywords
from agentrail_constructs.sources import handler_dir
from agentrail_constructs.task_table import TaskTable, TaskTableOptions
from agentrail_constructs.tasks import AsyncAgent, AsyncOptions
from agentrail_constructs.workflows import (
    PINNED,
    TASK_FIELDS,
    RetryOptions,
    Step,
    agent_step,
    check_within_retention,
    grant_pinned_invoke,
    lambda_step,
    pin_version,
    standard_state_machine,
    task_failed,
    validate_workflow,
)

#: The fields of a subtask (a Map item the Plan and Review steps list) that its Work step reads.
SUBTASK_FIELDS = ("task_id", "correlation_id", "index", "attempt")

_AGENT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True, kw_only=True)
class SpecialistOptions:
    """A specialist the MultiAgentSystem creates, declared as data: adding one needs no new construct code.

    (Formerly ``Specialist``, a name the runtime's running specialist also has.)
    """

    name: str
    """Unique, 1-32 characters of a-z, 0-9, _ and -."""
    description: str
    """What the router reads to choose it (10-500 characters)."""
    agent_definition: str
    """``module:attribute`` of its AgentDefinition (prompt and tools)."""
    model: str = "local"
    """Its model. Default: ``local``."""
    max_concurrency: int = 5
    """The event source mapping's MaximumConcurrency: it scales (and fails) on its own. Default: 5."""
    handoffs: Sequence[str] = ()
    """Specialists it may hand a request on to. Default: none."""
    agent_code: str | None = None
    """Folder of its agent package(s), shipped as a layer. Default: none."""


@dataclass(frozen=True, kw_only=True)
class MultiAgentOptions:
    max_hops: int = 4
    """Hand-offs before routing stops as a loop. Default: 4."""
    fallback: str | None = None
    """Specialist for requests the router cannot classify; none means the router answers with a clarifying question. Default: none."""
    max_task_tokens: int | None = None
    """Spend limit in tokens across every agent of one task. Default: none."""
    max_task_usd: float | None = None
    """Spend limit in USD across every agent of one task. Default: none."""
    router_model: str = "local"
    """The router's model. Default: ``local``."""
    max_receive_count: int = 5
    """Deliveries before a message goes to a dead-letter queue. Default: 5."""
    webhooks: bool = True
    """Signed webhooks to callers' callback URLs when a task finishes (see ``AsyncOptions.webhooks``). Default: true."""


def validate_team(specialists: Sequence[SpecialistOptions], options: MultiAgentOptions) -> None:
    """Fail at synth with a message naming the problem and the known names."""
    if not specialists:
        raise ValueError("a MultiAgentSystem needs at least one specialist")
    names = [s.name for s in specialists]
    for name in names:
        if not _AGENT_NAME.match(name):
            raise ValueError(f"specialist name {name!r} must be 1-32 characters of a-z, 0-9, _ and -, starting with a letter")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"specialist names must be unique; repeated: {', '.join(repeated)}")
    known = ", ".join(sorted(names))
    for spec in specialists:
        if not 10 <= len(spec.description) <= 500:
            raise ValueError(f"specialist {spec.name!r}: description must be 10-500 characters (the router reads it)")
        for target in spec.handoffs:
            if target not in names:
                raise ValueError(f"specialist {spec.name!r} hands off to unknown specialist {target!r}; known: {known}")
            if target == spec.name:
                raise ValueError(f"specialist {spec.name!r} cannot hand off to itself")
        if not 2 <= spec.max_concurrency <= 1000:
            raise ValueError(f"specialist {spec.name!r}: max_concurrency must be between 2 and 1000")
    if options.fallback is not None and options.fallback not in names:
        raise ValueError(f"fallback names unknown specialist {options.fallback!r}; known: {known}")
    if not 1 <= options.max_hops <= 20:
        raise ValueError("max_hops must be between 1 and 20")


def specialist_id(name: str) -> str:
    """The PascalCase id of a specialist's constructs and outputs: ``billing-ops`` → ``BillingOps``."""
    return name.title().replace("-", "").replace("_", "")


def _spend_environment(max_task_tokens: int | None, max_task_usd: float | None) -> dict[str, str]:
    """The spend limits of one task across every agent that works on it."""
    env: dict[str, str] = {}
    if max_task_tokens is not None:
        env["AGENT_MULTI_MAX_TASK_TOKENS"] = str(max_task_tokens)
    if max_task_usd is not None:
        env["AGENT_MULTI_MAX_TASK_USD"] = repr(max_task_usd)
    return env


class MultiAgentSystem(Construct):
    """A router that classifies each task and hands it to a specialist; each specialist has its own queue,
    dead-letter queue and MaximumConcurrency; an orchestrator completes the task from the specialist's
    outcome. Tasks come in through an AsyncAgent API (``POST /tasks``), so status, result and
    notifications are the async pattern's.

    Messages carry the task's correlation id and a hop count; ``max_hops`` stops routing loops. Tokens
    and cost are recorded per agent on the task.

    Parameters
    ----------
    specialists:
        The team, as data: one ``SpecialistOptions`` per specialist (name, definition, concurrency).
    options:
        Routing, hop limit and spend caps. Default: ``MultiAgentOptions()``.
    function_options:
        Options every agent function starts from. Default: ``AgentFunctionOptions()``.
    api_options:
        REST API options. Default: IAM auth.
    existing_task_table, task_table_options, existing_queue, existing_event_bus, existing_rest_api:
        Resources you bring for the task API, passed to its :class:`AsyncAgent` (see there): the task
        table, the router's queue, the bus for ``Task Finished`` events and the REST API. Default: new ones.
    budget_options:
        Daily token or USD budgets per tenant and per agent, with a new counters table (see :class:`BudgetOptions`),
        enforced by the task API (``POST /tasks``), the router and every specialist; the orchestrator calls no model
        and gets none. Default: none.
    existing_budgets:
        Your :class:`DailyBudgets` (shared with other patterns). Not with ``budget_options``. Default: none.

    Attributes
    ----------
    tasks (the AsyncAgent), router, specialists (name to AgentFunction), specialist_queues,
    orchestrator, orchestrator_queue, api, budgets (None without budgets)
    """

    @renamed_keywords(function="function_options", api="api_options")
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specialists: Sequence[SpecialistOptions],
        options: MultiAgentOptions | None = None,
        function_options: AgentFunctionOptions | None = None,
        api_options: AgentApiOptions | None = None,
        existing_task_table: TaskTable | None = None,
        task_table_options: TaskTableOptions | None = None,
        existing_queue: sqs.IQueue | None = None,
        existing_event_bus: events.IEventBus | None = None,
        existing_rest_api: apigw.RestApi | None = None,
        budget_options: BudgetOptions | None = None,
        existing_budgets: DailyBudgets | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options = options or MultiAgentOptions()
        validate_team(specialists, options)
        check_exclusive(existing_budgets, budget_options, "existing_budgets", "budget_options")
        base = function_options or AgentFunctionOptions()
        self.tasks = AsyncAgent(
            self,
            "Tasks",
            function_options=base,
            worker_function_options=replace(base, model=options.router_model, timeout=Duration.minutes(2)),
            worker_code=handler_dir("router"),
            options=AsyncOptions(max_receive_count=options.max_receive_count, webhooks=options.webhooks),
            api_options=api_options,
            existing_task_table=existing_task_table,
            task_table_options=task_table_options,
            existing_queue=existing_queue,
            existing_event_bus=existing_event_bus,
            existing_rest_api=existing_rest_api,
        )
        self.api = self.tasks.api
        self.router = self.tasks.worker
        table = self.tasks.task_table
        orchestrator_timeout = Duration.minutes(1)
        orchestrator_queues = QueueWithDeadLetters(
            self,
            "Outcomes",
            visibility_timeout=visibility_timeout_for(orchestrator_timeout),
            max_receive_count=options.max_receive_count,
            encryption_key=table.encryption_key,
        )
        self.orchestrator_queue = orchestrator_queues.queue
        self.orchestrator = AgentFunction(
            self,
            "Orchestrator",
            handler_code=handler_dir("orchestrator"),
            options=replace(base, memory_size=512, timeout=orchestrator_timeout, service_name="orchestrator"),
        )
        self._member(self.orchestrator)
        self.orchestrator.alias.add_event_source(
            sources.SqsEventSource(self.orchestrator_queue, batch_size=10, report_batch_item_failures=True, max_concurrency=5)
        )
        self.specialists: dict[str, AgentFunction] = {}
        self.specialist_queues: dict[str, QueueWithDeadLetters] = {}
        for spec in specialists:
            fn = AgentFunction(
                self,
                f"Specialist{specialist_id(spec.name)}",
                handler_code=handler_dir("specialist"),
                options=replace(
                    base,
                    model=spec.model,
                    agent_definition=spec.agent_definition,
                    agent_code=spec.agent_code or base.agent_code,
                    timeout=Duration.minutes(2),
                    service_name=f"specialist-{spec.name}",
                ),
            )
            queues = QueueWithDeadLetters(
                self,
                f"{specialist_id(spec.name)}Queue",
                visibility_timeout=visibility_timeout_for(fn.options.timeout),
                max_receive_count=options.max_receive_count,
                encryption_key=table.encryption_key,
            )
            fn.alias.add_event_source(
                sources.SqsEventSource(
                    queues.queue, batch_size=5, report_batch_item_failures=True, max_concurrency=spec.max_concurrency
                )
            )
            self.specialists[spec.name] = fn
            self.specialist_queues[spec.name] = queues
        catalog = [
            {"name": spec.name, "description": spec.description, "queue_url": self.specialist_queues[spec.name].queue.queue_url}
            for spec in specialists
        ]
        members = [
            (self.router, [s.name for s in specialists], "router"),
            *((self.specialists[s.name], list(s.handoffs), s.name) for s in specialists),
        ]
        for fn, targets, name in members:
            self._member(fn)
            fn.add_environment("AGENT_MULTI_AGENT_NAME", name)
            fn.add_environment("AGENT_MULTI_SPECIALISTS", Stack.of(self).to_json_string(catalog))
            fn.add_environment("AGENT_MULTI_HANDOFFS", json.dumps(targets))
            fn.add_environment("AGENT_MULTI_ORCHESTRATOR_QUEUE_URL", self.orchestrator_queue.queue_url)
            fn.add_environment("AGENT_MULTI_MAX_HOPS", str(options.max_hops))
            for key, value in _spend_environment(options.max_task_tokens, options.max_task_usd).items():
                fn.add_environment(key, value)
            for target in targets:
                self.specialist_queues[target].queue.grant_send_messages(fn.function)
            self.orchestrator_queue.grant_send_messages(fn.function)
            fn.calls_service("sqs")
        if options.fallback:
            self.router.add_environment("AGENT_MULTI_FALLBACK", options.fallback)
            self.specialist_queues[options.fallback].queue.grant_send_messages(self.router.function)
        self.budgets = budgets_for(self, budget_options=budget_options, existing_budgets=existing_budgets)

    def _member(self, fn: AgentFunction) -> None:
        """Every member reads and writes the task table and announces finished tasks."""
        if fn is not self.router:
            self.tasks.task_table.grant_tasks(fn, event_bus=self.tasks.event_bus)
            fn.add_environment("AGENT_TASK_MAX_RECEIVE_COUNT", str(self.options.max_receive_count))

    @property
    def url(self) -> str:
        return self.api.url


@dataclass(frozen=True, kw_only=True)
class HierarchicalOptions:
    task_types: Sequence[str] = ("research",)
    """Task types run by the supervisor. Default: ``research``."""
    max_concurrency: int = 4
    """Workers running at once (the Map state's MaxConcurrency). Default: 4."""
    tolerated_failure_percentage: float = 50.0
    """Share of subtasks that may fail and the task still complete. Default: 50."""
    max_review_rounds: int = 1
    """Re-runs of failed or weak subtasks. Default: 1."""
    worker_definition: str = "agentrail_runtime.demo_team:research_worker"
    """``module:attribute`` of the workers' AgentDefinition. Default: the demo research worker."""
    max_task_tokens: int | None = None
    """Spend limit in tokens across the supervisor and every worker. Default: none."""
    max_task_usd: float | None = None
    """Spend limit in USD. Default: none."""
    execution_timeout: Duration = field(default_factory=lambda: Duration.hours(2))
    """Default: 2 hours."""
    step_timeout: Duration = field(default_factory=lambda: Duration.minutes(5))
    """One plan, work, review or synthesize step. Default: 5 minutes."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """Default: one month."""
    retries: RetryOptions = field(default_factory=RetryOptions)
    """How each step retries transient failures (shorten it in tests run by a local Step Functions).
    Default: ``RetryOptions()``: 2 s before Lambda's, 10 s before the model's, doubling, no cap."""

    def validate(self) -> None:
        if not 1 <= self.max_concurrency <= 1000:
            raise ValueError("max_concurrency must be between 1 and 1000")
        if not 0 <= self.tolerated_failure_percentage <= 100:
            raise ValueError("tolerated_failure_percentage must be between 0 and 100")
        if not 0 <= self.max_review_rounds <= 5:
            raise ValueError("max_review_rounds must be between 0 and 5")
        validate_workflow(
            "HierarchicalOptions",
            task_types=self.task_types,
            execution_timeout=self.execution_timeout,
            step_timeout=self.step_timeout,
            retries=self.retries,
        )


class HierarchicalAgents(Construct):
    """A supervisor/worker workflow (Step Functions Standard) behind an AsyncAgent's task API.

    Plan (supervisor) → FanOut (a distributed Map: MaxConcurrency, ToleratedFailurePercentage) running
    Work (a worker agent per subtask) → Review (re-runs failed or weak subtasks, bounded) → Synthesize
    (supervisor) → Finished; any error → MarkFailed. Every Lambda task retries Lambda's transient errors
    plus TooManyRequestsException. The whole run is one task.

    Parameters
    ----------
    tasks:
        The AsyncAgent whose task API starts the workflow (task types ``options.task_types``).
    options:
        Fan-out, review and spend limits of one task. Default: ``HierarchicalOptions()``.
    function_options:
        Options of the supervisor's step function (its timeout is ``step_timeout``). Default:
        ``AgentFunctionOptions()``.
    budget_options:
        Daily token or USD budgets per tenant and per agent (``supervisor``, ``worker``), with a new counters table
        (see :class:`BudgetOptions`), enforced in the step function: every model call of the supervisor and the
        workers. Not when ``tasks`` has budgets (its ``POST /tasks`` would read other counters). Default: none.
    existing_budgets:
        Your :class:`DailyBudgets`. Not with ``budget_options``. Default: ``tasks.budgets`` (the budgets of the
        AsyncAgent, when it has some), so ``POST /tasks`` and the workflow count against the same counters.

    Attributes
    ----------
    state_machine, function, fan_out, log_group, task_types, budgets (None without budgets)
    """

    @renamed_keywords(function="function_options")
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tasks: AsyncAgent,
        options: HierarchicalOptions | None = None,
        function_options: AgentFunctionOptions | None = None,
        budget_options: BudgetOptions | None = None,
        existing_budgets: DailyBudgets | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = o = options or HierarchicalOptions()
        o.validate()
        check_exclusive(existing_budgets, budget_options, "existing_budgets", "budget_options")
        if budget_options is not None and tasks.budgets is not None:
            raise ValueError(
                "tasks already enforces daily budgets, which HierarchicalAgents shares by default: drop budget_options, "
                "or pass existing_budgets=... to use other ones"
            )
        check_within_retention(
            "HierarchicalOptions", execution_timeout=o.execution_timeout, retention_days=tasks.task_table.retention_days
        )
        self.task_types = tuple(o.task_types)
        base = function_options or AgentFunctionOptions()
        self.function = AgentFunction(
            self,
            "Steps",
            handler_code=handler_dir("supervisor"),
            options=replace(base, agent_definition=o.worker_definition, timeout=o.step_timeout, service_name="supervisor"),
        )
        tasks.task_table.grant_tasks(self.function, event_bus=tasks.event_bus)
        self._encryption_key = tasks.task_table.encryption_key
        self.function.add_environment("AGENT_MULTI_MAX_REVIEW_ROUNDS", str(o.max_review_rounds))
        self.function.add_environment("AGENT_MULTI_TOLERATED_FAILURE_PERCENTAGE", repr(float(o.tolerated_failure_percentage)))
        for key, value in _spend_environment(o.max_task_tokens, o.max_task_usd).items():
            self.function.add_environment(key, value)
        self.state_machine = self._build_state_machine()
        tasks.add_workflow_route(self.state_machine, self.task_types)
        self.budgets = budgets_for(self, budget_options=budget_options, existing_budgets=existing_budgets or tasks.budgets)

    def _build_state_machine(self) -> sfn.StateMachine:
        """Plan runs through ``live`` and keeps the version that ran; every later step (Work, Review, Synthesize)
        invokes that version (``$.pinned.version``), so an execution finishes on the code it started on even when a
        deployment moves ``live`` meanwhile. MarkFailed runs through ``live``: a Plan that failed pinned nothing."""
        o = self.options
        alias = self.function.alias

        def invoke(name: str, payload: dict[str, object], result_path: str | None, *, pinned: bool = True) -> Step:
            # The steps' payloads only (``Payload.$``): a pinned step cannot ask for the payload alone.
            return agent_step(
                self,
                name,
                alias=alias,
                function=self.function.function,
                pinned=pinned,
                payload=payload,
                result_selector={"Payload.$": "$.Payload"},
                result_path=result_path,
                timeout=o.step_timeout,
                retries=o.retries,
            )

        def payload_of(name: str, response: str, into: str) -> sfn.Pass:
            """What ``payload_response_only`` would have put at ``into``: the step's payload, kept at ``response``."""
            return sfn.Pass(self, name, input_path=f"{response}.Payload", result_path=into)

        failed = task_failed(self)
        mark_failed = lambda_step(
            self,
            "MarkFailed",
            alias,
            payload={"action": "fail", **TASK_FIELDS, "error.$": "$.error"},
            payload_response_only=True,
            result_path="$.failure",
            timeout=o.step_timeout,
            retries=o.retries,
        )
        mark_failed.next(failed)
        plan = invoke("Plan", {"action": "plan", **TASK_FIELDS}, "$.planned", pinned=False)
        pin = pin_version(self, version_path="$.planned.version")
        work = invoke(
            "Work",
            {"action": "work", **TASK_FIELDS, "index.$": "$.index", "attempt.$": "$.attempt"},
            None,
        )
        fan_out = sfn.DistributedMap(
            self,
            "FanOut",
            items_path="$.work.items",
            # Each subtask's input: its item, and the version its Work step invokes.
            item_selector={
                **{name: sfn.JsonPath.string_at(f"$$.Map.Item.Value.{name}") for name in SUBTASK_FIELDS},
                PINNED.removeprefix("$."): sfn.JsonPath.object_at(PINNED),
            },
            max_concurrency=o.max_concurrency,
            tolerated_failure_percentage_path="$.work.tolerance",
            result_path=sfn.JsonPath.DISCARD,
            map_execution_type=sfn.StateMachineType.STANDARD,
        )
        fan_out.item_processor(work)
        self.fan_out = fan_out
        review = invoke("Review", {"action": "review", **TASK_FIELDS, "round.$": "$.review.round"}, "$.reviewed")
        synthesize = invoke(
            "Synthesize",
            {"action": "synthesize", **TASK_FIELDS, "budget_exceeded.$": "$.review.budget_exceeded"},
            "$.synthesized",
        )
        synthesize.next(payload_of("Outcome", "$.synthesized", "$.outcome")).next(sfn.Succeed(self, "Finished"))
        start_review = sfn.Pass(
            self, "FirstReview", result=sfn.Result.from_object({"round": 0, "budget_exceeded": False}), result_path="$.review"
        )
        rerun = sfn.Pass(
            self,
            "RerunWeakSubtasks",
            parameters={"items.$": "$.review.items", "tolerance.$": "$.work.tolerance", "budget_exceeded": False},
            result_path="$.work",
        )
        for task in (plan, review, synthesize, fan_out):
            task.add_catch(mark_failed, errors=["States.ALL"], result_path="$.error")
        planned = sfn.Choice(self, "Planned?")
        # A task already finished (cancelled before Plan, or a redriven execution): no work; Synthesize only
        # re-announces it (its outbox may still hold the event). Guarded: a Choice on a missing path fails the run.
        already_finished = sfn.Condition.and_(
            sfn.Condition.is_present("$.work.finished"), sfn.Condition.boolean_equals("$.work.finished", True)
        )
        planned.when(already_finished, synthesize)
        planned.when(sfn.Condition.boolean_equals("$.work.budget_exceeded", True), synthesize)
        planned.otherwise(fan_out)
        reviewed = sfn.Choice(self, "Reviewed?")
        reviewed.when(sfn.Condition.boolean_equals("$.review.rerun", True), rerun.next(fan_out))
        reviewed.when(sfn.Condition.boolean_equals("$.review.budget_exceeded", True), synthesize)
        reviewed.when(
            sfn.Condition.boolean_equals("$.review.too_many_failed", True),
            sfn.Pass(
                self,
                "TooManyFailed",
                parameters={"Error": "TooManyFailedSubtasks", "Cause": '{"errorMessage": "more subtasks failed than tolerated"}'},
                result_path="$.error",
            ).next(mark_failed),
        )
        reviewed.otherwise(synthesize)
        fan_out.next(review)
        review.next(payload_of("ReviewRead", "$.reviewed", "$.review")).next(reviewed)
        definition = plan.next(pin).next(payload_of("PlanRead", "$.planned", "$.work")).next(start_review).next(planned)
        machine, self.log_group = standard_state_machine(
            self, definition, timeout=o.execution_timeout, log_retention=o.log_retention, encryption_key=self._encryption_key
        )
        policy = machine.node.try_find_child("DistributedMapPolicy")
        if policy is not None:
            executions = execution_arn_pattern(machine)
            reason = (
                "A distributed Map runs each subtask as a child execution whose name the service generates; "
                "these statements cover only this state machine's own executions and their map runs."
            )
            acknowledge(default_resource(policy), f"IAM5[Resource::{executions}:*]", reason)
            acknowledge(default_resource(policy), f"IAM5[Resource::{executions}/*:*]", reason)
        grant_pinned_invoke(machine, self.function.function)
        return machine


def __getattr__(name: str) -> object:
    """``Specialist`` is the old name of :class:`SpecialistOptions`; it keeps working for one release."""
    if name == "Specialist":
        return renamed_class(name, SpecialistOptions)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
