"""The handler baseline: what a developer writes by hand with Powertools for the same endpoint, without agentrail.

Same decorators in the same order as agentrail's handler, a REST resolver with
validation on, a pydantic body model in and a pydantic model out. With the
local model agentrail makes no AWS calls per request, so neither does this.
Service name and metrics namespace come from the ``POWERTOOLS_*`` variables.
"""

from typing import Annotated

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["handler"]

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)


class InvokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    message: str = Field(min_length=1, max_length=8000)
    model: str | None = Field(default=None, min_length=1, max_length=200)


class InvokeResponse(BaseModel):
    answer: str
    request_id: str


@app.post("/invoke")
def invoke(request: Annotated[InvokeRequest, Body()]) -> InvokeResponse:
    answer = f"Received {len(request.message)} characters."
    return InvokeResponse(answer=answer, request_id=app.current_event.request_context.request_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
