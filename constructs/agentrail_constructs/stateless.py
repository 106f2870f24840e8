"""StatelessAgent: API Gateway (REST) to one AgentFunction. Every request is a whole task."""

from __future__ import annotations

from constructs import Construct

from agentrail_constructs.api import AgentApi, AgentApiOptions
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions
from agentrail_constructs.request_models import request_model
from agentrail_constructs.sources import handler_dir


def check_exclusive(existing: object, options: object, existing_name: str, options_name: str) -> None:
    """Refuse an existing resource *and* options for a new one (AWS Solutions Constructs' rule)."""
    if existing is not None and options is not None:
        raise ValueError(
            f"pass either {existing_name} or {options_name}, not both: "
            f"{options_name} configures a new resource, {existing_name} reuses yours"
        )


class StatelessAgent(Construct):
    """A stateless agent behind a REST API.

    Routes: ``POST /invoke`` (body validated by API Gateway and again by the
    handler), ``GET /health`` and ``GET /openapi.json``, all authenticated.

    Parameters
    ----------
    function:
        Options of a new AgentFunction. Default: ``AgentFunctionOptions()`` (local model, demo agent).
    existing_function:
        An AgentFunction running the stateless handler. Not together with ``function``.
    api:
        Options of the REST API. Default: ``AgentApiOptions()`` (IAM auth, v1 stage).

    Attributes
    ----------
    agent_function, function, alias, api, rest_api
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: AgentFunctionOptions | None = None,
        existing_function: AgentFunction | None = None,
        api: AgentApiOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        check_exclusive(existing_function, function, "existing_function", "function")
        self.agent_function = existing_function or AgentFunction(
            self, "Agent", handler_code=handler_dir("stateless"), options=function
        )
        self.function = self.agent_function.function
        self.alias = self.agent_function.alias
        self.api = AgentApi(self, "Api", options=api, description="agentrail stateless agent")
        self.rest_api = self.api.rest_api
        self.api.add_function_route(
            "/invoke", "POST", self.alias, request_schema=request_model("InvokeRequest"), operation_name="Invoke"
        )
        self.api.add_operational_routes(self.alias)

    @property
    def url(self) -> str:
        return self.api.url
