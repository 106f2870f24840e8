"""Multi-agent router: classifies each task from the system's queue and hands it to one specialist."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import idempotent_function

from agentrail_runtime.config import load_settings
from agentrail_runtime.delivery import batch_handler, final_delivery, once_per
from agentrail_runtime.multiagent import Router, load_multi_settings
from agentrail_runtime.multiagent.settings import team_from_settings
from agentrail_runtime.service import AgentService
from agentrail_runtime.tasks import TaskMessage, TaskService
from agentrail_runtime.tasks.settings import load_task_settings

settings, multi, runtime = load_task_settings(), load_multi_settings(), load_settings()
tasks = TaskService.from_settings(settings, runtime, agents=AgentService(definition=Router.definition(), settings=runtime))
router = Router(team_from_settings(multi, tasks), tasks.agents, fallback=multi.fallback)
processor = BatchProcessor(event_type=EventType.SQS)
idempotency, persistence = once_per("task_id", settings.idempotency_table)


@idempotent_function(data_keyword_argument="message", config=idempotency, persistence_store=persistence)
def route(message: dict, final_attempt: bool) -> dict:
    with tasks.attempt(message["task_id"], final_attempt=final_attempt):
        return {"task_id": message["task_id"], "specialist": router.route(message["task_id"])}


def record_handler(record: SQSRecord) -> dict:
    message = TaskMessage.model_validate_json(record.body)
    return route(message=message.model_dump(), final_attempt=final_delivery(record, settings.max_receive_count))


handler = batch_handler(record_handler, processor, idempotency=idempotency)
