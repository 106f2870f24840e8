"""Stateless agent: API Gateway REST (proxy integration) to the agent loop."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.api.stateless import create_stateless_app
from agentrail_runtime.observability import observed

app = create_stateless_app()


@observed(correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
