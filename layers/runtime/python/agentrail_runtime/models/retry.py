"""Retries for model calls, driven by botocore's standard retry policy.

The policy objects (which errors are retryable, jittered exponential backoff,
``x-amz-retry-after``) are botocore's own. They run around the provider call
instead of inside the HTTP layer for two reasons: one retry budget then covers
Bedrock and the OpenAI-compatible provider alike, and every retry is visible to
the agent loop's logs and to botocore's ``Stubber`` in tests. The Bedrock client
itself is created with a single attempt so that no call is retried twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from botocore.retries import standard

from agentrail_runtime.observability import logger

T = TypeVar("T")

# Bedrock reports these as modeled errors; they are transient for an agent.
_EXTRA_TRANSIENT_CODES = (
    "ModelNotReadyException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelTimeoutException",
)


class RetryState:
    """What the retry loop saw: the attempts made (a provider's error message reports them)."""

    def __init__(self) -> None:
        self.attempts = 0


def _policy(max_attempts: int, max_backoff: float, rand: Callable[[], float]) -> standard.RetryPolicy:
    transient = standard.TransientRetryableChecker(
        # botocore's own list, extended; a private attribute, so its stubs leave it out.
        transient_error_codes=[*standard.TransientRetryableChecker._TRANSIENT_ERROR_CODES, *_EXTRA_TRANSIENT_CODES]  # type: ignore[attr-defined]
    )
    checker = standard.OrRetryChecker(
        [
            transient,
            standard.ThrottledRetryableChecker(),
            standard.ThrottlingStatusCodeChecker(),  # type: ignore[attr-defined]  # in the botocore of boto3 1.44; botocore-stubs 1.43 lacks it
            standard.ModeledRetryableChecker(),
        ]
    )
    return standard.RetryPolicy(
        retry_checker=_AndMaxAttempts(standard.MaxAttemptsChecker(max_attempts), checker),
        # Without a throttling detector botocore scales every delay from 50 ms; throttling needs its 1 s base.
        retry_backoff=standard.ExponentialBackoff(
            max_backoff=max_backoff,  # type: ignore[arg-type]  # botocore computes min(max_backoff, delay): a float works; the stubs say int
            random=rand,
            throttling_detector=standard.ThrottlingErrorDetector(standard.RetryEventAdapter()),
        ),
    )


class _AndMaxAttempts(standard.BaseRetryableChecker):
    def __init__(self, max_attempts: standard.MaxAttemptsChecker, checker: standard.BaseRetryableChecker) -> None:
        self._max_attempts = max_attempts
        self._checker = checker

    def is_retryable(self, context: standard.RetryContext) -> bool:
        return self._max_attempts.is_retryable(context) and self._checker.is_retryable(context)


def http_response(status_code: int, headers: Mapping[str, str] | None = None) -> AWSResponse:
    """An ``AWSResponse`` carrying only what the retry checkers read."""
    # The checkers only .get() headers; a dict keeps them as the caller gave them (the stubs want botocore's HTTPHeaders).
    return AWSResponse(url="", status_code=status_code, headers=dict(headers or {}), raw=None)  # type: ignore[arg-type]


def context_from_exception(exc: BaseException, attempt: int, operation_model: Any = None) -> standard.RetryContext | None:
    """Describe a failed attempt for botocore's checkers, or ``None`` if it is not an AWS/HTTP failure."""
    if isinstance(exc, ClientError):
        meta = exc.response.get("ResponseMetadata", {})
        return standard.RetryContext(
            attempt_number=attempt,
            operation_model=operation_model,
            parsed_response=exc.response,
            http_response=http_response(meta.get("HTTPStatusCode", 400), meta.get("HTTPHeaders")),
        )
    if isinstance(exc, ConnectionError | HTTPClientError):
        return standard.RetryContext(attempt_number=attempt, caught_exception=exc)
    return None


class Retrier:
    """Call a function, retrying what botocore's standard policy deems retryable.

    Parameters
    ----------
    max_attempts:
        Attempts in total, the first included. Default: 4.
    max_backoff:
        Cap on one delay, in seconds. Default: 20.
    classify:
        Turns an exception into a botocore ``RetryContext`` (or ``None`` to give up at once).
    sleep, rand:
        Injected for tests.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 4,
        max_backoff: float = 20.0,
        classify: Callable[[BaseException, int], standard.RetryContext | None] = context_from_exception,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._policy = _policy(max_attempts, max_backoff, rand)
        self._classify = classify
        self._sleep = sleep

    def call(
        self,
        fn: Callable[[], T],
        *,
        what: str,
        state: RetryState | None = None,
        classify: Callable[[BaseException, int], standard.RetryContext | None] | None = None,
    ) -> T:
        """Call ``fn`` until it succeeds or the policy gives up; the last error is re-raised."""
        state = state or RetryState()
        classify = classify or self._classify
        attempt = 1
        while True:
            state.attempts = attempt
            try:
                return fn()
            except Exception as exc:
                context = classify(exc, attempt)
                if context is None:
                    raise
                if not self._policy.should_retry(context):
                    raise
                delay = self._policy.compute_retry_delay(context)
                logger.warning(
                    "retrying model call",
                    extra={
                        "event": "model_retry",
                        "call": what,
                        "attempt": attempt,
                        "error_code": context.get_error_code(),
                        "delay_seconds": round(delay, 3),
                    },
                )
                self._sleep(delay)
                attempt += 1
