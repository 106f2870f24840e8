"""Stateful agent: API Gateway REST to sessions and turns stored in DynamoDB."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.api.sessions import create_sessions_app
from agentrail_runtime.observability import observed

app = create_sessions_app()


@observed(correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
