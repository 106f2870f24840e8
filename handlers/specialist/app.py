"""Multi-agent specialist: answers what the router (or a peer) handed it, or hands it on within the hop limit."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail.config import load_settings
from agentrail.multiagent import RoutedMessage, Specialist, load_multi_settings
from agentrail.multiagent.settings import team_from_settings
from agentrail.observability import logger, metrics, tracer
from agentrail.tasks import TaskService
from agentrail.tasks.delivery import final_delivery, once_per
from agentrail.tasks.settings import load_task_settings

settings, multi = load_task_settings(), load_multi_settings()
tasks = TaskService.from_settings(settings, load_settings())
specialist = Specialist(
    team_from_settings(multi, tasks),
    tasks.agents,
    name=multi.agent_name,
    handoffs=multi.handoffs,
)
processor = BatchProcessor(event_type=EventType.SQS)
# One side effect per (task, hop): a redelivered hand-off is not answered twice.
idempotency, persistence = once_per("[task_id, hop]", settings.idempotency_table)


@idempotent_function(data_keyword_argument="message", config=idempotency, persistence_store=persistence)
def answer(message: dict, final_attempt: bool) -> dict:
    routed = RoutedMessage.model_validate(message)
    with tasks.attempt(routed.task_id, final_attempt=final_attempt):
        outcome = specialist.handle(routed)
    return {"task_id": routed.task_id, "outcome": outcome.kind if outcome else "handed_off_or_skipped"}


def record_handler(record: SQSRecord) -> dict:
    message = RoutedMessage.model_validate_json(record.body)
    return answer(message=message.model_dump(), final_attempt=final_delivery(record, settings.max_receive_count))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context: LambdaContext) -> dict:
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
