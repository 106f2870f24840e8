"""Multi-agent orchestrator: completes each routed task from its specialist's outcome (status, result, event)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail.config import load_settings
from agentrail.multiagent import AgentOutcome, Orchestrator, Router
from agentrail.observability import logger, metrics, tracer
from agentrail.service import AgentService
from agentrail.tasks import TaskService
from agentrail.tasks.settings import load_task_settings

runtime = load_settings()
# The orchestrator runs no agent: the router's definition is the cheapest to hold (no tool modules to import).
orchestrator = Orchestrator(
    TaskService.from_settings(load_task_settings(), runtime, agents=AgentService(definition=Router.definition(), settings=runtime))
)
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    # Completing is a conditional write: a duplicate outcome finds the task finished and changes nothing.
    orchestrator.complete(AgentOutcome.model_validate_json(record.body))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
