"""Assembles an agent per request from the definition, the configured models and the price table."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from agentrail_runtime import aws
from agentrail_runtime.agent.build import GuardPipelines, build_agent, system_prompt_of
from agentrail_runtime.agent.context import ToolContext
from agentrail_runtime.agent.definition import AgentDefinition, load_definition
from agentrail_runtime.agent.loop import Agent, AgentCheckpoint, AgentResult, CheckpointSink
from agentrail_runtime.agent.tools import DryRunCall, Tool
from agentrail_runtime.agent.version import agent_version
from agentrail_runtime.budgets import BudgetExceeded, BudgetGuard, DailyBudgets
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.contract import StepKind
from agentrail_runtime.guardrails.base import GuardBlocked, GuardStage
from agentrail_runtime.health import HealthCheck, dependency_check, model_check
from agentrail_runtime.metering.feedback import Feedback
from agentrail_runtime.metering.metrics import (
    APPROVAL_REJECTED,
    TASK_FAILED,
    emit_feedback_metrics,
    emit_guard_block,
    emit_outcome,
    emit_step_latencies,
    emit_task_metrics,
)
from agentrail_runtime.metering.pricing import PriceTable
from agentrail_runtime.models.base import Message, ModelConfigError, ModelProvider
from agentrail_runtime.models.registry import ProviderFactory, parse_model_spec
from agentrail_runtime.observability import log_environment_keys, metrics

if TYPE_CHECKING:
    from agentrail_runtime.agent.events import EventSink


class UnknownModelError(ValueError):
    """A request asked for a model the function is not configured to use."""

    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__("model is not one of the configured models")
        self.allowed = tuple(allowed)


class AgentService:
    """The agent a function serves.

    Parameters
    ----------
    definition:
        System prompt and tools.
    settings:
        Model choice, limits and prices.
    providers:
        Creates model providers; injected in tests.
    prompts:
        The ``bedrock-agent`` client that reads a definition's Bedrock prompt (at construction: cold start); injected
        in tests. Default: :func:`agentrail_runtime.aws.client`'s.

    Attributes
    ----------
    version:
        The agent version (:func:`~agentrail_runtime.agent.version.agent_version`), computed once per execution
        environment: the ``agent_version`` key of every log line, the ``agent_version`` property of its metrics and
        an annotation of its traces.
    """

    def __init__(
        self,
        *,
        definition: AgentDefinition,
        settings: RuntimeSettings,
        providers: ProviderFactory | None = None,
        prompts: Any = None,
    ) -> None:
        self.definition = definition
        self.settings = settings
        self.providers = providers or ProviderFactory(
            openai_api_key_secret=settings.openai_api_key_secret,
            openai_base_url=settings.openai_base_url,
            max_attempts=settings.model_max_attempts,
            timeout_seconds=settings.model_timeout_seconds,
            bedrock_guardrail=settings.bedrock_guardrail,
            prompt_caching=settings.prompt_caching,
        )
        self.prices = PriceTable(settings.price_table)
        self._models = settings.models  # parsed once per environment, not per request
        self.budgets = (
            DailyBudgets(
                settings.budget_table,
                settings.budgets,
                prices=self.prices,
                retention_days=settings.budget_retention_days,
            )
            if settings.budgets and settings.budget_table
            else None
        )
        self._clients: dict[str, Any] = {}
        #: The definition's guard pipelines, built once and shared by every agent this service builds.
        self.guards = GuardPipelines.of(definition)
        self.version = agent_version(definition, settings)
        log_environment_keys(agent_version=self.version)
        #: The system prompt's text: the setting's override, else the definition's (a Bedrock prompt is read now).
        self.system_prompt: str = system_prompt_of(definition, settings.system_prompt, client=prompts)

    @classmethod
    def from_settings(cls, settings: RuntimeSettings) -> AgentService:
        return cls(definition=load_definition(settings.definition), settings=settings)

    def model(self, requested: str | None = None) -> ModelProvider:
        """The provider for ``requested`` (default: the configured model).

        Raises
        ------
        UnknownModelError
            When ``requested`` is not among the configured models.
        """
        allowed = self._models
        if requested is None:
            return self.providers.get(allowed[0])
        try:
            canonical = parse_model_spec(requested).canonical
        except ModelConfigError:
            raise UnknownModelError(allowed) from None
        if canonical not in allowed:
            raise UnknownModelError(allowed)
        return self.providers.get(canonical)

    def step_model(self, step: StepKind) -> ModelProvider:
        """The model of a kind of step: its own (``AGENT_STEP_MODELS``) when one is configured, else the default."""
        spec = self.settings.step_models.get(step)
        return self.providers.get(spec) if spec else self.model()

    def agent(
        self,
        model: ModelProvider | str | None = None,
        *,
        token_budget: int | None = None,
        extra_tools: Sequence[Tool] = (),
        dry_run: list[DryRunCall] | None = None,
        step: StepKind | None = None,
    ) -> Agent:
        """The agent for one run, on ``model`` (a provider, or a spec checked by :meth:`model`; default: the
        configured one, or the model of ``step``'s kind, see :meth:`step_model`). ``token_budget`` lowers the
        configured budget (never raises it); ``extra_tools`` (hand-offs) join the definition's tools. With
        ``dry_run`` (a shadow run), tools with side effects never run: they return their dry-run result, and each
        such call is appended to that list."""
        s = self.settings
        if model is None and step is not None:
            model = self.step_model(step)
        return build_agent(
            self.definition,
            model=model if isinstance(model, ModelProvider) else self.model(model),
            system_prompt=self.system_prompt,
            max_steps=s.max_steps,
            token_budget=s.token_budget if token_budget is None else max(1, min(s.token_budget, token_budget)),
            max_output_tokens=s.max_output_tokens,
            max_tool_result_bytes=s.max_tool_result_bytes,
            prices=self.prices,
            version=self.version,
            guards=self.guards,
            extra_tools=extra_tools,
            dry_run=dry_run,
        )

    def check_input(self, message: str) -> str:
        """``message`` as this agent's input guards leave it; an API calls it before it queues anything.

        Raises
        ------
        GuardBlocked
            An input guard blocked the message (``GuardBlocks_input`` is counted): answer 400 ``input_blocked``.
        """
        try:
            return self.guards.input.enforce(message).text
        except GuardBlocked:
            self.emit_guard_block("input")
            raise

    def emit_guard_block(self, stage: GuardStage, model: str | None = None) -> None:
        """Count a text a guard blocked outside a finished run (``GuardBlocks_<stage>``)."""
        emit_guard_block(
            metrics, stage, agent_name=self.definition.name, model=self._canonical(model), agent_version=self.version
        )

    def budget_guard(self, tenant: str | None) -> BudgetGuard | None:
        """The daily budget checks of a run for ``tenant`` (a principal) on this agent; ``None`` without budgets."""
        return self.budgets.guard(tenant=tenant, agent=self.definition.name) if self.budgets is not None else None

    def check_budget(self, tenant: str | None) -> None:
        """Refuse a request of ``tenant`` when its or this agent's daily budget is already spent (reads only).

        Raises
        ------
        BudgetExceeded
        """
        if self.budgets is not None:
            self.budgets.check(tenant=tenant, agent=self.definition.name)

    @property
    def budgets_per_tenant(self) -> bool:
        return self.budgets is not None and self.budgets.per_tenant

    def run(
        self,
        prompt: str,
        *,
        model: str | None = None,
        history: Sequence[Message] = (),
        context: ToolContext | None = None,
        tenant: str | None = None,
        on_event: EventSink | None = None,
    ) -> AgentResult:
        """Run one task for ``tenant`` under the daily budgets, and emit its metrics: tokens, cost, steps and their
        latency, the run's wall time, its outcome (``Tasks_failed`` when the run raises), and its tool calls.
        ``on_event`` streams the run (see :meth:`Agent.advance`).

        Raises
        ------
        BudgetExceeded
            A daily budget refused the run's first model call: nothing ran.
        GuardBlocked
            An input guard blocked ``prompt``: nothing ran (``GuardBlocks_input`` is counted).
        """
        agent = self.agent(model)
        try:
            checkpoint = agent.start(prompt, history=history)
        except GuardBlocked:
            self.emit_guard_block("input", model)
            raise
        result = self._metered(
            agent, lambda: agent.advance(checkpoint, context=context, budget=self.budget_guard(tenant), on_event=on_event)
        )
        if result.budget is not None and result.budget.calls_before == 0:
            raise BudgetExceeded(result.budget)
        return result

    def _metered(self, agent: Agent, run: Callable[[], AgentResult]) -> AgentResult:
        """``run()``, with its metrics emitted: the result's, with the run's wall time; or ``Tasks_failed`` when it raises."""
        started = time.perf_counter()
        try:
            result = run()
        except Exception:
            self.emit_failed(agent.model.name)
            raise
        self.emit_metrics(result, task_latency_ms=(time.perf_counter() - started) * 1000)
        return result

    def emit_metrics(self, result: AgentResult, *, agent_name: str | None = None, task_latency_ms: float | None = None) -> None:
        """Emit a finished run's metrics, under this agent's name (or ``agent_name``) and version."""
        emit_task_metrics(
            metrics,
            result,
            agent_name=agent_name or self.definition.name,
            agent_version=self.version,
            task_latency_ms=task_latency_ms,
        )

    def emit_slice(self, result: AgentResult) -> None:
        """Emit the step latencies of a slice of a run that continues in another invocation (its totals come at its end)."""
        emit_step_latencies(metrics, result, agent_name=self.definition.name, agent_version=self.version)

    def emit_feedback(self, feedback: Feedback) -> None:
        """Emit a user's feedback on a run of this agent, under its name and version (``FeedbackScore`` or
        ``Feedback_up``/``Feedback_down``)."""
        emit_feedback_metrics(metrics, feedback, agent_name=self.definition.name, agent_version=self.version)

    def emit_failed(self, model: str | None = None) -> None:
        """Count a run or task that failed (``Tasks_failed``), on ``model`` (default: the configured one)."""
        emit_outcome(
            metrics, TASK_FAILED, agent_name=self.definition.name, model=self._canonical(model), agent_version=self.version
        )

    def emit_rejected(self, model: str | None = None) -> None:
        """Count an approval of this agent's task that was rejected (``Tasks_rejected``), by a person or a timeout."""
        emit_outcome(
            metrics, APPROVAL_REJECTED, agent_name=self.definition.name, model=self._canonical(model), agent_version=self.version
        )

    def model_spec(self, requested: str | None = None) -> str:
        """The canonical spec of ``requested``, checked as :meth:`model` checks it (default: the configured model).

        Raises
        ------
        UnknownModelError
        """
        self.model(requested)
        return self._models[0] if requested is None else parse_model_spec(requested).canonical

    @property
    def models(self) -> tuple[str, ...]:
        """The models a request may name (canonical specs), the configured one first."""
        return tuple(self._models)

    def _canonical(self, model: str | None) -> str:
        """``model`` as the ``model`` dimension of a run on it reads (the provider's name; default: the configured one)."""
        try:
            return self.model(model).name
        except (UnknownModelError, ModelConfigError):
            return self._models[0]

    def advance(
        self,
        checkpoint: AgentCheckpoint,
        *,
        model: str | None = None,
        context: ToolContext | None = None,
        on_checkpoint: CheckpointSink | None = None,
        checkpoint_every_call: bool = True,
        tenant: str | None = None,
        on_event: EventSink | None = None,
    ) -> AgentResult:
        """Continue a run from ``checkpoint`` (see :meth:`Agent.advance`) for ``tenant`` under the daily budgets, and
        emit its metrics, as :meth:`run` does; ``on_event`` streams it."""
        agent = self.agent(model)
        return self._metered(
            agent,
            lambda: agent.advance(
                checkpoint,
                context=context,
                on_checkpoint=on_checkpoint,
                checkpoint_every_call=checkpoint_every_call,
                budget=self.budget_guard(tenant),
                on_event=on_event,
            ),
        )

    def client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = aws.client(service)
        return client

    @cached_property
    def health_checks(self) -> list[HealthCheck]:
        checks = [model_check(self.model())]
        checks.extend(dependency_check(dep, self.client) for dep in self.settings.health_checks)
        return checks
