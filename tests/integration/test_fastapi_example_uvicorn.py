"""The FastAPI example agent on a laptop: the README's uvicorn command, no Lambda and no agentrail wrapping."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REPO_ROOT

READY_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """``uvicorn --app-dir examples/fastapi_agent fastapi_agent.main:app`` on a free port of 127.0.0.1, ready."""
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AGENT_")}
    command = [sys.executable, "-m", "uvicorn", "--app-dir", "examples/fastapi_agent", "fastapi_agent.main:app"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"uvicorn exited {process.returncode}: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not answer /health within {READY_TIMEOUT_SECONDS} s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_example_answers_under_uvicorn_with_the_agent_on_the_local_model(served: str):
    response = httpx.post(f"{served}/invoke", json={"message": "Calculate (12 + 30) * 2"}, timeout=30)

    assert response.status_code == 200
    body = response.json()
    assert body["answer"] == "calculator returned 84."
    # no API Gateway in front: no correlation id, and no header added
    assert body["correlation_id"] is None
    assert "x-correlation-id" not in response.headers


def test_fastapi_validates_the_body_itself_under_uvicorn(served: str):
    missing = httpx.post(f"{served}/invoke", json={}, timeout=30)
    blank = httpx.post(f"{served}/invoke", json={"message": "  "}, timeout=30)

    assert missing.status_code == blank.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "message"]


def test_the_openapi_document_is_served_under_uvicorn(served: str):
    document = httpx.get(f"{served}/openapi.json", timeout=30).json()

    assert {"/health", "/invoke"} <= set(document["paths"])
