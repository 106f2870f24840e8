"""The async pattern (queue workers and long-task workflows) as a deployable stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.approvals import ApprovalOptions
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.tasks import AsyncAgent, AsyncOptions, LongTaskWorkflowOptions


class AsyncAgentStack(Stack):
    """One :class:`AsyncAgent`: ``default`` tasks on the queue, ``long`` ones in a LongTaskWorkflow and
    ``reviewed`` ones in an ApprovalWorkflow."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: AgentFunctionOptions | None = None,
        api: AgentApiOptions | None = None,
        options: AsyncOptions | None = None,
        long_tasks: LongTaskWorkflowOptions | None = None,
        approvals: ApprovalOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, description="agentrail: async agent (SQS workers, Step Functions long tasks)", **kwargs)
        Tags.of(self).add("agentrail:pattern", "async")
        self.agent = AsyncAgent(
            self,
            "AsyncAgent",
            function=function,
            api=api,
            options=options,
            long_tasks=long_tasks or LongTaskWorkflowOptions(),
            approvals=approvals or ApprovalOptions(),
        )
        CfnOutput(self, "ApiUrl", value=self.agent.url)
        CfnOutput(self, "TaskTableName", value=self.agent.task_table.table.table_name)
        CfnOutput(self, "TaskQueueUrl", value=self.agent.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.agent.dead_letter_queue.queue_url)
