"""Multi-agent specialist: answers what the router (or a peer) handed it, or hands it on within the hop limit."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import idempotent_function

from agentrail_runtime.config import load_settings
from agentrail_runtime.delivery import batch_handler, final_delivery, once_per
from agentrail_runtime.multiagent import RoutedMessage, Specialist, load_multi_settings
from agentrail_runtime.multiagent.settings import team_from_settings
from agentrail_runtime.tasks import TaskService
from agentrail_runtime.tasks.settings import load_task_settings

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
def answer(message: dict, final_attempt: bool, redelivered: bool = False) -> dict:
    routed = RoutedMessage.model_validate(message)
    with tasks.attempt(routed.task_id, final_attempt=final_attempt):
        outcome = specialist.handle(routed, redelivered=redelivered)
    return {"task_id": routed.task_id, "outcome": outcome.kind if outcome else "handed_off_or_skipped"}


def record_handler(record: SQSRecord) -> dict:
    message = RoutedMessage.model_validate_json(record.body)
    return answer(
        message=message.model_dump(),
        final_attempt=final_delivery(record, settings.max_receive_count),
        # A first delivery trusts the spend the hand-off carried; a later one reads the task again.
        redelivered=int(record.attributes.approximate_receive_count or 1) > 1,
    )


handler = batch_handler(record_handler, processor, idempotency=idempotency)
