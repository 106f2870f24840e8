"""Shadow worker: SQS batches of sampled live requests, each replayed on the candidate (the agent function's
``shadow`` alias) and stored beside the live answer in the comparison table; partial batch failures."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from agentrail_runtime.delivery import batch_handler
from agentrail_runtime.shadow import ShadowRequest
from agentrail_runtime.shadow.worker import ShadowWorker

worker = ShadowWorker.from_settings()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> dict:
    outcome = worker.process(ShadowRequest.model_validate_json(record.body))
    return outcome.model_dump()


handler = batch_handler(record_handler, processor)
