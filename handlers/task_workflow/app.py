"""Long tasks and approval pauses: the Lambda behind every Step Functions task of the workflow."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail.approvals import ApprovalService
from agentrail.config import load_settings
from agentrail.observability import logger, metrics, tracer
from agentrail.tasks import LongTaskSteps, TaskService
from agentrail.tasks.settings import load_task_settings

settings = load_task_settings()
tasks = TaskService.from_settings(settings, load_settings())
steps = LongTaskSteps(tasks, slice_steps=settings.slice_steps, approvals=ApprovalService.from_environment(tasks))


@logger.inject_lambda_context(correlation_id_path="correlation_id")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context: LambdaContext) -> dict:
    return steps.handle(event)
