"""The stateful (session) pattern as a deployable stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.sessions import SessionOptions, SessionTableOptions, StatefulAgent


class StatefulAgentStack(Stack):
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
        super().__init__(scope, construct_id, description="agentrail: stateful agent (sessions in DynamoDB)", **kwargs)
        Tags.of(self).add("agentrail:pattern", "stateful")
        self.agent = StatefulAgent(
            self, "StatefulAgent", function=function, api=api, sessions=sessions, table_options=table_options
        )
        CfnOutput(self, "ApiUrl", value=self.agent.url)
        CfnOutput(self, "SessionTableName", value=self.agent.table.table_name)
