"""Model-call retries on botocore's standard policy: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from agentrail_runtime.models.retry import Retrier, RetryState


def client_error(code: str, status: int) -> ClientError:
    """A ClientError shaped as botocore parses an AWS error response."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} from the service"},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0},
        },
        "Converse",
    )


class Flaky:
    """Raises the given errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def retrier(
    delays: list[float], *, max_attempts: int = 4, max_backoff: float = 20.0, rand: Callable[[], float] = lambda: 1.0
) -> Retrier:
    return Retrier(max_attempts=max_attempts, max_backoff=max_backoff, sleep=delays.append, rand=rand)


def test_throttling_is_retried_with_delays_that_double_from_one_second_up_to_the_cap():
    delays: list[float] = []
    call = Flaky(*(client_error("ThrottlingException", 429) for _ in range(4)))

    result = retrier(delays, max_attempts=5, max_backoff=3.0).call(call, what="test")

    assert result == "ok"
    assert call.calls == 5
    assert delays == [1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("code", "status"), [("InternalServerException", 500), ("ServiceUnavailableException", 503), ("ModelNotReadyException", 429)]
)
def test_server_errors_are_retried_with_growing_capped_delays(code, status):
    delays: list[float] = []
    call = Flaky(*(client_error(code, status) for _ in range(4)))

    result = retrier(delays, max_attempts=5, max_backoff=0.15).call(call, what="test")

    assert result == "ok"
    assert delays == sorted(delays)
    assert delays[-1] == delays[-2] == 0.15


def test_server_errors_back_off_from_fifty_milliseconds():
    delays: list[float] = []

    retrier(delays).call(
        Flaky(client_error("InternalServerException", 500), client_error("InternalServerException", 500)), what="test"
    )

    assert delays == pytest.approx([0.05, 0.1])


def test_delays_are_jittered_by_the_random_factor():
    delays: list[float] = []
    call = Flaky(client_error("ThrottlingException", 400), client_error("ThrottlingException", 400))

    retrier(delays, rand=lambda: 0.25).call(call, what="test")

    assert delays == [0.25, 0.5]


def test_the_last_error_is_raised_after_max_attempts():
    delays: list[float] = []
    call = Flaky(*(client_error("ThrottlingException", 429) for _ in range(10)))
    state = RetryState()

    with pytest.raises(ClientError) as raised:
        retrier(delays, max_attempts=3).call(call, what="test", state=state)

    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert call.calls == state.attempts == 3
    assert len(delays) == 2


@pytest.mark.parametrize(
    ("code", "status"), [("ValidationException", 400), ("AccessDeniedException", 403), ("ResourceNotFoundException", 404)]
)
def test_rejected_requests_are_not_retried(code, status):
    delays: list[float] = []
    call = Flaky(client_error(code, status))
    state = RetryState()

    with pytest.raises(ClientError):
        retrier(delays).call(call, what="test", state=state)

    assert (call.calls, delays, state.attempts) == (1, [], 1)


def test_a_lost_connection_is_retried():
    delays: list[float] = []
    call = Flaky(EndpointConnectionError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"))

    assert retrier(delays).call(call, what="test") == "ok"
    assert call.calls == 2


def test_errors_that_are_not_from_aws_or_http_are_raised_at_once():
    delays: list[float] = []
    call = Flaky(KeyError("bug in our code"))

    with pytest.raises(KeyError):
        retrier(delays).call(call, what="test")

    assert (call.calls, delays) == (1, [])


def test_each_retry_is_logged_with_the_error_code_and_delay(stdout_records):
    delays: list[Any] = []

    retrier(delays).call(Flaky(client_error("ThrottlingException", 429)), what="bedrock:Converse")

    [line] = [r for r in stdout_records() if r.get("event") == "model_retry"]
    assert (line["level"], line["call"], line["attempt"], line["error_code"], line["delay_seconds"]) == (
        "WARNING",
        "bedrock:Converse",
        1,
        "ThrottlingException",
        1.0,
    )
