"""The async pattern (queue workers and long-task workflows) as a deployable stack."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.approvals import ApprovalOptions
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.stacks.pattern import PatternStack
from agentrail_constructs.tasks import AsyncAgent, AsyncOptions, LongTaskWorkflowOptions


class AsyncAgentStack(PatternStack):
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
        super().__init__(
            scope, construct_id, pattern="async", summary="async agent (SQS workers, Step Functions long tasks)", **kwargs
        )
        self.agent = AsyncAgent(
            self,
            "AsyncAgent",
            function=function,
            api=api,
            options=options,
            long_tasks=long_tasks or LongTaskWorkflowOptions(),
            approvals=approvals or ApprovalOptions(),
        )
        self.add_outputs(
            ApiUrl=self.agent.url,
            TaskTableName=self.agent.task_table.table.table_name,
            TaskQueueUrl=self.agent.queue.queue_url,
            DeadLetterQueueUrl=self.agent.dead_letter_queue.queue_url,
        )
