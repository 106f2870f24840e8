"""End-to-end fixtures: synthesize with the CDK CLI once per pattern set, run ``agentrail local`` as a subprocess.

For a new pattern, a test module only needs::

    @pytest.fixture(scope="module")
    def local(start_local_mode):
        return start_local_mode("stateful")
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentrail_cli.client import AgentApiClient
from agentrail_cli.synth import synthesize

READY_TIMEOUT_SECONDS = 90


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Callable[[str], Path]:
    """``synthesized("stateless")``: the cloud assembly of those patterns, made by ``cdk synth`` once per session."""
    cache: dict[str, Path] = {}

    def assembly(patterns: str) -> Path:
        if patterns not in cache:
            # Same folder as the integration tier's fixture, so one session synthesizes once.
            output = tmp_path_factory.getbasetemp() / f"assembly-{patterns.replace(',', '-')}"
            if not (output / "manifest.json").is_file():
                synthesize(repo_root, output, patterns=patterns)
            cache[patterns] = output
        return cache[patterns]

    return assembly


def agentrail_command(*args: str) -> list[str]:
    """The ``agentrail`` CLI as this interpreter runs it (no dependency on PATH)."""
    return [sys.executable, "-m", "agentrail_cli", *args]


@pytest.fixture(scope="session")
def agentrail() -> Callable[..., list[str]]:
    """``agentrail("local", "--tour")``: the command line that runs the CLI with this interpreter."""
    return agentrail_command


@dataclass
class LocalMode:
    """A running ``agentrail local`` process and what its ready file says."""

    process: subprocess.Popen[bytes]
    ready_file: Path
    state_dir: Path
    console: Path
    ready: dict[str, Any] = field(default_factory=dict)

    def api(self, pattern: str) -> dict[str, Any]:
        return next(a for a in self.ready["apis"] if a["pattern"] == pattern)

    def client(self, pattern: str, *, principal: str | None = None) -> AgentApiClient:
        return AgentApiClient.from_ready_file(self.ready_file, pattern=pattern, principal=principal, timeout=30)

    def function_log(self, logical_id_prefix: str) -> Path:
        return Path(next(f["log_file"] for f in self.ready["functions"] if f["logical_id"].startswith(logical_id_prefix)))

    def console_output(self) -> str:
        return self.console.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="session")
def start_local_mode(tmp_path_factory: pytest.TempPathFactory, synthesized: Callable[[str], Path]) -> Iterator[Callable[..., LocalMode]]:
    """``start_local_mode("stateless")`` starts ``agentrail local --port 0`` on that assembly and waits until it is ready."""
    started: list[LocalMode] = []

    def start(patterns: str, *, extra_args: Sequence[str] = ()) -> LocalMode:
        assembly = synthesized(patterns)
        state_dir = tmp_path_factory.mktemp(f"local-{patterns.replace(',', '-')}")
        ready_file = state_dir / "ready.json"
        console = state_dir / "console.log"
        with console.open("wb") as sink:
            process = subprocess.Popen(  # noqa: S603 - our own CLI
                agentrail_command(
                    "local", "--assembly", str(assembly), "--port", "0", "--ready-file", str(ready_file), "--state-dir", str(state_dir), *extra_args
                ),
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=state_dir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        local = LocalMode(process, ready_file, state_dir, console)
        started.append(local)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not ready_file.is_file():
            if process.poll() is not None:
                pytest.fail(f"agentrail local exited with {process.returncode}:\n{local.console_output()[-3000:]}")
            if time.monotonic() > deadline:
                local.stop()
                pytest.fail(f"agentrail local was not ready after {READY_TIMEOUT_SECONDS} s:\n{local.console_output()[-3000:]}")
            time.sleep(0.1)
        local.ready = json.loads(ready_file.read_text())
        return local

    yield start
    for local in started:
        local.stop()
