"""Async agent worker: SQS batches of task ids, partial batch failures, one side effect per task."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import idempotent_function

from agentrail_runtime.config import load_settings
from agentrail_runtime.delivery import batch_handler, final_delivery, once_per
from agentrail_runtime.tasks import TaskMessage, TaskService
from agentrail_runtime.tasks.settings import load_task_settings

settings = load_task_settings()
tasks = TaskService.from_settings(settings, load_settings())
processor = BatchProcessor(event_type=EventType.SQS)
# Keyed on the task id: a duplicate delivery returns the first outcome. In-progress
# records expire with the invocation's remaining time, so a crashed attempt is retried.
idempotency, persistence = once_per("task_id", settings.idempotency_table)


@idempotent_function(data_keyword_argument="message", config=idempotency, persistence_store=persistence)
def run_task(message: dict, final_attempt: bool) -> dict:
    record = tasks.run(message["task_id"], final_attempt=final_attempt)
    return {"task_id": message["task_id"], "status": record.status.value if record else "skipped"}


def record_handler(record: SQSRecord) -> dict:
    message = TaskMessage.model_validate_json(record.body)
    return run_task(message=message.model_dump(), final_attempt=final_delivery(record, settings.max_receive_count))


handler = batch_handler(record_handler, processor, idempotency=idempotency)
