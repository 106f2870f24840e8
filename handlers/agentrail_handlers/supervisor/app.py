"""Hierarchical agents: the Lambda behind every state of the supervisor/worker workflow."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.config import load_settings
from agentrail_runtime.multiagent import SUPERVISOR_DEFINITION, SpendLimit, SupervisorSteps, load_multi_settings
from agentrail_runtime.observability import observed
from agentrail_runtime.service import AgentService
from agentrail_runtime.tasks import TaskService
from agentrail_runtime.tasks.settings import load_task_settings

runtime, multi = load_settings(), load_multi_settings()
tasks = TaskService.from_settings(load_task_settings(), runtime)  # its agent is the worker (AGENT_DEFINITION)
steps = SupervisorSteps(
    tasks,
    supervisor=AgentService(definition=SUPERVISOR_DEFINITION, settings=runtime),
    worker=tasks.agents,
    spend_limit=SpendLimit(max_tokens=multi.max_task_tokens, max_usd=multi.max_task_usd),
    max_review_rounds=multi.max_review_rounds,
    tolerated_failure_percentage=multi.tolerated_failure_percentage,
)


@observed("correlation_id")
def handler(event: dict, context: LambdaContext) -> dict:
    return steps.handle(event)
