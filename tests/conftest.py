"""Fixtures shared by every tier of the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agentrail_local.awslambda.workers import moved_clock_environment
from agentrail_runtime import clock as runtime_clock

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


#: Set by ``make test-time-travel``: how many days libfaketime moved the clock of this run ahead.
TIME_TRAVEL_DAYS = int(os.environ.get("AGENTRAIL_TIME_TRAVEL_DAYS") or 0)
DAY = 86_400


def clock_of_a_child(environment: dict[str, str]) -> float:
    """``time.time()`` as read by a Python child started with ``environment``."""
    read = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return float(read.stdout)


def real_clock_environment() -> dict[str, str]:
    """This process's environment without libfaketime's variables: a child started with it reads the real clock."""
    moved = moved_clock_environment(os.environ)
    return {name: value for name, value in os.environ.items() if name not in moved}


def read_real_time() -> float:
    """The real time, whatever this process's clock says."""
    return clock_of_a_child(real_clock_environment())


@pytest.fixture
def real_time() -> Callable[[], float]:
    """``real_time()``: see :func:`read_real_time`."""
    return read_real_time


@pytest.fixture(name="real_clock_environment")
def real_clock_environment_fixture() -> dict[str, str]:
    """See :func:`real_clock_environment`; without ``AGENTRAIL_TIME_TRAVEL_DAYS`` either."""
    return {name: value for name, value in real_clock_environment().items() if name != "AGENTRAIL_TIME_TRAVEL_DAYS"}


_TRAVELLED = pytest.StashKey[dict[str, float]]()


def pytest_configure(config: pytest.Config) -> None:
    # The positive control of the time-travel run: an offset that silently failed to apply would pass everything.
    if not TIME_TRAVEL_DAYS or hasattr(config, "workerinput"):
        return
    if TIME_TRAVEL_DAYS <= 365:
        pytest.exit(f"time travel must move the clock more than a year ahead, not {TIME_TRAVEL_DAYS} days", returncode=3)
    real = read_real_time()
    moved = {
        "this pytest process": time.time() - real,
        "a child started as the suite starts it": clock_of_a_child(dict(os.environ)) - real,
    }
    for who, offset in moved.items():
        if not (TIME_TRAVEL_DAYS - 1) * DAY <= offset <= (TIME_TRAVEL_DAYS + 1) * DAY:
            pytest.exit(
                f"time travel of {TIME_TRAVEL_DAYS} days asked for, but the clock of {who} is {offset / DAY:.2f} days ahead",
                returncode=3,
            )
    config.stash[_TRAVELLED] = moved


def pytest_report_header(config: pytest.Config) -> str | None:
    moved = config.stash.get(_TRAVELLED, None)
    if not moved:
        return None
    return "time travel: " + "; ".join(
        f"{who} is {offset / DAY:.2f} days ahead of the real clock" for who, offset in moved.items()
    )


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
    """The runtime's clock for this test (:mod:`agentrail_runtime.clock`), frozen at the real time when the test starts.

    Installed for everything the test calls, including handlers imported before it; expiry and
    ordering are exact, and times stay relative to the day the suite runs.
    """
    with runtime_clock.use(FrozenClock()) as frozen:
        yield frozen


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """monkeypatch, named for what tests use it for: setting environment variables."""
    return monkeypatch


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
    from agentrail_runtime.observability import logger

    handler = logger.registered_handler
    previous, handler.stream = handler.stream, _CurrentStdout()

    def read() -> list[dict]:
        lines = capsys.readouterr().out.splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    yield read
    handler.stream = previous
