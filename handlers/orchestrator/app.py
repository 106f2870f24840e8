"""Multi-agent orchestrator: completes each routed task from its specialist's outcome (status, result, event)."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from agentrail.config import load_settings
from agentrail.delivery import batch_handler
from agentrail.multiagent import AgentOutcome, Orchestrator, Router
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


handler = batch_handler(record_handler, processor)
