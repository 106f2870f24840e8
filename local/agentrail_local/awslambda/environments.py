"""Lambda execution environments on one machine: one Python subprocess per concurrent execution of a function.

Each function gets its own processes because Lambda isolates functions: each
has its own environment variables and its own module-level state (Powertools'
Logger, Tracer and Metrics are module singletons), so two functions cannot
share one interpreter. Warm processes are reused; another is started when all
are busy, up to the function's reserved concurrency (default 4), beyond which
the invocation is throttled like Lambda's ``TooManyRequestsException``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentrail_local.awslambda.bootstrap import RESPONSE_FD_ENV

DEFAULT_CONCURRENCY = 4
#: Lambda's synchronous payload limit, request and response.
MAX_PAYLOAD_BYTES = 6_291_556
#: Lambda gives the init phase 10 seconds; a busy laptop importing pydantic needs some slack.
INIT_TIMEOUT_SECONDS = 20.0
LAYER_KIND_METADATA = "agentrail:layer"
#: Layers of this kind hold Linux wheels (arm64 by default) that cannot load here; the local
#: virtual environment already has the same pinned packages, so they are left off PYTHONPATH.
VENV_PROVIDED_LAYER_KINDS = frozenset({"dependencies"})

Console = Callable[[str], None]


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


class Throttled(Exception):
    """Every allowed execution environment of the function is busy (Lambda's ``TooManyRequestsException``)."""


class PayloadTooLarge(Exception):
    """The request is over Lambda's 6 MB synchronous payload limit (``RequestEntityTooLargeException``)."""


class UnknownFunction(LookupError):
    """No deployed function, version or alias has this name or ARN."""


@dataclass(frozen=True)
class LayerSource:
    arn: str
    path: Path | None
    kind: str | None = None

    @property
    def python_dir(self) -> Path | None:
        return None if self.path is None else self.path / "python"


@dataclass(frozen=True)
class FunctionDefinition:
    """A deployed ``AWS::Lambda::Function``: what an execution environment needs to run it."""

    stack_name: str
    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    code_dir: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    memory_size: int = 128
    timeout_seconds: float = 3.0
    reserved_concurrency: int | None = None
    layers: tuple[LayerSource, ...] = ()
    log_group: str = ""
    application_log_level: str | None = None

    @property
    def concurrency_limit(self) -> int:
        return DEFAULT_CONCURRENCY if self.reserved_concurrency is None else self.reserved_concurrency

    def python_path(self) -> list[str]:
        """The code folder, then each layer's ``python/`` folder (Lambda's ``/var/task`` then ``/opt/python``)."""
        entries = [str(self.code_dir)]
        for layer in self.layers:
            if layer.kind in VENV_PROVIDED_LAYER_KINDS or layer.python_dir is None:
                continue
            if layer.python_dir.is_dir():
                entries.append(str(layer.python_dir))
        return entries


@dataclass(frozen=True)
class InvocationResult:
    """What an invocation returned: the payload bytes and, for errors, Lambda's ``FunctionError`` value."""

    request_id: str
    payload: bytes
    function_error: str | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.function_error is None

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


class FunctionLogs:
    """Where one function's stdout and stderr go: its log file, and the console prefixed with its logical id."""

    def __init__(self, label: str, path: Path, console: Console | None) -> None:
        self.label = label
        self.path = path
        self._console = console
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
        if self._console is not None:
            self._console(f"[{self.label}] {line}")

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _WorkerExited(Exception):
    pass


class Worker:
    """One execution environment: a subprocess running :mod:`agentrail_local.awslambda.bootstrap`."""

    def __init__(self, definition: FunctionDefinition, version: str, env: Mapping[str, str], logs: FunctionLogs) -> None:
        self.definition = definition
        self.version = version
        read_fd, write_fd = os.pipe()
        self._responses = read_fd
        self._buffer = b""
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "agentrail_local.awslambda.bootstrap"],
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
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not wait for the process
            pass
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        try:
            os.close(self._responses)
        except OSError:
            pass
        self._responses = -1


class _Concurrency:
    """In-flight executions of one function, across its versions."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
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
        concurrency: _Concurrency,
        base_env: Mapping[str, str],
        logs: FunctionLogs,
    ) -> None:
        self.definition = definition
        self.version = version
        self._concurrency = concurrency
        self._env = self._environment(base_env)
        self._logs = logs
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._warming: threading.Event | None = None

    def _environment(self, base_env: Mapping[str, str]) -> dict[str, str]:
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
            "PYTHONPATH": os.pathsep.join(d.python_path()),
            "PYTHONUNBUFFERED": "1",
            # Keep __pycache__ folders out of cdk.out's assets.
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if d.application_log_level:
            env["AWS_LAMBDA_LOG_LEVEL"] = d.application_log_level
        return env

    def _spawn(self) -> Worker:
        worker = Worker(self.definition, self.version, self._env, self._logs)
        with self._lock:
            self._all.append(worker)
        try:
            worker.wait_ready(max(INIT_TIMEOUT_SECONDS, self.definition.timeout_seconds))
        except TimeoutError:
            worker.init_error = {"errorMessage": "The init phase timed out.", "errorType": "Runtime.InitTimeout", "stackTrace": []}
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

    def invoke(self, payload: bytes, *, invoked_arn: str) -> InvocationResult:
        """Run one invocation in a free environment.

        Raises
        ------
        Throttled
            When the function's concurrency is used up.
        """
        if not self._concurrency.try_acquire():
            raise Throttled(f"Rate Exceeded. {self.definition.name} is at its concurrency limit of {self._concurrency.limit}.")
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
            }
            try:
                answer = worker.invoke(request, timeout)
            except TimeoutError:
                worker.kill()
                self._release(worker)
                self._logs.write(json.dumps({"type": "platform.timeout", "requestId": request_id, "timeout_s": timeout}))
                message = f"{_now()} {request_id} Task timed out after {timeout:.2f} seconds"
                return _failure(request_id, {"errorMessage": message, "errorType": "Sandbox.Timedout"}, "Unhandled", started)
            except _WorkerExited:
                code = worker.process.wait()
                self._release(worker)
                message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
                return _failure(request_id, {"errorMessage": message, "errorType": "Runtime.ExitError"}, "Unhandled", started)
            self._release(worker)
            if answer["type"] == "error":
                return _failure(request_id, answer["payload"], "Unhandled", started)
            body = answer["payload"].encode()
            if len(body) > MAX_PAYLOAD_BYTES:
                error = {
                    "errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes).",
                    "errorType": "Function.ResponseSizeTooLarge",
                }
                return _failure(request_id, error, "Unhandled", started)
            return InvocationResult(request_id, body, None, _elapsed(started))
        finally:
            self._concurrency.release()

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


def _failure(request_id: str, error: dict[str, Any], kind: str, started: float) -> InvocationResult:
    return InvocationResult(request_id, json.dumps(error).encode(), kind, _elapsed(started))


@dataclass(frozen=True)
class _Target:
    definition: FunctionDefinition
    version: str
    arn: str


class ExecutionEnvironments:
    """Every deployed function, callable by name, ARN, ``name:qualifier``, version or alias.

    Parameters
    ----------
    moto_endpoint:
        URL of the moto server; functions reach AWS there (``AWS_ENDPOINT_URL``).
    log_dir:
        Each function's stdout and stderr go to ``<log_dir>/<logical-id>.log``.
    console:
        Also receives every log line, prefixed with the logical id. Default: none.
    """

    def __init__(self, *, moto_endpoint: str, log_dir: Path, console: Console | None = None, region: str = "us-east-1") -> None:
        self._base_env = {
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # moto accepts any credentials; these make sure no real ones are used.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }
        self.log_dir = Path(log_dir)
        self._console = console
        self._functions: dict[str, FunctionDefinition] = {}
        self._aliases: dict[tuple[str, str], str] = {}
        self._versions: dict[str, set[str]] = {}
        self._concurrency: dict[str, _Concurrency] = {}
        self._logs: dict[str, FunctionLogs] = {}
        self._pools: dict[tuple[str, str], FunctionPool] = {}
        self._lock = threading.Lock()

    # -- registration ----------------------------------------------------------------

    def add_function(self, definition: FunctionDefinition) -> None:
        labels = {d.logical_id for d in self._functions.values()}
        label = definition.logical_id if definition.logical_id not in labels else f"{definition.stack_name}.{definition.logical_id}"
        self._functions[definition.name] = definition
        self._versions.setdefault(definition.name, set())
        self._concurrency[definition.name] = _Concurrency(definition.concurrency_limit)
        self._logs[definition.name] = FunctionLogs(label, self.log_dir / f"{label}.log", self._console)

    def add_version(self, function_name: str, version: str) -> None:
        self._versions.setdefault(function_name, set()).add(str(version))

    def add_alias(self, function_name: str, alias: str, version: str) -> None:
        self._aliases[(function_name, alias)] = str(version)

    @property
    def functions(self) -> tuple[FunctionDefinition, ...]:
        return tuple(self._functions.values())

    def log_file(self, function_name: str) -> Path:
        return self._logs[function_name].path

    def knows(self, target: str, qualifier: str | None = None) -> bool:
        try:
            self._resolve(target, qualifier)
        except UnknownFunction:
            return False
        return True

    # -- invocation ------------------------------------------------------------------

    def _resolve(self, target: str, qualifier: str | None) -> _Target:
        if target.startswith("arn:"):
            parts = target.split(":")
            if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
                raise UnknownFunction(target)
            name = parts[6]
            qualifier = parts[7] if len(parts) > 7 else qualifier
        else:
            name, _, inline = target.partition(":")
            qualifier = inline or qualifier
        definition = self._functions.get(name)
        if definition is None:
            raise UnknownFunction(target)
        if qualifier in (None, "", "$LATEST"):
            return _Target(definition, "$LATEST", definition.arn if qualifier in (None, "") else f"{definition.arn}:$LATEST")
        if qualifier in self._versions.get(name, ()):
            return _Target(definition, qualifier, f"{definition.arn}:{qualifier}")
        version = self._aliases.get((name, qualifier))
        if version is None:
            raise UnknownFunction(f"{target}:{qualifier}")
        return _Target(definition, version, f"{definition.arn}:{qualifier}")

    def _pool(self, target: _Target) -> FunctionPool:
        key = (target.definition.name, target.version)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = FunctionPool(
                    target.definition,
                    target.version,
                    concurrency=self._concurrency[target.definition.name],
                    base_env=self._base_env,
                    logs=self._logs[target.definition.name],
                )
            return pool

    def definition(self, target: str) -> FunctionDefinition:
        return self._resolve(target, None).definition

    def invoke(self, target: str, payload: bytes | str | dict[str, Any], *, qualifier: str | None = None) -> InvocationResult:
        """Invoke synchronously (``RequestResponse``).

        Raises
        ------
        UnknownFunction
            When nothing deployed matches ``target``.
        Throttled
            When the function's concurrency is used up.
        PayloadTooLarge
            When ``payload`` is over 6 MB.
        """
        resolved = self._resolve(target, qualifier)
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        body = payload.encode() if isinstance(payload, str) else payload
        if len(body) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation")
        if resolved.definition.runtime and not resolved.definition.runtime.startswith("python"):
            error = {
                "errorMessage": f"Local mode runs Python functions only; {resolved.definition.name} uses {resolved.definition.runtime}.",
                "errorType": "Runtime.Unsupported",
            }
            return InvocationResult(str(uuid.uuid4()), json.dumps(error).encode(), "Unhandled")
        return self._pool(resolved).invoke(body, invoked_arn=resolved.arn)

    def prewarm(self, targets: Iterable[str]) -> list[threading.Thread]:
        """Start one environment per target in the background, so first requests skip the cold start."""
        threads = []
        for target in targets:
            resolved = self._resolve(target, None)
            if not resolved.definition.runtime.startswith("python"):
                continue
            thread = threading.Thread(target=self._pool(resolved).prewarm, daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def pool_size(self, target: str) -> int:
        resolved = self._resolve(target, None)
        pool = self._pools.get((resolved.definition.name, resolved.version))
        return pool.size if pool else 0

    def close(self) -> None:
        """Kill every execution environment and close the log files."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        for logs in self._logs.values():
            logs.close()


__all__ = [
    "DEFAULT_CONCURRENCY",
    "ExecutionEnvironments",
    "FunctionDefinition",
    "FunctionLogs",
    "FunctionPool",
    "InvocationResult",
    "LayerSource",
    "PayloadTooLarge",
    "Throttled",
    "UnknownFunction",
]
