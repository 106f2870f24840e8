"""Multi-agent orchestrator: completes each routed task from its specialist's outcome (status, result, event)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from agentrail_runtime.config import load_settings
from agentrail_runtime.delivery import batch_handler
from agentrail_runtime.multiagent import AgentOutcome, Orchestrator, Router
from agentrail_runtime.service import AgentService
from agentrail_runtime.tasks import TaskService
from agentrail_runtime.tasks.settings import load_task_settings

runtime = load_settings()
# The orchestrator runs no agent: the router's definition is the cheapest to hold (no tool modules to import).
orchestrator = Orchestrator(
    TaskService.from_settings(
        load_task_settings(), runtime, agents=AgentService(definition=Router.definition(), settings=runtime)
    )
)
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    # Completing is a conditional write: a duplicate outcome finds the task finished and changes nothing.
    orchestrator.complete(AgentOutcome.model_validate_json(record.body))


handler = batch_handler(record_handler, processor)
