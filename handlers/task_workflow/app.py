"""Long tasks: the Lambda behind every step of the Step Functions workflow (start, step, fail)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail.config import load_settings
from agentrail.observability import logger, metrics, tracer
from agentrail.tasks import LongTaskSteps, TaskService
from agentrail.tasks.settings import load_task_settings

settings = load_task_settings()
steps = LongTaskSteps(TaskService.from_settings(settings, load_settings()), slice_steps=settings.slice_steps)


@logger.inject_lambda_context(correlation_id_path="correlation_id")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context: LambdaContext) -> dict:
    return steps.handle(event)
