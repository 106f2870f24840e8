"""The shadow worker: one sampled request per SQS message, replayed on the candidate through the ``shadow`` alias,
and both answers stored in the comparison table once per request id."""

from __future__ import annotations

import json
from typing import Any

from botocore.config import Config
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentrail_runtime import aws
from agentrail_runtime.contract import SHADOW_ENV_PREFIX
from agentrail_runtime.observability import logger
from agentrail_runtime.shadow.comparisons import ComparisonStore
from agentrail_runtime.shadow.models import SHADOW_EVENT_KEY, RunSummary, ShadowRequest

#: The candidate may run as long as a Lambda can (15 minutes): a read that timed out earlier would be retried, and the
#: candidate run again for nothing.
INVOKE_CONFIG = Config(read_timeout=900, connect_timeout=5)


class ShadowWorkerSettings(BaseSettings):
    """What the construct sets on the worker (``contract.SHADOW_FUNCTION_ENV``, ``SHADOW_TABLE_ENV`` and
    ``SHADOW_RETENTION_DAYS_ENV``)."""

    model_config = SettingsConfigDict(env_prefix=SHADOW_ENV_PREFIX, extra="ignore", frozen=True)

    #: The candidate: the agent function's ``shadow`` alias (name or ARN).
    function: str
    #: The comparison table.
    table: str
    retention_days: int = Field(default=14, ge=1)
    #: ``AGENT_STORE_REDACTED`` (the agent's, which the worker's options copy): comparisons are stored redacted.
    store_redacted: bool = Field(default=False, validation_alias="AGENT_STORE_REDACTED")


class CandidateFailed(Exception):
    """The candidate's invocation ended in a function error: the message is retried, then dead-lettered."""


class ShadowOutcome(BaseModel):
    request_id: str
    written: bool


class ShadowWorker:
    """Replays sampled requests on the candidate.

    Parameters
    ----------
    function:
        The candidate (the ``shadow`` alias).
    store:
        The comparison table.
    lambda_client:
        Default: a client with the runtime's retry configuration.

    Delivery is at least once: the comparison is written with a put conditional on its request id, so a redelivered
    message (an SQS duplicate, or a retry after a crash that followed the write) runs the candidate again but stores
    nothing more: the first comparison stays.
    """

    lambda_client = aws.LazyClient("lambda", config=INVOKE_CONFIG)

    def __init__(self, *, function: str, store: ComparisonStore, lambda_client: Any | None = None) -> None:
        self.function = function
        self.store = store
        if lambda_client is not None:
            self.lambda_client = lambda_client

    @classmethod
    def from_settings(cls, settings: ShadowWorkerSettings | None = None) -> ShadowWorker:
        settings = settings or ShadowWorkerSettings()  # type: ignore[call-arg]
        store = ComparisonStore(settings.table, retention_days=settings.retention_days, store_redacted=settings.store_redacted)
        return cls(function=settings.function, store=store)

    def process(self, request: ShadowRequest) -> ShadowOutcome:
        """Run ``request`` on the candidate and store the comparison, unless its request id has one (``written``
        False then).

        Raises
        ------
        CandidateFailed
            When the candidate's invocation fails (the message is retried).
        """
        candidate = self.invoke(request)
        written = self.store.put_once(request, candidate)
        logger.info("shadow compared", extra={"event": "shadow_compared", "request_id": request.request_id, "written": written})
        return ShadowOutcome(request_id=request.request_id, written=written)

    def invoke(self, request: ShadowRequest) -> RunSummary:
        response = self.lambda_client.invoke(
            FunctionName=self.function,
            InvocationType="RequestResponse",
            Payload=json.dumps({SHADOW_EVENT_KEY: request.model_dump(mode="json")}).encode(),
        )
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            raise CandidateFailed(f"{self.function}: {payload[:500].decode(errors='replace')}")
        return RunSummary.model_validate_json(payload)


__all__ = ["INVOKE_CONFIG", "CandidateFailed", "ShadowOutcome", "ShadowWorker", "ShadowWorkerSettings"]
