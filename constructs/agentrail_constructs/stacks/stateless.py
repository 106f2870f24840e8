"""The stateless pattern as a deployable stack."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.stateless import StatelessAgent


class StatelessAgentStack(Stack):
    """One :class:`StatelessAgent`, tagged with the pattern name."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: AgentFunctionOptions | None = None,
        api: AgentApiOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, description="agentrail: stateless agent (API Gateway to Lambda)", **kwargs)
        Tags.of(self).add("agentrail:pattern", "stateless")
        self.agent = StatelessAgent(self, "StatelessAgent", function=function, api=api)
        CfnOutput(self, "ApiUrl", value=self.agent.url)
        CfnOutput(self, "FunctionName", value=self.agent.function.function_name)
