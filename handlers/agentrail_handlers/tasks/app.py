"""Async agent API: POST /tasks (202), GET /tasks/{id}, DELETE /tasks/{id}."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.api.tasks import create_tasks_app
from agentrail_runtime.observability import observed

app = create_tasks_app()


@observed(correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
