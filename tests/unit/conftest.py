"""Fixtures of the unit tier: pure logic, no AWS."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator

import pytest

from agentrail.observability import logger


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
    handler = logger.registered_handler
    previous, handler.stream = handler.stream, _CurrentStdout()

    def read() -> list[dict]:
        lines = capsys.readouterr().out.splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    yield read
    handler.stream = previous
