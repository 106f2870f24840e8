"""Long tasks and approval pauses: the Lambda behind every Step Functions task of the workflow."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.approvals import ApprovalService
from agentrail_runtime.config import load_settings
from agentrail_runtime.observability import observed
from agentrail_runtime.tasks import TaskService
from agentrail_runtime.tasks.settings import load_task_settings
from agentrail_runtime.workflows import LongTaskSteps

settings = load_task_settings()
tasks = TaskService.from_settings(settings, load_settings())
steps = LongTaskSteps(tasks, slice_steps=settings.slice_steps, approvals=ApprovalService.from_environment())


@observed("correlation_id")
def handler(event: dict, context: LambdaContext) -> dict:
    return steps.handle(event)
