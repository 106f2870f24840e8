"""Run kinds of request through a local cloud and count what they use: the raw counts of ``calls.RAW_COUNTS``.

Local mode's call meter (``agentrail_local.metering``) counts the AWS calls the functions make (not local mode's
own), DynamoDB capacity units and stored bytes, SQS requests, EventBridge events, Step Functions transitions,
Lambda invocations with their billed time and memory, API requests and log bytes. The model calls and tokens are
read from the functions' own EMF metrics (``Steps``, ``InputTokens``, ``OutputTokens``) in their log files, as
CloudWatch would read them.

Each batch runs its requests, waits for everything they set off (queues, workflows, webhooks) to end, and reads
the meter. Waiting peeks at the task table through local mode's own clients, which the meter does not count.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentrail_cli.client import AgentApiClient, IamAuth
from agentrail_cli.plan.calls import CallCounts
from agentrail_cli.plan.workloads import VARIANTS, Kind

if TYPE_CHECKING:
    from agentrail_local.cloud import LocalCloud
    from agentrail_local.metering import MeterReading

__all__ = ["Batch", "MeasureError", "PatternRunner", "raw_counts"]

FINISHED = ("succeeded", "failed", "cancelled", "timed_out", "budget_exceeded", "max_steps_exceeded")
#: How long a batch may take to finish everything it set off.
BATCH_TIMEOUT = 300.0
#: Quiet time after which nothing more is running (no new invocation).
QUIET = 1.5
_EMF = ("Steps", "InputTokens", "CacheReadTokens", "CacheWriteTokens", "OutputTokens")
#: The EMF metrics whose sum is a run's whole input (plain, read from the prompt cache, written to it).
_INPUT = ("InputTokens", "CacheReadTokens", "CacheWriteTokens")


class MeasureError(RuntimeError):
    """A measured request did not do what the workload expects (a status, a timeout); one sentence."""


@dataclass
class Batch:
    """One batch of tasks of a variant: the raw counts over the whole batch."""

    variant: str
    label: str
    tasks: int
    totals: dict[str, float] = field(default_factory=dict)
    #: The custom metric series (namespace, name, dimension values) the batch's functions put.
    series: set[str] = field(default_factory=set)

    def per_task(self) -> dict[str, float]:
        """Each raw count divided by the tasks of the batch."""
        return {name: value / self.tasks for name, value in self.totals.items()}


def _series(record: dict[str, Any]) -> set[str]:
    """The metric series an EMF record puts: namespace, metric name and dimension values, one per dimension set."""
    found: set[str] = set()
    for directive in record["_aws"].get("CloudWatchMetrics") or []:
        namespace = directive.get("Namespace", "")
        for dimensions in directive.get("Dimensions") or [[]]:
            values = ",".join(f"{d}={record.get(d)}" for d in sorted(dimensions))
            found.update(f"{namespace}/{metric.get('Name')}/{values}" for metric in directive.get("Metrics") or [])
    return found


def _emf_values(lines: Sequence[str], series: set[str] | None = None) -> dict[str, float]:
    """Sums of the ``Steps``, token (:data:`_EMF`) values of the EMF records among ``lines``; the records' metric
    series are added to ``series``."""
    totals = dict.fromkeys(_EMF, 0.0)
    for line in lines:
        start = line.find("{")
        if start < 0 or '"_aws"' not in line:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("_aws"), dict):
            continue
        if series is not None:
            series.update(_series(record))
        for name in _EMF:
            value = record.get(name)
            if isinstance(value, int | float):
                totals[name] += float(value)
            elif isinstance(value, list):
                totals[name] += float(sum(v for v in value if isinstance(v, int | float)))
    return totals


#: The variants whose metric series make up each template key's custom metrics (a stack streams or it does not).
METRIC_SERIES_OF = {
    "stateless": ("request",),
    "stateful": ("session_start", "turn"),
    "stateful_streaming": ("session_start", "stream_connect", "stream_turn"),
    "async": ("task", "long_task", "reviewed_task"),
    "multiagent": ("routed",),
    "hierarchical": ("research",),
}
#: Which DynamoDB tables keep their items for how long: by the logical id of the table (first match).
_STORAGE_ROLES = (("Idempotency", "idempotency"), ("Approval", "approvals"))


def raw_counts(
    reading: MeterReading, emf: dict[str, dict[str, float]], stored_before: dict[str, int], roles: dict[str, str]
) -> dict[str, float]:
    """The raw counts (``calls.RAW_COUNTS``) of one batch, from the meter's reading and the functions' EMF sums.

    Parameters
    ----------
    reading:
        The meter's reading at the batch's end (reset at its start).
    emf:
        Per function logical id, the sums of its EMF ``Steps``, ``InputTokens`` and ``OutputTokens`` in the batch.
    stored_before:
        Bytes stored per table when the batch started.
    roles:
        Per table name: ``records``, ``approvals`` or ``idempotency`` (how long its items are kept).
    """
    functions = reading.lambda_functions
    steps = {fid: values["Steps"] for fid, values in emf.items() if values["Steps"] > 0}
    model_calls = sum(steps.values())
    memory = {fid: use.memory_mb / 1024.0 for fid, use in functions.items()}
    weighted = sum(memory.get(fid, 1.0) * n for fid, n in steps.items()) / model_calls if model_calls else 1.0
    stored = {"records": 0.0, "approvals": 0.0, "idempotency": 0.0}
    for table, size in reading.dynamodb_stored_bytes.items():
        stored[roles.get(table, "records")] += max(0, size - stored_before.get(table, 0))
    sends = sum(n for call, n in reading.calls.items() if call in ("sqs:SendMessage", "sqs:SendMessageBatch"))
    return {
        "model_calls": model_calls,
        "input_tokens": sum(v[name] for v in emf.values() for name in _INPUT),
        "output_tokens": sum(v["OutputTokens"] for v in emf.values()),
        "aws_calls": float(sum(reading.calls.values())),
        "lambda_requests": float(sum(use.invocations for use in functions.values())),
        "lambda_framework_gb_seconds": sum(use.billed_ms / 1000.0 * use.memory_mb / 1024.0 for use in functions.values()),
        "model_function_memory_gb": weighted * model_calls,  # divided by model calls when priced
        "api_requests": float(sum(reading.api_requests.values())),
        "websocket_messages": float(reading.websocket_messages),
        "dynamodb_read_units": reading.dynamodb_read_units,
        "dynamodb_write_units": reading.dynamodb_write_units,
        "dynamodb_stored_bytes": stored["records"],
        "dynamodb_approval_bytes": stored["approvals"],
        "dynamodb_idempotency_bytes": stored["idempotency"],
        "sqs_requests": float(reading.sqs_requests.get("standard", 0)),
        "sqs_fifo_requests": float(reading.sqs_requests.get("fifo", 0)),
        "sqs_messages": float(sends),
        "eventbridge_events": float(reading.eventbridge_events),
        "sfn_transitions": float(reading.sfn_transitions),
        "log_bytes": float(sum(use.log_bytes for use in functions.values())),
    }


class PatternRunner:
    """Runs batches of a variant's requests on a started :class:`LocalCloud` that has a call meter.

    Parameters
    ----------
    cloud:
        A started local cloud with ``meter`` set, serving the variant's pattern.
    say:
        Progress lines. Default: none.
    """

    def __init__(self, cloud: LocalCloud, *, say: Callable[[str], None] | None = None) -> None:
        if cloud.meter is None:
            raise ValueError("the local cloud has no call meter: start it with LocalCloud(meter=CallMeter())")
        self.cloud = cloud
        self._say = say or (lambda _: None)
        self._signers = {p.name: IamAuth.from_keys(p.access_key_id, p.secret_access_key) for p in cloud.principals}
        self._caller = cloud.principals[0].name
        self._roles = self._table_roles()

    # -- plumbing ---------------------------------------------------------------------------------

    def _client(self, pattern: str, principal: str | None = None) -> AgentApiClient:
        endpoint = self.cloud.endpoint(pattern=pattern)
        return AgentApiClient(endpoint.url, auth=self._signers[principal or self._caller], timeout=120.0)

    def _tables(self) -> dict[str, dict[str, Any]]:
        tables: dict[str, dict[str, Any]] = {}
        for deployment in self.cloud.deployments:
            for resource in deployment.of_type("AWS::DynamoDB::Table"):
                tables[str(resource.ref)] = {
                    "logical_id": resource.logical_id,
                    "stack": deployment.stack_name,
                    **resource.properties,
                }
        return tables

    def _table_roles(self) -> dict[str, str]:
        roles = {}
        for name, table in self._tables().items():
            roles[name] = next((role for marker, role in _STORAGE_ROLES if marker in table["logical_id"]), "records")
        return roles

    def _task_table(self, pattern: str) -> str:
        stack = self.cloud.endpoint(pattern=pattern).stack
        for name, table in self._tables().items():
            keys = [k.get("AttributeName") for k in table.get("KeySchema", [])]
            if table["stack"] == stack and keys[:1] == ["task_id"]:
                return name
        raise MeasureError(f"the {pattern} stack has no task table")

    def _log_offsets(self) -> dict[str, tuple[Path, int]]:
        assert self.cloud.environments is not None
        offsets = {}
        for definition in self.cloud.environments.functions:
            path = self.cloud.environments.log_file(definition.name)
            offsets[definition.logical_id] = (path, path.stat().st_size if path.exists() else 0)
        return offsets

    def _emf_since(self, offsets: dict[str, tuple[Path, int]], series: set[str]) -> dict[str, dict[str, float]]:
        sums = {}
        for logical_id, (path, start) in offsets.items():
            if not path.exists():
                continue
            with path.open("rb") as handle:
                handle.seek(start)
                lines = handle.read().decode("utf-8", errors="replace").splitlines()
            sums[logical_id] = _emf_values(lines, series)
        return sums

    def _settle(self) -> None:
        """Wait until no function has been invoked for :data:`QUIET` seconds (and none is running)."""
        assert self.cloud.meter is not None
        deadline = time.monotonic() + BATCH_TIMEOUT
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            reading = self.cloud.meter.reading(storage=False)
            count = sum(use.invocations for use in reading.lambda_functions.values()) + reading.in_flight
            if count != last:
                last, since = count, time.monotonic()
            elif reading.in_flight == 0 and time.monotonic() - since >= QUIET:
                return
            time.sleep(0.2)
        raise MeasureError(f"the batch did not settle within {BATCH_TIMEOUT:.0f} s")

    def _status(self, table: str, task_id: str) -> str:
        assert self.cloud.clients is not None
        item = self.cloud.clients("dynamodb").get_item(TableName=table, Key={"task_id": {"S": task_id}}, ConsistentRead=True)
        return str(item.get("Item", {}).get("status", {}).get("S", ""))

    def _wait_for(self, table: str, task_ids: Sequence[str], statuses: Sequence[str]) -> None:
        deadline = time.monotonic() + BATCH_TIMEOUT
        pending = list(task_ids)
        while pending and time.monotonic() < deadline:
            pending = [t for t in pending if self._status(table, t) not in statuses]
            if pending:
                time.sleep(0.2)
        if pending:
            raise MeasureError(f"{len(pending)} tasks did not reach {'/'.join(statuses)} within {BATCH_TIMEOUT:.0f} s")

    # -- batches ----------------------------------------------------------------------------------

    def run(self, variant: str, kinds: Sequence[Kind], *, label: str, turns_per_session: int = 4) -> Batch:
        """Run one batch: every kind in ``kinds`` once, as one task each (a turn each for ``turn``).

        Raises
        ------
        MeasureError
            When a request fails or the batch does not finish in time.
        """
        assert self.cloud.meter is not None
        pattern = VARIANTS[variant].pattern
        prepared = self._prepare(variant, pattern, len(kinds), turns_per_session)
        try:
            self._settle()
            offsets = self._log_offsets()
            stored_before = self.cloud.meter.reading().dynamodb_stored_bytes
            self.cloud.meter.reset()
            self._say(f"  {variant}: {label}, {len(kinds)} tasks")
            getattr(self, f"_run_{variant}")(pattern, kinds, prepared)
            self._settle()
            time.sleep(0.3)  # the last log lines reach their files
            reading = self.cloud.meter.reading()
        finally:
            for socket in {id(s): s for s in prepared.get("sockets", [])}.values():
                socket.close()
        series: set[str] = set()
        totals = raw_counts(reading, self._emf_since(offsets, series), stored_before, self._roles)
        if VARIANTS[variant].regressor == "subtasks":
            totals["subtasks"] = float(sum(kind.subtasks for kind in kinds))
        return Batch(variant=variant, label=label, tasks=len(kinds), totals=totals, series=series)

    def _prepare(self, variant: str, pattern: str, count: int, turns_per_session: int) -> dict[str, list[Any]]:
        """What a batch needs before the meter starts: sessions for turns (a connection each, to stream them)."""
        if variant not in ("turn", "stream_turn", "stream_connect"):
            return {}
        per_session = 1 if variant == "stream_connect" else turns_per_session
        with self._client(pattern) as client:
            opened = range(-(-count // per_session))
            sessions = [self._expect(client.request("POST", "/sessions", json={}), 201)["session_id"] for _ in opened]
            prepared: dict[str, list[Any]] = {"sessions": [sessions[i // per_session] for i in range(count)]}
            if variant == "stream_turn":
                sockets = [self._connect(client, pattern, session) for session in sessions]
                prepared["sockets"] = [sockets[i // per_session] for i in range(count)]
        return prepared

    def _connect(self, client: AgentApiClient, pattern: str, session: str) -> Any:
        """A WebSocket connection to the pattern's streaming API, with a connect ticket for ``session``."""
        from urllib.parse import urlencode

        from websockets.sync.client import connect

        ticket = self._expect(client.request("POST", f"/sessions/{session}/stream-ticket"), 201)["ticket"]
        (stream,) = [ws for ws in self.cloud.websocket_endpoints() if ws.pattern == pattern]
        return connect(f"{stream.url}?{urlencode({'ticket': ticket})}", open_timeout=60)

    @staticmethod
    def _expect(response: Any, status: int) -> Any:
        if response.status_code != status:
            raise MeasureError(
                f"{response.request.method} {response.request.url.path} answered {response.status_code}, not {status}: {response.text[:200]}"
            )
        return response.json()

    def _run_request(self, pattern: str, kinds: Sequence[Kind], _: dict[str, list[Any]]) -> None:
        with self._client(pattern) as client:
            for kind in kinds:
                self._expect(client.request("POST", "/invoke", json=kind.body), 200)

    def _run_session_start(self, pattern: str, kinds: Sequence[Kind], _: dict[str, list[Any]]) -> None:
        with self._client(pattern) as client:
            for kind in kinds:
                self._expect(client.request("POST", "/sessions", json=kind.body), 201)

    def _run_turn(self, pattern: str, kinds: Sequence[Kind], prepared: dict[str, list[Any]]) -> None:
        with self._client(pattern) as client:
            for kind, session in zip(kinds, prepared["sessions"], strict=True):
                self._expect(client.request("POST", f"/sessions/{session}/messages", json=kind.body), 200)

    def _run_stream_connect(self, pattern: str, kinds: Sequence[Kind], prepared: dict[str, list[Any]]) -> None:
        with self._client(pattern) as client:
            for session in prepared["sessions"]:
                self._connect(client, pattern, session).close()

    def _run_stream_turn(self, pattern: str, kinds: Sequence[Kind], prepared: dict[str, list[Any]]) -> None:
        import uuid

        for kind, session, socket in zip(kinds, prepared["sessions"], prepared["sockets"], strict=True):
            message_id = uuid.uuid4().hex
            frame = {"action": "sendMessage", "session_id": session, "text": kind.body["message"], "message_id": message_id}
            socket.send(json.dumps(frame))
            while True:
                event = json.loads(socket.recv(timeout=BATCH_TIMEOUT))
                if event.get("type") == "error":
                    raise MeasureError(f"a streamed turn was refused: {str(event)[:200]}")
                if event.get("message_id") == message_id and event.get("type") == "final":
                    break

    def _submit(self, client: AgentApiClient, kinds: Sequence[Kind]) -> list[str]:
        return [self._expect(client.request("POST", "/tasks", json=kind.body), 202)["task_id"] for kind in kinds]

    def _run_task(self, pattern: str, kinds: Sequence[Kind], _: dict[str, list[Any]]) -> None:
        # One task at a time: a burst would share queue batches, and invocations per task would depend on timing.
        table = self._task_table(pattern)
        with self._client(pattern) as client:
            for kind in kinds:
                (task_id,) = self._submit(client, [kind])
                self._wait_for(table, [task_id], FINISHED)
                self._expect(client.request("GET", f"/tasks/{task_id}"), 200)

    _run_long_task = _run_task
    _run_routed = _run_task
    _run_research = _run_task

    def _run_reviewed_task(self, pattern: str, kinds: Sequence[Kind], _: dict[str, list[Any]]) -> None:
        from agentrail_local.apigateway.auth import APPROVER

        table = self._task_table(pattern)
        with self._client(pattern) as client, self._client(pattern, APPROVER) as approver:
            for kind in kinds:
                (task_id,) = self._submit(client, [kind])
                self._wait_for(table, [task_id], ("waiting_approval", *FINISHED))
                pending = self._expect(approver.request("GET", "/approvals?status=pending"), 200)["approvals"]
                approval = next((a for a in pending if a.get("task_id") == task_id), None)
                if approval is None:
                    raise MeasureError(f"task {task_id} has no pending approval")
                decision = {"decision": "approve", "comment": "measured"}
                self._expect(approver.request("POST", f"/approvals/{approval['approval_id']}/decision", json=decision), 200)
                self._wait_for(table, [task_id], FINISHED)
                self._expect(client.request("GET", f"/tasks/{task_id}"), 200)


# -- whole runs -------------------------------------------------------------------------------------


_TEMPLATE_COUNTS = {
    "alarms": "AWS::CloudWatch::Alarm",
    "dashboards": "AWS::CloudWatch::Dashboard",
    "secrets": "AWS::SecretsManager::Secret",
    "kms_keys": "AWS::KMS::Key",
    "functions": "AWS::Lambda::Function",
    "queues": "AWS::SQS::Queue",
    "tables": "AWS::DynamoDB::Table",
    "state_machines": "AWS::StepFunctions::StateMachine",
}


def _pattern_of(resources: dict[str, Any]) -> str | None:
    """The ``agentrail:pattern`` tag of the stack's API (a REST API's tag list, or an HTTP API's tag map)."""
    from agentrail_local.apigateway.model import PATTERN_TAG

    for resource in resources.values():
        tags = (resource.get("Properties") or {}).get("Tags")
        if resource.get("Type") == "AWS::ApiGateway::RestApi" and isinstance(tags, list):
            found = {tag.get("Key"): tag.get("Value") for tag in tags if isinstance(tag, dict)}
            if isinstance(found.get(PATTERN_TAG), str):
                return str(found[PATTERN_TAG])
        if resource.get("Type") == "AWS::ApiGatewayV2::Api" and isinstance(tags, dict) and isinstance(tags.get(PATTERN_TAG), str):
            return str(tags[PATTERN_TAG])
    return None


def template_counts(assembly: Path) -> dict[str, dict[str, int]]:
    """Per pattern, how many resources of each fixed-cost kind its stack's template holds (and its agent functions)."""
    from agentrail_local.cloudformation.assembly import CloudAssembly

    counts: dict[str, dict[str, int]] = {}
    for stack in CloudAssembly.load(assembly).stacks:
        resources = dict(stack.template.get("Resources", {}))
        pattern = _pattern_of(resources)
        if pattern is None:
            continue
        kinds = {name: sum(1 for r in resources.values() if r.get("Type") == kind) for name, kind in _TEMPLATE_COUNTS.items()}
        # An interface endpoint bills per hour in each subnet's Availability Zone.
        kinds["vpc_endpoint_azs"] = sum(
            len((r.get("Properties") or {}).get("SubnetIds") or [])
            for r in resources.values()
            if r.get("Type") == "AWS::EC2::VPCEndpoint" and (r.get("Properties") or {}).get("VpcEndpointType") == "Interface"
        )
        kinds["agent_functions"] = sum(
            1
            for r in resources.values()
            if r.get("Type") == "AWS::Lambda::Function"
            and "AGENT_DEFINITION" in ((r.get("Properties") or {}).get("Environment") or {}).get("Variables", {})
        )
        counts[pattern] = kinds
    return counts


class MeteredCloud:
    """A local cloud of ``assembly`` with a call meter, started for measuring, and its :class:`PatternRunner`.

    Use as a context manager; the cloud stops on exit. One per process (moto keeps its state in module globals).
    """

    def __init__(self, assembly: Path, state_dir: Path, *, say: Callable[[str], None] | None = None) -> None:
        from agentrail_local.cloud import LocalCloud
        from agentrail_local.metering import CallMeter

        self.cloud = LocalCloud(
            assembly, port=0, state_dir=state_dir, meter=CallMeter(), warn=lambda _: None, notice=lambda _: None
        )
        self._say = say

    def __enter__(self) -> PatternRunner:
        self.cloud.start()
        return PatternRunner(self.cloud, say=self._say)

    def __exit__(self, *_: object) -> None:
        self.cloud.stop()


def calibrate(
    runner: PatternRunner,
    variants: Sequence[str],
    *,
    tasks_per_kind: int,
    generated_by: str,
    templates: dict[str, dict[str, int]],
) -> CallCounts:
    """Run every kind of each variant in its own batch and fit each raw count to a line in the model calls.

    This is what writes the call-count file (``benchmarks/plan_calls.py``): never typed by hand.
    """
    from agentrail_cli.plan.calls import HASHED_PACKAGES, MeasuredKind, VariantCounts, code_hash, fit_line
    from agentrail_cli.plan.workloads import KINDS, TURNS_PER_SESSION

    variant_counts = {}
    series: dict[str, set[str]] = {}
    for variant in variants:
        measured = []
        for kind in KINDS[variant]:
            batch = runner.run(variant, [kind] * tasks_per_kind, label=kind.label, turns_per_session=TURNS_PER_SESSION)
            series.setdefault(variant, set()).update(batch.series)
            measured.append(
                MeasuredKind(label=kind.label, tasks=batch.tasks, counts={k: round(v, 6) for k, v in batch.per_task().items()})
            )
        info = VARIANTS[variant]
        x = info.regressor
        names = sorted({name for m in measured for name in m.counts} - {x})
        lines = {name: fit_line([(m.counts[x], m.counts.get(name, 0.0)) for m in measured]) for name in names}
        variant_counts[variant] = VariantCounts(
            pattern=info.pattern, unit=info.unit, regressor=info.regressor, lines=lines, kinds=measured
        )
    templates = {pattern: dict(kinds) for pattern, kinds in templates.items()}
    for key, uses in METRIC_SERIES_OF.items():
        if key in templates:
            templates[key]["custom_metrics"] = len(set().union(*(series.get(v, set()) for v in uses)))
    return CallCounts(
        generated_by=generated_by,
        code_hash=code_hash(),
        hashed_packages=list(HASHED_PACKAGES),
        variants=variant_counts,
        templates=templates,
    )


def check_mix(runner: PatternRunner, variant: str, *, repeat: int = 1) -> Batch:
    """One batch of the variant's check mix (:data:`workloads.CHECK_MIX`), ``repeat`` times over."""
    from agentrail_cli.plan.workloads import CHECK_MIX, KINDS, TURNS_PER_SESSION

    by_label = {kind.label: kind for kind in KINDS[variant]}
    kinds = [by_label[label] for label, count in CHECK_MIX[variant] for _ in range(count * repeat)]
    return runner.run(variant, kinds, label="check mix", turns_per_session=TURNS_PER_SESSION + 2)
