"""The stateful (session) pattern as a deployable stack."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.renames import renamed_keywords
from agentrail_constructs.sessions import SessionOptions, SessionTableOptions, StatefulAgent
from agentrail_constructs.stacks.pattern import PatternStack
from agentrail_constructs.streaming import StreamingOptions


class StatefulAgentStack(PatternStack):
    """One :class:`StatefulAgent` with its SessionTable; with ``streaming_options``, its WebSocket API too (output
    ``StreamUrl``)."""

    @renamed_keywords(
        function="function_options", api="api_options", sessions="session_options", table_options="session_table_options"
    )
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_options: AgentFunctionOptions | None = None,
        api_options: AgentApiOptions | None = None,
        session_options: SessionOptions | None = None,
        session_table_options: SessionTableOptions | None = None,
        streaming_options: StreamingOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, pattern="stateful", summary="stateful agent (sessions in DynamoDB)", **kwargs)
        self.agent = StatefulAgent(
            self,
            "StatefulAgent",
            function_options=function_options,
            api_options=api_options,
            session_options=session_options,
            session_table_options=session_table_options,
            streaming_options=streaming_options,
        )
        self.add_outputs(ApiUrl=self.agent.url, SessionTableName=self.agent.table.table_name)
        if self.agent.streaming is not None:
            self.add_outputs(StreamUrl=self.agent.streaming.url)
        shadow = self.agent.agent_function.shadow
        if shadow is not None:  # what `agentrail shadow report --stack` reads
            self.add_outputs(ShadowTableName=shadow.table.table_name)
        self.add_budgets()
        self.add_monitoring()
