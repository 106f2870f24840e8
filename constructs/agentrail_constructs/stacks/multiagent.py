"""The multi-agent patterns as deployable stacks: routed specialists, and supervisor/worker hierarchies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.multiagent import (
    HierarchicalAgents,
    HierarchicalOptions,
    MultiAgentOptions,
    MultiAgentSystem,
    SpecialistOptions,
    specialist_id,
)
from agentrail_constructs.renames import renamed_keywords
from agentrail_constructs.stacks.pattern import PatternStack
from agentrail_constructs.tasks import AsyncAgent, AsyncOptions

#: The demo support team (agentrail_runtime.demo_team). billing and account hand off to each other.
DEMO_SPECIALISTS = (
    SpecialistOptions(
        name="billing",
        description="Billing questions: invoices, charges, payments, refunds and receipts.",
        agent_definition="agentrail_runtime.demo_team:billing",
        handoffs=("account",),
    ),
    SpecialistOptions(
        name="technical",
        description="Technical problems: errors, outages, the api, the dashboard, performance and bugs.",
        agent_definition="agentrail_runtime.demo_team:technical",
    ),
    SpecialistOptions(
        name="account",
        description="Account questions: profile, login, password, email address and account owner.",
        agent_definition="agentrail_runtime.demo_team:account",
        handoffs=("billing",),
    ),
)


class MultiAgentStack(PatternStack):
    """A :class:`MultiAgentSystem` (the demo support team unless ``specialists`` is given)."""

    @renamed_keywords(function="function_options", api="api_options")
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specialists: Sequence[SpecialistOptions] = DEMO_SPECIALISTS,
        options: MultiAgentOptions | None = None,
        function_options: AgentFunctionOptions | None = None,
        api_options: AgentApiOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope, construct_id, pattern="multiagent", summary="multi-agent system (router, specialists, orchestrator)", **kwargs
        )
        self.system = MultiAgentSystem(
            self,
            "Team",
            specialists=specialists,
            options=options,
            function_options=function_options,
            api_options=self.operator_api_options(api_options),
        )
        self.add_console(self.system.api)
        self.add_outputs(
            ApiUrl=self.system.url,
            **{
                f"{specialist_id(name)}DeadLetterQueueUrl": queues.dead_letter_queue.queue_url
                for name, queues in self.system.specialist_queues.items()
            },
        )
        self.add_budgets()
        self.add_monitoring()


class HierarchicalStack(PatternStack):
    """An AsyncAgent (``task_options``: its queueing and webhooks) whose ``research`` tasks run as
    :class:`HierarchicalAgents` (supervisor and workers)."""

    @renamed_keywords(function="function_options", api="api_options")
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: HierarchicalOptions | None = None,
        function_options: AgentFunctionOptions | None = None,
        api_options: AgentApiOptions | None = None,
        task_options: AsyncOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope, construct_id, pattern="hierarchical", summary="hierarchical agents (supervisor and workers)", **kwargs
        )
        self.tasks = AsyncAgent(
            self,
            "Tasks",
            function_options=function_options,
            api_options=self.operator_api_options(api_options),
            options=task_options or AsyncOptions(),
        )
        self.hierarchy = HierarchicalAgents(
            self, "Supervisor", tasks=self.tasks, options=options, function_options=function_options
        )
        self.add_console(self.tasks.api)
        self.add_outputs(ApiUrl=self.tasks.url, StateMachineArn=self.hierarchy.state_machine.state_machine_arn)
        self.add_budgets()
        self.add_monitoring()
