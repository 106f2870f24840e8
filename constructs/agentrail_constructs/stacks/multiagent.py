"""The multi-agent patterns as deployable stacks: routed specialists, and supervisor/worker hierarchies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.multiagent import (
    HierarchicalAgents,
    HierarchicalOptions,
    MultiAgentOptions,
    MultiAgentSystem,
    Specialist,
)
from agentrail_constructs.tasks import AsyncAgent, AsyncOptions

#: The demo support team (agentrail.demo_team). billing and account hand off to each other.
DEMO_SPECIALISTS = (
    Specialist(
        name="billing",
        description="Billing questions: invoices, charges, payments, refunds and receipts.",
        agent_definition="agentrail.demo_team:billing",
        handoffs=("account",),
    ),
    Specialist(
        name="technical",
        description="Technical problems: errors, outages, the api, the dashboard, performance and bugs.",
        agent_definition="agentrail.demo_team:technical",
    ),
    Specialist(
        name="account",
        description="Account questions: profile, login, password, email address and account owner.",
        agent_definition="agentrail.demo_team:account",
        handoffs=("billing",),
    ),
)


class MultiAgentStack(Stack):
    """A :class:`MultiAgentSystem` (the demo support team unless ``specialists`` is given)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specialists: Sequence[Specialist] = DEMO_SPECIALISTS,
        options: MultiAgentOptions | None = None,
        function: AgentFunctionOptions | None = None,
        api: AgentApiOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, description="agentrail: multi-agent system (router, specialists, orchestrator)", **kwargs)
        Tags.of(self).add("agentrail:pattern", "multiagent")
        self.system = MultiAgentSystem(self, "Team", specialists=specialists, options=options, function=function, api=api)
        CfnOutput(self, "ApiUrl", value=self.system.url)
        for name, queues in self.system.specialist_queues.items():
            CfnOutput(self, f"{name.title().replace('-', '').replace('_', '')}DeadLetterQueueUrl", value=queues.dead_letter_queue.queue_url)


class HierarchicalStack(Stack):
    """An AsyncAgent whose ``research`` tasks run as :class:`HierarchicalAgents` (supervisor and workers)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: HierarchicalOptions | None = None,
        function: AgentFunctionOptions | None = None,
        api: AgentApiOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, description="agentrail: hierarchical agents (supervisor and workers)", **kwargs)
        Tags.of(self).add("agentrail:pattern", "hierarchical")
        self.tasks = AsyncAgent(self, "Tasks", function=function, api=api, options=AsyncOptions())
        self.hierarchy = HierarchicalAgents(self, "Supervisor", tasks=self.tasks, options=options, function=function)
        CfnOutput(self, "ApiUrl", value=self.tasks.url)
        CfnOutput(self, "StateMachineArn", value=self.hierarchy.state_machine.state_machine_arn)
