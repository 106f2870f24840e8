"""Local mode's call meter: what a workload really uses, counted while it runs, for ``agentrail plan --measure`` to price.

It counts the AWS API calls functions make and those Step Functions' service integrations make (never local mode's own:
the deployer, the SQS pollers, the gateways, :attr:`LocalCloud.clients`), DynamoDB's request units as on-demand bills
them (see :mod:`agentrail_local.dynamodb_capacity`), SQS requests and EventBridge events in 64 KB chunks, Lambda
invocations and their duration, memory and log bytes, API Gateway requests and WebSocket messages in 32 KB chunks;
and, when read, DynamoDB's billed storage and the state transitions of the executions started since :meth:`reset`.

Each function's SDK clients tag their User-Agent (``AWS_SDK_UA_APP_ID=agentrail-fn.<hash of its name>``), Step
Functions' clients ``agentrail-sfn``, the pollers' ``agentrail-poller`` and local mode's ``agentrail-local``; a WSGI
middleware around moto's server (:meth:`CallMeter.middleware`) reads each request's caller, service and operation.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from agentrail_local.aws_requests import AwsCall, aws_call, caller_app_id, caller_kind, read_body
from agentrail_local.awslambda.definitions import FunctionDefinition, InvocationResult
from agentrail_local.awslambda.moto_seam import MotoClients, WsgiApp
from agentrail_local.awslambda.observers import function_app_id
from agentrail_local.cloudformation.deployer import StackDeployment
from agentrail_local.dynamodb_capacity import RequestCapacity, install_scan_seam, is_metered, stored_bytes

#: SQS bills each 64 KB chunk of a request's payload as one request; EventBridge each 64 KB chunk of an event.
SQS_CHUNK_BYTES = 65536
EVENT_CHUNK_BYTES = 65536
#: API Gateway bills WebSocket messages in 32 KB chunks.
WEBSOCKET_CHUNK_BYTES = 32768
_TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")


@dataclass(frozen=True)
class FunctionUse:
    """One function's invocations since the meter's reset: ``duration_ms`` is handler wall time, ``billed_ms`` each
    invocation rounded up to 1 ms, ``log_bytes`` the lines its processes wrote (newlines included)."""

    invocations: int
    duration_ms: float
    billed_ms: float
    memory_mb: int
    architecture: str
    log_bytes: int


@dataclass(frozen=True)
class MeterReading:
    """What was used since the meter's reset; plain data (:meth:`as_dict` is JSON-serialisable).

    ``calls``: every metered call, ``"<service>:<Operation>"`` with the IAM prefix as service (``dynamodb:PutItem``,
    ``states:StartExecution``); ``calls_by_function`` splits the functions' (keyed like ``lambda_functions``: the logical
    id, ``<stack>.<logical id>`` when two stacks share it), ``integration_calls`` Step Functions' service integrations'.
    ``poller_calls``: the SQS event source mappings' own calls (not in ``calls``).
    """

    calls: dict[str, int] = field(default_factory=dict)
    calls_by_function: dict[str, dict[str, int]] = field(default_factory=dict)
    integration_calls: dict[str, int] = field(default_factory=dict)
    poller_calls: dict[str, int] = field(default_factory=dict)
    dynamodb_read_units: float = 0.0
    dynamodb_write_units: float = 0.0
    dynamodb_stored_bytes: dict[str, int] = field(default_factory=dict)
    sqs_requests: dict[str, int] = field(default_factory=dict)
    eventbridge_events: int = 0
    sfn_transitions: int = 0
    sfn_executions: int = 0
    lambda_functions: dict[str, FunctionUse] = field(default_factory=dict)
    api_requests: dict[str, int] = field(default_factory=dict)
    websocket_messages: int = 0
    websocket_connection_ms: float = 0.0
    #: Invocations running at reading time (started, not yet counted in ``lambda_functions``).
    in_flight: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _chunks(size: int, chunk: int) -> int:
    return max(1, math.ceil(size / chunk))


def _sqs_payload(entry: Mapping[str, Any]) -> int:
    size = len(str(entry.get("MessageBody", "")).encode())
    for name, attribute in (entry.get("MessageAttributes") or {}).items():
        values = [attribute.get(k) for k in ("DataType", "StringValue", "BinaryValue")]
        size += len(name.encode()) + sum(len(str(v).encode()) for v in values if v is not None)
    return size


def sqs_requests(call: AwsCall) -> tuple[str, int]:
    """The queue type (``standard``, ``fifo``) and billed requests of one SQS call: its payload in 64 KB chunks."""
    queue = str(call.params.get("QueueUrl") or call.params.get("QueueName") or "")
    kind = "fifo" if queue.endswith(".fifo") else "standard"
    if call.operation == "SendMessage":
        return kind, _chunks(_sqs_payload(call.params), SQS_CHUNK_BYTES)
    if call.operation == "SendMessageBatch":
        return kind, _chunks(sum(_sqs_payload(e) for e in call.params.get("Entries") or []), SQS_CHUNK_BYTES)
    return kind, 1


def eventbridge_events(call: AwsCall) -> int:
    """Billed events of a ``PutEvents``: each entry in 64 KB chunks (source, detail type, detail, resources, time)."""
    total = 0
    for entry in call.params.get("Entries") or []:
        size = sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail"))
        size += sum(len(str(r).encode()) for r in entry.get("Resources") or []) + (14 if entry.get("Time") else 0)
        total += _chunks(size, EVENT_CHUNK_BYTES)
    return total


class CallMeter:
    """Counts what a local cloud's workload uses; thread-safe. Give it to :class:`LocalCloud` (``meter=``).

    :meth:`reset` zeroes it, :meth:`reading` returns a :class:`MeterReading`. The counts are made as requests run,
    except ``dynamodb_stored_bytes`` and the Step Functions figures, read from moto when :meth:`reading` is called.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._functions: dict[str, FunctionDefinition] = {}
        self._labels: dict[str, str] = {}
        self._tables: tuple[str, ...] = ()
        self._clients: MotoClients | None = None
        self._executions_before: set[str] = set()
        self._zero()

    def _zero(self) -> None:
        self._calls: Counter[str] = Counter()
        self._by_function: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._integration: Counter[str] = Counter()
        self._poller: Counter[str] = Counter()
        self._read_units = 0.0
        self._write_units = 0.0
        self._sqs: Counter[str] = Counter()
        self._events = 0
        self._invocations: Counter[str] = Counter()
        self._duration: defaultdict[str, float] = defaultdict(float)
        self._billed: defaultdict[str, float] = defaultdict(float)
        self._in_flight = getattr(self, "_in_flight", 0)  # running invocations outlive a reset
        self._log_bytes: Counter[str] = Counter()
        self._api: Counter[str] = Counter()
        self._frames = 0
        self._connection_ms = 0.0

    # -- what local mode tells the meter ------------------------------------------------------------------------------

    def watch(self, endpoint_url: str, deployments: Iterable[StackDeployment]) -> None:
        """Read moto at ``endpoint_url`` for the storage of the deployed stacks' tables and for Step Functions."""
        tables = tuple(r.physical_id for d in deployments for t in _TABLE_TYPES for r in d.of_type(t) if not r.placeholder)
        with self._lock:
            self._tables = tables
            if self._clients is None or self._clients.endpoint_url != endpoint_url:
                self._clients = MotoClients(endpoint_url)

    def function_added(self, label: str, definition: FunctionDefinition) -> None:
        with self._lock:
            self._functions[label] = definition
            self._labels[function_app_id(definition.name)] = label

    def invoking(self, label: str) -> None:
        with self._lock:
            self._in_flight += 1

    def invoked(self, label: str, result: InvocationResult | None) -> None:
        with self._lock:
            self._in_flight -= 1
            if result is None:  # throttled, or its environment could not start: Lambda bills nothing
                return
            self._invocations[label] += 1
            self._duration[label] += result.handler_ms
            self._billed[label] += math.ceil(result.handler_ms)

    def logged(self, label: str, size: int) -> None:
        with self._lock:
            self._log_bytes[label] += size

    def api_request(self, api_id: str) -> None:
        with self._lock:
            self._api[api_id] += 1

    def websocket_frames(self, size: int) -> None:
        with self._lock:
            self._frames += _chunks(size, WEBSOCKET_CHUNK_BYTES)

    def websocket_closed(self, connected_ms: float) -> None:
        with self._lock:
            self._connection_ms += max(0.0, connected_ms)

    # -- moto's requests ------------------------------------------------------------------------------------------------

    def middleware(self, app: WsgiApp) -> WsgiApp:
        """``app`` (moto's server) with every request made by a function, a Step Functions integration or a poller
        counted. Also counts the items ``Query`` and ``Scan`` read, until :meth:`close`."""
        install_scan_seam(True)

        def metered(environ: dict[str, Any], start_response: Any) -> Any:
            app_id = caller_app_id(environ)
            kind = caller_kind(app_id)
            if kind not in ("function", "integration", "poller"):
                return app(environ, start_response)
            call = aws_call(environ, read_body(environ))
            if kind == "poller":
                with self._lock:
                    self._poller[call.key] += 1
                return app(environ, start_response)
            capacity = (
                RequestCapacity(call.operation, call.params)
                if call.service == "dynamodb" and is_metered(call.operation)
                else None
            )
            if capacity is not None:
                capacity.before()
            try:
                return app(environ, start_response)
            finally:
                units = capacity.after() if capacity is not None else (0.0, 0.0)
                self._count(call, self._labels.get(str(app_id), str(app_id)) if kind == "function" else None, units)

        return metered

    def _count(self, call: AwsCall, function: str | None, units: tuple[float, float]) -> None:
        sqs = sqs_requests(call) if call.service == "sqs" else None
        events = eventbridge_events(call) if call.key == "events:PutEvents" else 0
        with self._lock:
            self._calls[call.key] += 1
            if function is None:
                self._integration[call.key] += 1
            else:
                self._by_function[function][call.key] += 1
            self._read_units += units[0]
            self._write_units += units[1]
            if sqs is not None:
                self._sqs[sqs[0]] += sqs[1]
            self._events += events

    def close(self) -> None:
        """Stop counting the items ``Query`` and ``Scan`` read (local mode stopped)."""
        install_scan_seam(False)

    # -- reset and reading ----------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Zero every count; executions started before now no longer count."""
        executions = set(self._execution_arns())
        with self._lock:
            self._zero()
            self._executions_before = executions

    def _execution_arns(self) -> list[str]:
        if self._clients is None:
            return []
        sfn = self._clients("stepfunctions")
        arns: list[str] = []
        for machines in sfn.get_paginator("list_state_machines").paginate():
            for machine in machines["stateMachines"]:
                for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"]):
                    arns.extend(e["executionArn"] for e in page["executions"])
        return arns

    def _transitions(self) -> tuple[int, int]:
        """(executions started since the reset, their ``*StateEntered`` events: Standard workflows' billed transitions)."""
        if self._clients is None:
            return 0, 0
        sfn = self._clients("stepfunctions")
        executions = [arn for arn in self._execution_arns() if arn not in self._executions_before]
        transitions = 0
        for arn in executions:
            for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
                transitions += sum(1 for event in page["events"] if str(event["type"]).endswith("StateEntered"))
        return len(executions), transitions

    def reading(self, *, storage: bool = True) -> MeterReading:
        """What was used since :meth:`reset` (or since local mode started).

        Parameters
        ----------
        storage:
            Read moto's tables and executions for ``dynamodb_stored_bytes`` and the Step Functions figures; False leaves
            them empty and 0, for a cheap reading (polling ``in_flight``). Default: true.
        """
        executions, transitions = self._transitions() if storage else (0, 0)
        stored = {name: size for name in self._tables if (size := stored_bytes(name)) is not None} if storage else {}
        with self._lock:
            functions = {
                label: FunctionUse(
                    invocations=self._invocations[label],
                    duration_ms=round(self._duration[label], 3),
                    billed_ms=self._billed[label],
                    memory_mb=definition.memory_size,
                    architecture=definition.architecture,
                    log_bytes=self._log_bytes[label],
                )
                for label, definition in self._functions.items()
            }
            return MeterReading(
                calls=dict(self._calls),
                calls_by_function={label: dict(calls) for label, calls in self._by_function.items()},
                integration_calls=dict(self._integration),
                poller_calls=dict(self._poller),
                dynamodb_read_units=self._read_units,
                dynamodb_write_units=self._write_units,
                dynamodb_stored_bytes=stored,
                sqs_requests=dict(self._sqs),
                eventbridge_events=self._events,
                sfn_transitions=transitions,
                sfn_executions=executions,
                lambda_functions=functions,
                api_requests=dict(self._api),
                websocket_messages=self._frames,
                websocket_connection_ms=self._connection_ms,
                in_flight=self._in_flight,
            )


__all__ = ["CallMeter", "FunctionUse", "MeterReading", "eventbridge_events", "sqs_requests"]
