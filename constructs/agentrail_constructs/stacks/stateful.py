"""The stateful (session) pattern as a deployable stack."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.sessions import SessionOptions, SessionTableOptions, StatefulAgent
from agentrail_constructs.stacks.pattern import PatternStack


class StatefulAgentStack(PatternStack):
    """One :class:`StatefulAgent` with its SessionTable."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: AgentFunctionOptions | None = None,
        api: AgentApiOptions | None = None,
        sessions: SessionOptions | None = None,
        table_options: SessionTableOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, pattern="stateful", summary="stateful agent (sessions in DynamoDB)", **kwargs)
        self.agent = StatefulAgent(
            self, "StatefulAgent", function=function, api=api, sessions=sessions, table_options=table_options
        )
        self.add_outputs(ApiUrl=self.agent.url, SessionTableName=self.agent.table.table_name)
