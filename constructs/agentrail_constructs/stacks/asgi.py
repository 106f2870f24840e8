"""The ASGI pattern as a deployable stack: the FastAPI example agent, unless told another app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from constructs import Construct

from agentrail_constructs.api import AgentApiOptions
from agentrail_constructs.asgi import AsgiAgent
from agentrail_constructs.function import AgentFunctionOptions
from agentrail_constructs.stacks.pattern import PatternStack

#: The example agent (``examples/fastapi_agent`` of the CDK app's folder), what ``-c patterns=asgi`` deploys by default.
EXAMPLE_APP = "fastapi_agent.main:app"
EXAMPLE_CODE = Path("examples") / "fastapi_agent"


class AsgiAgentStack(PatternStack):
    """One :class:`AsgiAgent`, tagged with the pattern name.

    Parameters
    ----------
    app:
        ``module:attribute`` of the ASGI app (``-c asgi_app=...``). Default: ``fastapi_agent.main:app``.
    code:
        Its folder (``-c asgi_code=...``). Default: ``examples/fastapi_agent`` in the CDK app's folder.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        app: str = EXAMPLE_APP,
        code: str | Path | None = None,
        function_options: AgentFunctionOptions | None = None,
        api_options: AgentApiOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope, construct_id, pattern="asgi", summary="ASGI agent (API Gateway to a FastAPI app through mangum)", **kwargs
        )
        folder = Path(code) if code is not None else Path.cwd() / EXAMPLE_CODE
        if code is None and not folder.is_dir():
            raise ValueError(
                f"the asgi pattern deploys the example agent from {EXAMPLE_CODE}/ of the CDK app's folder, and "
                f"{Path.cwd()} has none: pass -c asgi_app=<module:app> -c asgi_code=<folder>"
            )
        self.agent = AsgiAgent(
            self, "AsgiAgent", app=app, code=folder, function_options=function_options, api_options=api_options
        )
        self.add_outputs(ApiUrl=self.agent.url, FunctionName=self.agent.function.function_name)
        self.add_budgets()
        self.add_monitoring()
