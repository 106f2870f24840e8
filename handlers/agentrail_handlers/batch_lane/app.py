"""The batch lane's tick: an EventBridge schedule invokes this every ``check_every``. It collects the Bedrock batch
jobs that ended (each task finished, with its event and webhook), then flushes waiting tasks into new jobs."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from agentrail_runtime.observability import observed
from agentrail_runtime.tasks.batch_lane import BatchLane

lane = BatchLane.from_environment()


@observed()
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return lane.tick().as_dict()
