"""ASGI agent: API Gateway (proxy integration, REST or HTTP API) to the user's ASGI app, through mangum.

``AGENT_ASGI_APP`` (``module:attribute``) names the app; it is imported at cold start from the agent code layer, so
a path that does not import fails the cold start with one message naming the variable.
"""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.asgi import asgi_handler, load_app, load_asgi_settings
from agentrail_runtime.observability import observed

settings = load_asgi_settings()
app = asgi_handler(load_app(settings.asgi_app, handler_module=__name__.rpartition(".")[2]), settings)


@observed(correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    return app(event, context)
