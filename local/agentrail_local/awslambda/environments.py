"""Lambda execution environments on one machine: one Python subprocess per concurrent execution of a function.

Each function gets its own processes because Lambda isolates functions: each
has its own environment variables and its own module-level state (Powertools'
Logger, Tracer and Metrics are module singletons), so two functions cannot
share one interpreter. Warm processes are reused; another is started when all
are busy, as Lambda scales out. A function with reserved concurrency runs at
most that many at once; every other function draws from one account-wide pool
(Lambda's unreserved concurrency; here ``concurrency``, default 32). Beyond
either, the invocation is throttled like Lambda's ``TooManyRequestsException``.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agentrail_local.awslambda.definitions import (
    DEFAULT_ACCOUNT_CONCURRENCY,
    MAX_PAYLOAD_BYTES,
    FunctionDefinition,
    InvocationResult,
    PayloadTooLarge,
    UnknownFunction,
)
from agentrail_local.awslambda.observers import InvocationObserver
from agentrail_local.awslambda.runtimes import LocalRuntime, LocalRuntimes
from agentrail_local.awslambda.workers import Concurrency, FunctionLogs, FunctionPool
from agentrail_local.console import Console


@dataclass(frozen=True)
class _Target:
    definition: FunctionDefinition
    version: str
    arn: str


#: The agent version stamped at synth (``agentrail_runtime.agent.version.AGENT_VERSION_ENV``).
AGENT_VERSION_ENV = "AGENT_VERSION"


def _without_stamped_version(environment: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in environment.items() if key != AGENT_VERSION_ENV}


def _reloaded(definition: FunctionDefinition, copies: Mapping[Path, Path]) -> FunctionDefinition:
    """``definition`` running from the new copies of its edited folders, without the ``AGENT_VERSION`` stamped for
    the old code; unchanged when none of its folders was edited."""
    layers = tuple(
        replace(layer, path=copies[layer.path]) if layer.path is not None and layer.path in copies else layer
        for layer in definition.layers
    )
    code_dir = copies.get(definition.code_dir, definition.code_dir)
    if code_dir == definition.code_dir and layers == definition.layers:
        return definition
    environment = _without_stamped_version(definition.environment)
    return replace(definition, code_dir=code_dir, layers=layers, environment=environment)


def new_trace_header() -> str:
    """A new sampled X-Ray trace header (``Root=1-<epoch seconds, hex>-<96 random bits>;Parent=...;Sampled=1``)."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=1"


class ExecutionEnvironments:
    """Every deployed function, callable by name, ARN, ``name:qualifier``, version or alias.

    Parameters
    ----------
    moto_endpoint:
        URL of the moto server; functions reach AWS there (``AWS_ENDPOINT_URL``).
    log_dir:
        Each function's stdout and stderr go to ``<log_dir>/<logical-id>.log``.
    console:
        Also receives every log line, prefixed with the logical id, and local mode's own notes. Default: none.
    python, cache_dir:
        The interpreter of every function and the cache of layers' host copies; see :class:`LocalRuntimes`.
    warn:
        Receives each warning about a difference from the cloud once (the console gets it too). Default: none.
    concurrency:
        The account's pool: concurrent executions of all functions without reserved concurrency together
        (a function with reserved concurrency is capped by it instead). Default: 32.
    routing:
        Draws the version an invocation through a weighted alias goes to (``RoutingConfig``'s
        ``AdditionalVersionWeights``); seed one for a repeatable split. Default: a new, unseeded ``random.Random``.
    observer:
        Told of each function registered, each invocation and each log line (local mode's call meter). Default: none.

    Notes
    -----
    Local mode runs one copy of a function's code (hot reload replaces it for every version). A version keeps the
    environment the function had when it was published (``AGENT_VERSION`` among it), so two versions behind a
    weighted alias answer as their own agent versions.
    """

    def __init__(
        self,
        *,
        moto_endpoint: str,
        log_dir: Path,
        console: Console | None = None,
        region: str = "us-east-1",
        python: str | None = None,
        cache_dir: Path | None = None,
        warn: Console | None = None,
        concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY,
        routing: random.Random | None = None,
        observer: InvocationObserver | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._base_env = {
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # moto accepts any credentials; these make sure no real ones are used.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            # moto has no Bedrock Prompt Management: a definition's Bedrock prompt reads its local_file instead.
            "AGENTRAIL_LOCAL": "1",
        }
        self.log_dir = Path(log_dir)
        self._console = console
        self._functions: dict[str, FunctionDefinition] = {}
        self._aliases: dict[tuple[str, str], str] = {}
        self._weights: dict[tuple[str, str], dict[str, float]] = {}
        self._versions: dict[str, set[str]] = {}
        self._published: dict[tuple[str, str], FunctionDefinition] = {}
        self._routing = routing or random.Random()
        self._concurrency: dict[str, Concurrency] = {}
        self.unreserved = Concurrency(concurrency, exhausted=f"the account's concurrency pool of {concurrency}")
        self._logs: dict[str, FunctionLogs] = {}
        self._pools: dict[tuple[str, str], FunctionPool] = {}
        self._runtimes: dict[str, LocalRuntime] = {}
        self._url_rewrites: dict[str, str] = {}
        self._warn_to = warn
        self.runtimes = LocalRuntimes(python=python, cache_dir=cache_dir, warn=self._warn, note=self.note)
        self._lock = threading.Lock()
        self.observer = observer

    # -- registration ----------------------------------------------------------------

    def note(self, message: str) -> None:
        """Write one line of local mode's own to the console, beside the functions' logs."""
        if self._console is not None:
            self._console(f"[agentrail local] {message}")

    def _warn(self, message: str) -> None:
        if self._warn_to is not None:
            self._warn_to(message)
        self.note(f"warning: {message}")

    def add_function(self, definition: FunctionDefinition) -> None:
        """Register a function; a Python one gets its interpreter and packages now (see :class:`LocalRuntimes`).

        Raises
        ------
        LocalPythonError
            When its interpreter does not run, or its dependencies layer cannot be installed for it.
        """
        if definition.runtime.startswith("python") or not definition.runtime:
            self._runtimes[definition.name] = self.runtimes.resolve(definition)
        labels = {d.logical_id for d in self._functions.values()}
        label = (
            definition.logical_id if definition.logical_id not in labels else f"{definition.stack_name}.{definition.logical_id}"
        )
        self._functions[definition.name] = definition
        self._versions.setdefault(definition.name, set())
        reserved = definition.reserved_concurrency
        self._concurrency[definition.name] = self.unreserved if reserved is None else Concurrency(reserved)
        observer = self.observer
        on_line = None if observer is None else (lambda size: observer.logged(label, size))
        self._logs[definition.name] = FunctionLogs(label, self.log_dir / f"{label}.log", self._console, on_line)
        if observer is not None:
            observer.function_added(label, definition)

    def add_version(self, function_name: str, version: str) -> None:
        """Publish ``version`` of a registered function: it keeps the function as it is now (its code and layers
        folders, its environment and configuration), as a published Lambda version does. A later
        :meth:`update_function` (a deploy) leaves it be, so an invocation qualified with the version (a workflow's
        pinned step) runs this code; hot reload (:meth:`replace_code`) edits every version."""
        self._versions.setdefault(function_name, set()).add(str(version))
        definition = self._functions.get(function_name)
        if definition is not None:
            self._published.setdefault((function_name, str(version)), definition)

    def add_alias(self, function_name: str, alias: str, version: str, weights: Mapping[str, float] | None = None) -> None:
        """Point ``alias`` at ``version``, sending each invocation to another version with its weight (0 to 1)
        instead, as ``RoutingConfig.AdditionalVersionWeights`` does.

        Raises
        ------
        ValueError
            A weight is outside 0..1, or the weights add up to more than 1.
        """
        weights = {str(v): float(w) for v, w in (weights or {}).items()}
        if any(not 0.0 <= w <= 1.0 for w in weights.values()) or sum(weights.values()) > 1.0:
            raise ValueError(f"alias {function_name}:{alias} has invalid routing weights {weights}")
        self._aliases[(function_name, alias)] = str(version)
        self._weights[(function_name, alias)] = weights

    def _route(self, name: str, alias: str, version: str) -> str:
        """The version an invocation through ``alias`` runs: an additional version with its weight, else ``version``."""
        weights = self._weights.get((name, alias))
        if not weights:
            return version
        with self._lock:
            draw = self._routing.random()
        for additional, weight in sorted(weights.items()):
            if draw < weight:
                return additional
            draw -= weight
        return version

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

    def _resolve(self, target: str, qualifier: str | None, *, route: bool = False) -> _Target:
        """The function and version ``target`` names; through a weighted alias, ``route`` draws the version."""
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
        chosen = self._route(name, qualifier, version) if route else version
        return _Target(definition, chosen, f"{definition.arn}:{qualifier}")

    def route_urls(self, rewrites: Mapping[str, str]) -> list[str]:
        """Make every function see each URL prefix ``old`` in its environment as ``rewrites[old]``: a WebSocket API's
        ``https://{apiId}.execute-api.{region}.amazonaws.com`` becomes its local @connections API, so a function's
        ``apigatewaymanagementapi`` client given that URL (CDK's ``WebSocketStage.callback_url``) reaches it.

        Warm environments of functions whose environment holds a prefix whose target changed are recycled; returns
        their names.
        """
        with self._lock:
            changed = {old for old, new in rewrites.items() if self._url_rewrites.get(old) != new}
            self._url_rewrites.update(rewrites)
            affected = {
                name
                for name, definition in self._functions.items()
                if any(old in value for value in definition.environment.values() for old in changed)
            }
            retired = [pool for (name, _), pool in self._pools.items() if name in affected]
            self._pools = {key: pool for key, pool in self._pools.items() if key[0] not in affected}
        for pool in retired:
            pool.retire()
        return sorted(affected)

    def _rewritten(self, definition: FunctionDefinition) -> FunctionDefinition:
        if not self._url_rewrites:
            return definition
        environment = dict(definition.environment)
        for name, value in environment.items():
            for old, new in self._url_rewrites.items():
                value = value.replace(old, new)
            environment[name] = value
        return definition if environment == dict(definition.environment) else replace(definition, environment=environment)

    def _pool(self, target: _Target) -> FunctionPool:
        key = (target.definition.name, target.version)
        runtime = self._runtimes[target.definition.name]
        definition = self._published.get(key, target.definition)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = FunctionPool(
                    self._rewritten(definition),
                    target.version,
                    concurrency=self._concurrency[target.definition.name],
                    base_env=self._base_env,
                    logs=self._logs[target.definition.name],
                    command=runtime.command(),
                    python_path=runtime.python_path(definition),
                )
            return pool

    def replace_code(self, copies: Mapping[Path, Path]) -> list[str]:
        """Run functions from new copies of their code: ``copies`` maps a code or layer folder to its replacement.

        Each function that used a replaced folder gets fresh execution environments; its warm ones are
        recycled (idle ones at once, busy ones when their invocation ends). Versions and aliases follow: each
        published version that ran from an edited folder runs from its new copy. The ``AGENT_VERSION`` stamped at synth
        described the old code (an edited prompt file is a new agent version), so it goes: the runtime
        computes the version of the reloaded code at cold start, as the next synth would stamp it. Returns the
        names of those functions.
        """
        replaced: list[str] = []
        with self._lock:
            for name, definition in list(self._functions.items()):
                reloaded = _reloaded(definition, copies)
                if reloaded is not definition:
                    self._functions[name] = reloaded
                    replaced.append(name)
            # A version published from other folders (older code) keeps them: only edited folders are replaced.
            for key, published in list(self._published.items()):
                reloaded = _reloaded(published, copies)
                if reloaded is not published:
                    self._published[key] = reloaded
                    if key[0] not in replaced:
                        replaced.append(key[0])
            retired = [pool for (name, _), pool in self._pools.items() if name in replaced]
            self._pools = {key: pool for key, pool in self._pools.items() if key[0] not in replaced}
        for pool in retired:
            pool.retire()
        return replaced

    def update_function(self, definition: FunctionDefinition) -> None:
        """Run a registered function (same name) with a new definition: configuration, environment, code or layers.

        Its warm environments are recycled (idle ones at once, busy ones when their invocation ends).

        Raises
        ------
        LocalPythonError
            When its new interpreter or dependencies layer cannot be had (the old definition stays).
        """
        runtime = self.runtimes.resolve(definition) if definition.runtime.startswith("python") or not definition.runtime else None
        name = definition.name
        with self._lock:
            old = self._functions[name]
            self._functions[name] = definition
            if runtime is not None:
                self._runtimes[name] = runtime
            if definition.reserved_concurrency != old.reserved_concurrency:
                reserved = definition.reserved_concurrency
                self._concurrency[name] = self.unreserved if reserved is None else Concurrency(reserved)
            retired = [pool for (n, _), pool in self._pools.items() if n == name]
            self._pools = {key: pool for key, pool in self._pools.items() if key[0] != name}
        for pool in retired:
            pool.retire()

    def remove_function(self, name: str) -> None:
        """Forget a deleted function, its versions and aliases; its environments end when their invocation does."""
        with self._lock:
            self._functions.pop(name, None)
            self._versions.pop(name, None)
            self._runtimes.pop(name, None)
            self._aliases = {key: version for key, version in self._aliases.items() if key[0] != name}
            self._weights = {key: weights for key, weights in self._weights.items() if key[0] != name}
            self._published = {key: env for key, env in self._published.items() if key[0] != name}
            retired = [pool for (n, _), pool in self._pools.items() if n == name]
            self._pools = {key: pool for key, pool in self._pools.items() if key[0] != name}
        for pool in retired:
            pool.retire()

    def definition(self, target: str) -> FunctionDefinition:
        return self._resolve(target, None).definition

    def invoke(
        self,
        target: str,
        payload: bytes | str | dict[str, Any],
        *,
        qualifier: str | None = None,
        trace_header: str | None = None,
    ) -> InvocationResult:
        """Invoke synchronously (``RequestResponse``).

        The invocation runs inside ``trace_header`` (an X-Ray header whose ``Root`` the caller carried: an SQS
        message's ``AWSTraceHeader``, an API request's ``X-Amzn-Trace-Id``) or a new trace, as a function with
        active tracing does; its handler finds the header in ``_X_AMZN_TRACE_ID``, as on Lambda.

        Raises
        ------
        UnknownFunction
            When nothing deployed matches ``target``.
        Throttled
            When the function's concurrency is used up.
        PayloadTooLarge
            When ``payload`` is over 6 MB.
        """
        resolved = self._resolve(target, qualifier, route=True)
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
        header = trace_header if trace_header and "Root=" in trace_header else new_trace_header()
        label, observer = self._logs[resolved.definition.name].label, self.observer
        if observer is not None:
            observer.invoking(label)
        outcome: InvocationResult | None = None
        try:
            result = outcome = self._pool(resolved).invoke(body, invoked_arn=resolved.arn, trace_header=header)
        finally:
            if observer is not None:
                observer.invoked(label, outcome)
        return replace(result, executed_version=resolved.version)

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

    def runtime(self, target: str) -> LocalRuntime:
        """The interpreter and packages that run a Python function."""
        return self._runtimes[self._resolve(target, None).definition.name]

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


__all__ = ["ExecutionEnvironments"]
