"""The live side: pick a deterministic sample of requests and copy them to the shadow queue before returning."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentrail_runtime import aws
from agentrail_runtime.contract import SHADOW_ENV_PREFIX
from agentrail_runtime.observability import logger, metrics
from agentrail_runtime.shadow.models import RunSummary, ShadowRequest

if TYPE_CHECKING:
    from agentrail_runtime.agent.loop import AgentResult
    from agentrail_runtime.shadow.comparisons import ComparisonStore

#: Counted when a sampled request could not be copied to the shadow queue (the user's answer is unaffected).
SHADOW_SEND_FAILED = "ShadowSendFailed"
#: Counted for every request copied to the shadow queue.
SHADOW_SAMPLED = "ShadowSampled"
#: One attempt with short timeouts: the copy is best effort, the user's answer must not wait for retries.
SEND_CONFIG: dict[str, Any] = {
    "connect_timeout": 1,
    "read_timeout": 1,
    "retries": {"max_attempts": 1, "mode": "standard"},
}  # botocore Config keyword arguments: building the Config waits for the first client (cold start)


class ShadowSettings(BaseSettings):
    """``AGENT_SHADOW_QUEUE_URL``, ``AGENT_SHADOW_PERCENT`` and ``AGENT_SHADOW_TABLE`` (``contract.SHADOW_QUEUE_URL_ENV``,
    ``SHADOW_PERCENT_ENV`` and ``SHADOW_TABLE_ENV``), set by the construct when shadow is on."""

    model_config = SettingsConfigDict(env_prefix=SHADOW_ENV_PREFIX, extra="ignore", frozen=True)

    queue_url: str | None = None
    percent: float = Field(default=0.0, ge=0, le=100)
    #: The comparison table, whose comparisons of a principal's requests ``POST /erase`` deletes.
    table: str | None = None


def erasable_comparisons(settings: ShadowSettings | None = None) -> ComparisonStore | None:
    """The comparison table a live function erases a principal's comparisons from when it serves ``POST /erase``
    (``AGENT_SHADOW_TABLE``); None without shadow. Its module is loaded only then."""
    settings = settings or ShadowSettings()
    if settings.table is None:
        return None
    from agentrail_runtime.shadow.comparisons import ComparisonStore

    return ComparisonStore(settings.table)


def sampled(request_id: str, percent: float) -> bool:
    """Whether ``request_id`` is in the ``percent`` sample: a hash of the id, so the same request is always in or
    always out (a retry of a sampled request is sampled again, and the comparison table keeps the first)."""
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    bucket = int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=8).digest(), "big") % 10_000
    return bucket < percent * 100


class ShadowSampler:
    """Copies a sample of live requests to the shadow queue.

    Parameters
    ----------
    queue_url:
        The shadow queue; None turns the sampler off.
    percent:
        Share of requests sampled, 0 to 100.
    sqs:
        An SQS client. Default: one with a single attempt and 1 s timeouts.

    :meth:`offer` never raises: a failed send is logged and counted (``ShadowSendFailed``), and the live answer goes
    out as it would have without the shadow.
    """

    sqs = aws.LazyClient("sqs", config=SEND_CONFIG)

    def __init__(self, *, queue_url: str | None, percent: float, sqs: Any | None = None) -> None:
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be between 0 and 100, got {percent}")
        self.queue_url = queue_url
        self.percent = percent if queue_url else 0.0
        if sqs is not None:
            self.sqs = sqs

    @classmethod
    def from_settings(cls, settings: ShadowSettings | None = None) -> ShadowSampler:
        settings = settings or ShadowSettings()
        return cls(queue_url=settings.queue_url, percent=settings.percent)

    def wants(self, request_id: str) -> bool:
        return sampled(request_id, self.percent)

    def offer(self, request_id: str, build: Callable[[], ShadowRequest]) -> bool:
        """When ``request_id`` is in the sample, send what ``build`` makes (called only then) to the shadow queue;
        True when it was sent. Never raises."""
        if not self.wants(request_id):
            return False
        try:
            body = build().model_dump_json(exclude_none=True)
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
        except Exception as error:  # the shadow must never change the user's answer
            logger.warning(
                "shadow copy failed",
                extra={"event": "shadow_send_failed", "request_id": request_id, "error": type(error).__name__},
            )
            metrics.add_metric(name=SHADOW_SEND_FAILED, unit=MetricUnit.Count, value=1)
            return False
        metrics.add_metric(name=SHADOW_SAMPLED, unit=MetricUnit.Count, value=1)
        return True

    def offer_run(
        self,
        request_id: str,
        result: AgentResult,
        *,
        message: str,
        model: str | None,
        agent_version: str,
        session_id: str | None = None,
        owner: str | None = None,
        turn: int | None = None,
    ) -> bool:
        """:meth:`offer` the live run ``result`` of ``message``, sent by ``owner`` (the caller; erasing it deletes the
        comparison): a session turn when ``session_id`` is given (``owner`` is then the session's, and with the live
        ``turn`` number the candidate reads the history that turn saw), else an invocation. True when it was sent.
        Never raises."""
        return self.offer(
            request_id,
            lambda: ShadowRequest(
                request_id=request_id,
                kind="invoke" if session_id is None else "session_turn",
                message=message,
                model=model,
                session_id=session_id,
                owner=owner,
                turn=turn,
                live=RunSummary.of(result, agent_version=agent_version),
            ),
        )


__all__ = [
    "SEND_CONFIG",
    "SHADOW_SAMPLED",
    "SHADOW_SEND_FAILED",
    "ShadowSampler",
    "ShadowSettings",
    "erasable_comparisons",
    "sampled",
]
