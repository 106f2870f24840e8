"""Async agent API: POST /tasks (202), GET /tasks/{id}, DELETE /tasks/{id}."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail.api.tasks import create_tasks_app
from agentrail.observability import logger, metrics, tracer

app = create_tasks_app()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
