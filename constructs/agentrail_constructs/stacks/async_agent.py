"""The async pattern (queue workers and long-task workflows) as a deployable stack."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.approvals import ApprovalOptions
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.renames import renamed_keywords
from agentrail_constructs.stacks.pattern import PatternStack
from agentrail_constructs.tasks import AsyncAgent, AsyncOptions, LongTaskWorkflowOptions


class AsyncAgentStack(PatternStack):
    """One :class:`AsyncAgent`: ``default`` tasks on the queue, ``long`` ones in a LongTaskWorkflow and
    ``reviewed`` ones in an ApprovalWorkflow."""

    @renamed_keywords(
        function="function_options", api="api_options", long_tasks="long_task_options", approvals="approval_options"
    )
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_options: AgentFunctionOptions | None = None,
        api_options: AgentApiOptions | None = None,
        options: AsyncOptions | None = None,
        long_task_options: LongTaskWorkflowOptions | None = None,
        approval_options: ApprovalOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope, construct_id, pattern="async", summary="async agent (SQS workers, Step Functions long tasks)", **kwargs
        )
        approval_options = approval_options or ApprovalOptions()
        self.agent = AsyncAgent(
            self,
            "AsyncAgent",
            function_options=function_options,
            api_options=self.operator_api_options(api_options),
            options=options,
            long_task_options=long_task_options or LongTaskWorkflowOptions(),
            approval_options=approval_options,
        )
        approver_groups = (approval_options.approver_group, approval_options.escalation_group)
        self.add_console(self.agent.api, groups=[group for group in approver_groups if group])
        self.add_outputs(
            ApiUrl=self.agent.url,
            TaskTableName=self.agent.task_table.table.table_name,
            TaskQueueUrl=self.agent.queue.queue_url,
            DeadLetterQueueUrl=self.agent.dead_letter_queue.queue_url,  # type: ignore[union-attr]  # the stack brings no queue
        )
        self.add_budgets()
        self.add_monitoring()
