"""StatelessAgent: API Gateway (REST) to one AgentFunction. Every request is a whole task."""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from agentrail_constructs.api import AgentApi, AgentApiOptions
from agentrail_constructs.budgets import BudgetOptions, DailyBudgets, budgets_for
from agentrail_constructs.erasure import ErasureOptions, serve_erasure
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions
from agentrail_constructs.renames import check_exclusive, renamed_keywords
from agentrail_constructs.request_models import request_model
from agentrail_constructs.response_cache import ResponseCache, ResponseCacheOptions
from agentrail_constructs.sources import handler_dir


class StatelessAgent(Construct):
    """A stateless agent behind a REST API.

    Routes: ``POST /invoke`` (body validated by API Gateway and again by the
    handler), ``POST /erase`` (a caller's budget counters and shadow comparisons), ``GET /health`` and
    ``GET /openapi.json``, all authenticated.

    Parameters
    ----------
    function_options:
        Options of a new AgentFunction. Default: ``AgentFunctionOptions()`` (local model, demo agent).
    existing_function:
        Your AgentFunction running the stateless handler (the construct, not an ``IFunction``: the routes go to
        its ``live`` alias and ``GET /health`` reads its dependency checks). Not with ``function_options``.
    api_options:
        Options of the REST API. Default: ``AgentApiOptions()`` (IAM auth, v1 stage).
    existing_rest_api:
        Your REST API to add the routes to (see :class:`AgentApi`). Default: a new one.
    budget_options:
        Daily token or USD budgets per tenant and per agent, with a new counters table (see :class:`BudgetOptions`).
        Default: none.
    existing_budgets:
        Your :class:`DailyBudgets` (shared with other patterns). Not with ``budget_options``. Default: none.
    erasure_options:
        Who may erase another principal's data through ``POST /erase`` (see :class:`ErasureOptions`). Default:
        ``ErasureOptions()`` (callers erase their own data; the Cognito group ``operators`` anyone's).
    response_cache_options:
        Answer repeated questions from a new response cache table (see :class:`ResponseCacheOptions`); the agent's
        every tool must be ``cacheable=True``, or the synth fails naming the tool. Default: none.
    existing_response_cache:
        Your :class:`ResponseCache` (one table shared by several agents). Not with ``response_cache_options``.
        Default: none.

    Attributes
    ----------
    agent_function, function, alias, api, rest_api, budgets (None without budgets), response_cache (None without one)
    """

    @renamed_keywords(function="function_options", api="api_options")
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_options: AgentFunctionOptions | None = None,
        existing_function: AgentFunction | None = None,
        api_options: AgentApiOptions | None = None,
        existing_rest_api: apigw.RestApi | None = None,
        budget_options: BudgetOptions | None = None,
        existing_budgets: DailyBudgets | None = None,
        erasure_options: ErasureOptions | None = None,
        response_cache_options: ResponseCacheOptions | None = None,
        existing_response_cache: ResponseCache | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        check_exclusive(existing_function, function_options, "existing_function", "function_options")
        check_exclusive(existing_response_cache, response_cache_options, "existing_response_cache", "response_cache_options")
        self.agent_function = existing_function or AgentFunction(
            self, "Agent", handler_code=handler_dir("stateless"), options=function_options
        )
        self.function = self.agent_function.function
        self.alias = self.agent_function.alias
        self.api = AgentApi(
            self, "Api", options=api_options, existing_rest_api=existing_rest_api, description="agentrail stateless agent"
        )
        self.api.serve_with(self.agent_function)
        self.rest_api = self.api.rest_api
        self.api.add_function_route(
            "/invoke", "POST", self.alias, request_schema=request_model("InvokeRequest"), operation_name="Invoke"
        )
        serve_erasure(self.api, self.agent_function, self.alias, erasure_options or ErasureOptions())
        self.api.add_operational_routes(self.alias)
        self.budgets = budgets_for(self, budget_options=budget_options, existing_budgets=existing_budgets)
        self.response_cache = existing_response_cache or (
            ResponseCache(self, "ResponseCache", options=response_cache_options) if response_cache_options else None
        )
        if self.response_cache is not None:
            self.response_cache.serve(self.agent_function)

    @property
    def url(self) -> str:
        return self.api.url
