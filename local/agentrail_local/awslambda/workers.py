"""Execution environments of one function version: worker processes running the bootstrap, kept warm in a pool."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agentrail_local.awslambda.bootstrap import RESPONSE_FD_ENV
from agentrail_local.awslambda.definitions import MAX_PAYLOAD_BYTES, FunctionDefinition, InvocationResult, Throttled
from agentrail_local.awslambda.observers import function_app_id
from agentrail_local.console import Console

#: Lambda gives the init phase 10 seconds; a busy laptop importing pydantic needs some slack.
INIT_TIMEOUT_SECONDS = 20.0


def moved_clock_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The libfaketime variables of a clock moved for this process (``FAKETIME`` set), for its functions to inherit.

    Functions start from a cleaned environment; without these, a function under a moved clock
    (the suite's time travel, or a user replaying a date) would read the real time while moto
    and the gateway read the moved one, and expiries and ``remaining_ms`` would disagree.
    """
    if not environ.get("FAKETIME"):
        return {}
    names = ("LD_PRELOAD", "LD_LIBRARY_PATH", "DONT_FAKE_MONOTONIC")
    return {name: value for name, value in environ.items() if name in names or name.startswith("FAKETIME")}


class FunctionLogs:
    """Where one function's stdout and stderr go: its log file, and the console prefixed with its logical id.

    ``on_line`` is told the size in bytes of each line written (newline included), as CloudWatch Logs would ingest it.
    """

    def __init__(self, label: str, path: Path, console: Console | None, on_line: Callable[[int], None] | None = None) -> None:
        self.label = label
        self.path = path
        self._console = console
        self._on_line = on_line
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")

    def write(self, line: str) -> None:
        line = line.rstrip("\n")
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line + "\n")
            self._file.flush()
        if self._on_line is not None:
            self._on_line(len(line.encode("utf-8", errors="replace")) + 1)
        if self._console is not None:
            self._console(f"[{self.label}] {line}")

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _WorkerExited(Exception):
    pass


class Worker:
    """One execution environment: a subprocess running :mod:`agentrail_local.awslambda.bootstrap`."""

    def __init__(
        self, definition: FunctionDefinition, version: str, env: Mapping[str, str], logs: FunctionLogs, command: Sequence[str]
    ) -> None:
        self.definition = definition
        self.version = version
        read_fd, write_fd = os.pipe()
        self._responses = read_fd
        self._buffer = b""
        self.process = subprocess.Popen(
            list(command),
            cwd=definition.code_dir,
            env={**env, RESPONSE_FD_ENV: str(write_fd)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        self._relays = [
            threading.Thread(target=self._relay, args=(stream, logs), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for relay in self._relays:
            relay.start()
        self.init_error: dict[str, Any] | None = None
        self.ready = False

    @staticmethod
    def _relay(stream: Any, logs: FunctionLogs) -> None:
        for raw in iter(stream.readline, b""):
            logs.write(raw.decode("utf-8", errors="replace"))
        stream.close()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float) -> None:
        """Wait for the init phase; afterwards ``init_error`` says whether it failed."""
        message = self._read(time.monotonic() + timeout)
        self.ready = True
        self.init_error = message.get("error")

    def invoke(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its answer.

        Raises
        ------
        TimeoutError
            No answer within ``timeout`` seconds.
        _WorkerExited
            The process ended before answering.
        """
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise _WorkerExited from None
        return self._read(time.monotonic() + timeout)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            readable, _, _ = select.select([self._responses], [], [], remaining)
            if not readable:
                raise TimeoutError
            chunk = os.read(self._responses, 65536)
            if not chunk:
                raise _WorkerExited
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # pragma: no cover - a SIGKILLed process ends at once
            self.process.wait(timeout=5)
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        with contextlib.suppress(OSError):
            os.close(self._responses)
        self._responses = -1


class Concurrency:
    """In-flight executions counted against one limit: a function's reserved concurrency (across its versions),
    or the account's pool shared by every function without one.

    ``exhausted`` completes the ``Throttled`` message: what was used up.
    """

    def __init__(self, limit: int, *, exhausted: str = "") -> None:
        self.limit = limit
        self.exhausted = exhausted or f"its reserved concurrency of {limit}"
        self.in_flight = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self.in_flight >= self.limit:
                return False
            self.in_flight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1


class FunctionPool:
    """Warm execution environments of one version of one function."""

    def __init__(
        self,
        definition: FunctionDefinition,
        version: str,
        *,
        concurrency: Concurrency,
        base_env: Mapping[str, str],
        logs: FunctionLogs,
        command: Sequence[str],
        python_path: Sequence[str],
    ) -> None:
        self.definition = definition
        self.version = version
        self._concurrency = concurrency
        self._command = tuple(command)
        self._env = self._environment(base_env, python_path)
        self._logs = logs
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._warming: threading.Event | None = None

    def _environment(self, base_env: Mapping[str, str], python_path: Sequence[str]) -> dict[str, str]:
        d = self.definition
        stream = f"{time.strftime('%Y/%m/%d')}/[{self.version}]{uuid.uuid4().hex}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            **moved_clock_environment(),
            **{k: str(v) for k, v in d.environment.items()},
            **base_env,
            "AWS_LAMBDA_FUNCTION_NAME": d.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(d.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": self.version,
            "AWS_LAMBDA_LOG_GROUP_NAME": d.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{d.runtime}",
            "LAMBDA_TASK_ROOT": str(d.code_dir),
            "_HANDLER": d.handler,
            # There is no X-Ray daemon on this machine; with tracing on, the
            # X-Ray SDK would log a failed UDP send on every segment.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            # Keep __pycache__ folders out of cdk.out's assets.
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_LAMBDA_LOG_FORMAT": d.log_format or "Text",
            # Tags the User-Agent of the function's AWS calls, so local mode's call meter knows whose they are.
            "AWS_SDK_UA_APP_ID": function_app_id(d.name),
        }
        if d.application_log_level:
            env["AWS_LAMBDA_LOG_LEVEL"] = d.application_log_level
        return env

    def _spawn(self) -> Worker:
        worker = Worker(self.definition, self.version, self._env, self._logs, self._command)
        with self._lock:
            self._all.append(worker)
        try:
            worker.wait_ready(max(INIT_TIMEOUT_SECONDS, self.definition.timeout_seconds))
        except TimeoutError:
            worker.init_error = {
                "errorMessage": "The init phase timed out.",
                "errorType": "Runtime.InitTimeout",
                "stackTrace": [],
            }
        except _WorkerExited:
            worker.init_error = {
                "errorMessage": "Runtime exited during init; see the function's log.",
                "errorType": "Runtime.ExitError",
                "stackTrace": [],
            }
        return worker

    def prewarm(self) -> None:
        """Start one environment ahead of the first request, when none exists yet."""
        with self._lock:
            if self._all or self._closed or self._warming is not None:
                return
            warming = self._warming = threading.Event()
        try:
            worker = self._spawn()
            self._release(worker)
        finally:
            with self._lock:
                self._warming = None
            warming.set()

    def _release(self, worker: Worker) -> None:
        with self._lock:
            if worker.alive and worker.init_error is None and not self._closed:
                self._idle.append(worker)
                return
            if worker in self._all:
                self._all.remove(worker)
        worker.kill()

    def _acquire(self) -> Worker:
        with self._lock:
            warming = self._warming
        if warming is not None:
            # A request right after start-up takes the environment being warmed
            # instead of paying a second cold start next to it.
            warming.wait(INIT_TIMEOUT_SECONDS)
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    return worker
                self._all.remove(worker)
                worker.kill()
        return self._spawn()

    def invoke(self, payload: bytes, *, invoked_arn: str, trace_header: str | None = None) -> InvocationResult:
        """Run one invocation in a free environment.

        Raises
        ------
        Throttled
            When the function's concurrency is used up.
        """
        if not self._concurrency.try_acquire():
            raise Throttled(f"Rate Exceeded. {self.definition.name} is throttled: {self._concurrency.exhausted} is in use.")
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            worker = self._acquire()
            if worker.init_error is not None:
                self._release(worker)
                return _failure(request_id, worker.init_error, "Unhandled", started)
            timeout = self.definition.timeout_seconds
            request = {
                "request_id": request_id,
                "payload": payload.decode("utf-8"),
                "deadline_ms": int(time.time() * 1000 + timeout * 1000),
                "invoked_function_arn": invoked_arn,
                "trace_header": trace_header,
            }
            handler_started = time.monotonic()
            try:
                answer = worker.invoke(request, timeout)
            except TimeoutError:
                worker.kill()
                self._release(worker)
                self._logs.write(json.dumps({"type": "platform.timeout", "requestId": request_id, "timeout_s": timeout}))
                message = f"{_now()} {request_id} Task timed out after {timeout:.2f} seconds"
                error = {"errorMessage": message, "errorType": "Sandbox.Timedout"}
                return _failure(request_id, error, "Unhandled", started, handler_started)
            except _WorkerExited:
                code = worker.process.wait()
                self._release(worker)
                message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
                error = {"errorMessage": message, "errorType": "Runtime.ExitError"}
                return _failure(request_id, error, "Unhandled", started, handler_started)
            self._release(worker)
            if answer["type"] == "error":
                return _failure(request_id, answer["payload"], "Unhandled", started, handler_started)
            body = answer["payload"].encode()
            if len(body) > MAX_PAYLOAD_BYTES:
                error = {
                    "errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes).",
                    "errorType": "Function.ResponseSizeTooLarge",
                }
                return _failure(request_id, error, "Unhandled", started, handler_started)
            return InvocationResult(request_id, body, None, _elapsed(started), handler_ms=_elapsed(handler_started))
        finally:
            self._concurrency.release()

    def retire(self) -> None:
        """Take no more invocations: kill the idle environments now, and each busy one when its invocation ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            for worker in idle:
                self._all.remove(worker)
        for worker in idle:
            worker.kill()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all, self._idle = list(self._all), [], []
        for worker in workers:
            worker.kill()

    @property
    def size(self) -> int:
        with self._lock:
            return len(self._all)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _elapsed(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


def _failure(
    request_id: str, error: dict[str, Any], kind: str, started: float, handler_started: float | None = None
) -> InvocationResult:
    handler_ms = 0.0 if handler_started is None else _elapsed(handler_started)
    return InvocationResult(request_id, json.dumps(error).encode(), kind, _elapsed(started), handler_ms=handler_ms)


__all__ = ["INIT_TIMEOUT_SECONDS", "Concurrency", "FunctionLogs", "FunctionPool", "Worker", "moved_clock_environment"]
