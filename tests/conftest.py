"""Fixtures shared by every tier of the suite."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agentrail import clock as runtime_clock

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"

# No test may reach a real AWS account: fake credentials and a fixed Region,
# set before any boto3 client exists. X-Ray has no daemon outside Lambda.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "agentrail-tests",
        "POWERTOOLS_METRICS_NAMESPACE": "AgentrailTests",
    }
)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def read_event(relative: str) -> dict:
    """A shared Lambda event from ``events/`` (the same files ``sam local invoke -e`` takes)."""
    return json.loads((EVENTS_DIR / relative).read_text())


@pytest.fixture
def load_event():
    return read_event


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object that Powertools and our handlers read."""

    function_name: str = "agentrail-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:agentrail-test:live"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/agentrail-test"
    log_stream_name: str = "2026/11/28/[$LATEST]0000"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@dataclass
class FrozenClock:
    """A wall clock that moves only when the test moves it; it starts at the real time, truncated to the second."""

    now: float = field(default_factory=lambda: float(int(time.time())))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    """The runtime's clock for this test (:mod:`agentrail.clock`), frozen at the real time when the test starts.

    Installed for everything the test calls, including handlers imported before it; expiry and
    ordering are exact, and times stay relative to the day the suite runs.
    """
    with runtime_clock.use(FrozenClock()) as frozen:
        yield frozen


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """monkeypatch, named for what tests use it for: setting environment variables."""
    yield monkeypatch


class _CurrentStdout:
    """A stream that writes wherever ``sys.stdout`` points at the time of the write."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def stdout_records(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict]]]:
    """Every JSON line written to stdout since the last call: Powertools log records and EMF blobs.

    The Powertools Logger keeps the stream it was created with, while ``capsys``
    installs a new ``sys.stdout`` for every test phase; the logger's handler is
    pointed at whichever is current for the duration of the test.
    """
    from agentrail.observability import logger

    handler = logger.registered_handler
    previous, handler.stream = handler.stream, _CurrentStdout()

    def read() -> list[dict]:
        lines = capsys.readouterr().out.splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    yield read
    handler.stream = previous
