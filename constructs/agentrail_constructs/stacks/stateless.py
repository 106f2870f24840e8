"""The stateless pattern as a deployable stack."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.renames import renamed_keywords
from agentrail_constructs.response_cache import ResponseCacheOptions
from agentrail_constructs.stacks.pattern import PatternStack
from agentrail_constructs.stateless import StatelessAgent


class StatelessAgentStack(PatternStack):
    """One :class:`StatelessAgent`, tagged with the pattern name; with ``response_cache_options``, its response cache
    (see :class:`ResponseCacheOptions`), whose table's name is the ``ResponseCacheTableName`` output."""

    @renamed_keywords(function="function_options", api="api_options")
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_options: AgentFunctionOptions | None = None,
        api_options: AgentApiOptions | None = None,
        response_cache_options: ResponseCacheOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, pattern="stateless", summary="stateless agent (API Gateway to Lambda)", **kwargs)
        self.agent = StatelessAgent(
            self,
            "StatelessAgent",
            function_options=function_options,
            api_options=api_options,
            response_cache_options=response_cache_options,
        )
        self.add_outputs(ApiUrl=self.agent.url, FunctionName=self.agent.function.function_name)
        if self.agent.response_cache is not None:
            self.add_outputs(ResponseCacheTableName=self.agent.response_cache.table.table_name)
        shadow = self.agent.agent_function.shadow
        if shadow is not None:  # what `agentrail shadow report --stack` reads
            self.add_outputs(ShadowTableName=shadow.table.table_name)
        self.add_budgets()
        self.add_monitoring()
