"""Fixtures of the integration tier: handlers and providers against moto, botocore Stubber and httpx MockTransport."""

from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from moto.awslambda.responses import LambdaResponse
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.exceptions import JsonRESTError

from agentrail_local.awslambda.event_sources import sqs_event as lambda_sqs_event
from agentrail_runtime import contract
from agentrail_runtime.agent.secrets import granted_tool_secrets
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.models.base import ModelProvider
from agentrail_runtime.models.bedrock import client_config
from agentrail_runtime.models.registry import ModelSpec, parse_model_spec
from agentrail_runtime.observability import metrics
from agentrail_runtime.service import AgentService

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The caller of the shared API events (events/<pattern>/*.json), as principal_of names it.
OWNER = "iam:arn:aws:iam::123456789012:role/agentrail-caller"


@pytest.fixture(autouse=True)
def _no_metrics_left_over() -> Iterator[None]:
    # Apps built in tests emit into the function's Metrics without a handler to flush them;
    # Powertools keeps that metric set at class level, so it would leak into the next test.
    yield
    metrics.clear_metrics()


@pytest.fixture
def agent_env(env: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment without any AGENT_* variable of the machine running the tests; the tool secrets, read once
    per execution environment, are read again from it (before and after the test)."""
    for name in [n for n in os.environ if n.startswith("AGENT_")]:
        env.delenv(name)
    granted_tool_secrets.cache_clear()
    yield env
    granted_tool_secrets.cache_clear()


class FixedProviders:
    """Serves ready-made providers by model spec: the ``get`` that AgentService calls on its ProviderFactory."""

    def __init__(self, *providers: ModelProvider) -> None:
        self._providers = {provider.name: provider for provider in providers}

    def get(self, spec: str | ModelSpec) -> ModelProvider:
        parsed = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
        return self._providers[parsed.canonical]


@pytest.fixture
def demo_service(agent_env) -> Callable[..., AgentService]:
    """Build the demo agent's service with the given settings and, optionally, ready-made providers."""

    def build(*providers: ModelProvider, **settings: Any) -> AgentService:
        return AgentService(
            definition=demo_definition,
            settings=RuntimeSettings(**settings),
            providers=FixedProviders(*providers) if providers else None,
        )

    return build


class EveryModel:
    """Serves one ready-made model whatever spec is asked for (a test model under any configured name)."""

    def __init__(self, model: ModelProvider) -> None:
        self.model = model

    def get(self, spec: str | ModelSpec) -> ModelProvider:
        return self.model


@pytest.fixture
def agents_with(agent_env) -> Callable[..., AgentService]:
    """An AgentService whose every model is ``model`` (and whose tools are ``definition``'s, the demo's by default)."""

    def build(model: ModelProvider, *, definition: Any = demo_definition, **settings: Any) -> AgentService:
        return AgentService(definition=definition, settings=RuntimeSettings(**settings), providers=EveryModel(model))

    return build


def response_headers(response: dict) -> dict[str, str]:
    """Single-valued view of a REST (v1) proxy response's ``multiValueHeaders``."""
    return {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()} | (
        response.get("headers") or {}
    )


@pytest.fixture
def headers_of() -> Callable[[dict], dict[str, str]]:
    return response_headers


@pytest.fixture
def sqs_event() -> Callable[[list[dict[str, Any]], str], dict[str, Any]]:
    """``sqs_event(messages, queue_arn)``: the event Lambda's SQS poller builds from received messages (events/*/…-batch.json).

    The one local mode's pollers build, in this tests' Region.
    """
    return functools.partial(lambda_sqs_event, region="us-east-1")


@pytest.fixture
def owner() -> str:
    """The principal of the caller of the shared API events (events/<pattern>/*.json)."""
    return OWNER


def aim_event(
    event: dict[str, Any],
    *,
    path_parameters: Mapping[str, str] | None = None,
    body: Any = ...,
    query: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of a REST (v1) proxy event with other path parameters, body or query string, where given.

    ``body`` other than a string or ``None`` (no body) is sent as JSON.
    """
    aimed = copy.deepcopy(event)
    if path_parameters:
        for name, value in path_parameters.items():
            template = aimed["pathParameters"][name]
            aimed["path"] = aimed["path"].replace(template, value)
            aimed["requestContext"]["path"] = aimed["requestContext"]["path"].replace(template, value)
        aimed["pathParameters"] = dict(path_parameters)
    if body is not ...:
        aimed["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    if query is not None:
        aimed["queryStringParameters"] = dict(query)
        aimed["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    return aimed


@pytest.fixture
def aimed_event() -> Callable[..., dict[str, Any]]:
    """``aimed_event(event, path_parameters=..., body=..., query=...)``: see :func:`aim_event`."""
    return aim_event


@dataclass
class Reply:
    """An API response as the tests read it: status, headers, the JSON body parsed, the raw body, and the event sent."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: str
    event: dict[str, Any] = field(repr=False)


@pytest.fixture
def call(lambda_context: Any) -> Callable[[Any, dict[str, Any]], Reply]:
    """``call(app, event)``: resolve a copy of ``event`` with ``app`` (a resolver or a handler function) and parse the response."""

    def invoke(app: Any, event: dict[str, Any]) -> Reply:
        resolve = app.resolve if hasattr(app, "resolve") else app
        response = resolve(copy.deepcopy(event), lambda_context)
        raw = response.get("body") or ""
        return Reply(response["statusCode"], response_headers(response), json.loads(raw) if raw else None, raw, event)

    return invoke


@dataclass(frozen=True)
class TaskEventCapture:
    """A queue that an EventBridge rule fills with every task event of a bus."""

    sqs: Any
    url: str

    def events(self) -> list[dict[str, Any]]:
        """The events delivered so far, each received once (they stay in flight for 30 s)."""
        events: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
            if not batch:
                return events
            events.extend(json.loads(m["Body"]) for m in batch)


def capture_task_events(bus: str, queue_name: str) -> TaskEventCapture:
    """Create the event bus ``bus`` and a rule sending its ``agentrail_runtime.tasks`` events to a new queue (moto must be running)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    events.create_event_bus(Name=bus)
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all-task-events", EventBusName=bus, EventPattern=json.dumps({"source": ["agentrail_runtime.tasks"]}))
    events.put_targets(Rule="all-task-events", EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
    return TaskEventCapture(sqs, url)


@pytest.fixture
def task_event_capture() -> Callable[[str, str], TaskEventCapture]:
    """``task_event_capture(bus, queue_name)``: see :func:`capture_task_events`."""
    return capture_task_events


_IMPORTED_HANDLERS: dict[tuple[str, tuple[tuple[str, str], ...]], ModuleType] = {}


@pytest.fixture
def handler_module(agent_env: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """``agentrail_handlers.<name>.app`` initialized under ``environment`` (moto must be running).

    The first request for a handler and environment imports the module afresh, as a cold start does
    (settings read, clients built); later tests reuse it, as a warm execution environment would, against
    their own moto account. ``exclusive`` also removes every other ``AGENT_*`` variable (another
    function's settings).
    """
    from agentrail_runtime.approvals.settings import load_approval_settings
    from agentrail_runtime.config import load_settings
    from agentrail_runtime.erasure import load_erasure_settings
    from agentrail_runtime.multiagent.settings import load_multi_settings
    from agentrail_runtime.sessions.settings import load_session_settings
    from agentrail_runtime.streaming import load_stream_settings
    from agentrail_runtime.tasks.settings import load_batch_settings, load_task_settings

    caches = (
        load_batch_settings,
        load_settings,
        load_session_settings,
        load_task_settings,
        load_approval_settings,
        load_multi_settings,
        load_erasure_settings,
        load_stream_settings,
    )

    def load(name: str, environment: dict[str, str], *, exclusive: bool = False) -> ModuleType:
        if exclusive:
            for stale in [k for k in os.environ if k.startswith("AGENT_") and k not in environment]:
                agent_env.delenv(stale)
        for key, value in environment.items():
            agent_env.setenv(key, value)
        key = (name, tuple(sorted(environment.items())))
        if key not in _IMPORTED_HANDLERS:
            for cache in caches:
                cache.cache_clear()
            module_name = f"agentrail_handlers.{name}.app"
            sys.modules.pop(module_name, None)
            try:
                _IMPORTED_HANDLERS[key] = importlib.import_module(module_name)
            finally:
                # Other tests import the handler under their own settings.
                sys.modules.pop(module_name, None)
                for cache in caches:
                    cache.cache_clear()
        return _IMPORTED_HANDLERS[key]

    return load


# -- workflows as the constructs render them, executed by moto's Step Functions ----------------

#: Every Lambda task of the rendered workflows invokes this function (the step function's ``live`` alias).
WORKFLOW_FUNCTION = "agentrail-workflow-steps"
WORKFLOW_FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{WORKFLOW_FUNCTION}:live"
#: The function itself: the steps pinned to the version their execution started on invoke it with a ``Qualifier``.
WORKFLOW_FUNCTION_VERSIONS_ARN = WORKFLOW_FUNCTION_ARN.removesuffix(":live")
#: moto whose Step Functions execute, and whose Lambda invocations :class:`WorkflowFunction` answers (no Docker).
WORKFLOW_MOTO_CONFIG: Any = {"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}


def render_definition(template: Mapping[str, Any], definition: Any) -> str:
    """A synthesized ``DefinitionString`` as ASL: pseudo parameters filled in, every Lambda alias is
    :data:`WORKFLOW_FUNCTION_ARN`; any other reference is an error (the test would not know what it is)."""
    pseudo = {
        "AWS::Partition": "aws",
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::URLSuffix": "amazonaws.com",
    }

    def text(part: Any) -> str:
        if isinstance(part, str):
            return part
        if "Fn::GetAtt" in part:
            name, attribute = part["Fn::GetAtt"]
            if template["Resources"][name]["Type"] == "AWS::Lambda::Function" and attribute == "Arn":
                return WORKFLOW_FUNCTION_VERSIONS_ARN
            raise AssertionError(f"the definition refers to {name}.{attribute}, which the workflow tests do not provide")
        reference = part["Ref"]
        if reference in pseudo:
            return pseudo[reference]
        if template["Resources"][reference]["Type"] == "AWS::Lambda::Alias":
            return WORKFLOW_FUNCTION_ARN
        raise AssertionError(f"the definition refers to {reference}, which the workflow tests do not provide")

    if isinstance(definition, str):
        return definition
    separator, parts = definition["Fn::Join"]
    return str(separator).join(text(part) for part in parts)


@pytest.fixture(scope="session")
def workflow_definitions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The ASL of the LongTaskWorkflow (``long``) and the ApprovalWorkflow (``reviewed``) as the constructs
    synthesize them, with every retry wait under a second (``RetryOptions`` of 1 s, capped at 1 s), since moto
    really sleeps between retries. Every Lambda task invokes :data:`WORKFLOW_FUNCTION_ARN`."""
    # Imported here: the CDK (and its Node process) only for the tests that run rendered workflows.
    import aws_cdk as cdk
    from aws_cdk import Duration
    from aws_cdk import aws_events as events

    from agentrail_constructs import (
        ApprovalOptions,
        ApprovalWorkflow,
        LongTaskWorkflow,
        LongTaskWorkflowOptions,
        RetryOptions,
        TaskTable,
    )

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("workflows")), context={**context, "aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Workflows", env=cdk.Environment(account="123456789012", region="us-east-1"))
    table, bus = TaskTable(stack, "Tasks"), events.EventBus(stack, "Bus")
    second = Duration.seconds(1)
    retries = RetryOptions(service_interval=second, model_interval=second, max_delay=second)
    workflows = {
        "long": LongTaskWorkflow(
            stack, "LongTasks", task_table=table, event_bus=bus, options=LongTaskWorkflowOptions(retries=retries)
        ),
        "reviewed": ApprovalWorkflow(
            stack, "Approvals", task_table=table, event_bus=bus, options=ApprovalOptions(retries=retries)
        ),
    }
    template = app.synth().get_stack_by_name(stack.stack_name).template
    return {
        name: render_definition(
            template,
            template["Resources"][stack.get_logical_id(workflow.state_machine.node.default_child)]["Properties"][
                "DefinitionString"
            ],
        )
        for name, workflow in workflows.items()
    }


class InvocationLost(BaseException):
    """Raised by a test's code when the host running the invocation dies before answering (after the tool ran):
    Lambda answers the caller with a 500 ``ServiceException``, which Step Functions names ``Lambda.ServiceException``."""


@pytest.fixture
def invocation_lost() -> type[InvocationLost]:
    """See :class:`InvocationLost`."""
    return InvocationLost


class LambdaServiceException(JsonRESTError):
    code = 500

    def __init__(self, message: str) -> None:
        super().__init__("ServiceException", message)


@dataclass
class Invocation:
    """One invocation of the workflow function: its event, and what it answered (``error``: the error Step Functions saw)."""

    event: dict[str, Any]
    answer: Any = None
    error: str | None = None
    #: The version that ran (Lambda's ``ExecutedVersion``).
    version: str = ""


@dataclass
class WorkflowFunction:
    """The workflow function as moto's Lambda runs it for Step Functions: ``handle(event)`` in this process.

    An exception becomes a function error whose ``errorType`` is its class name, as Lambda's Python runtime
    reports it; :class:`InvocationLost` becomes a Lambda service error.
    """

    handle: Callable[[dict[str, Any]], Any]
    invocations: list[Invocation] = field(default_factory=list)
    #: The version the ``live`` alias points at: a test moves it as a deployment would.
    live_version: str = "1"

    def invoke(self, body: Any, response_headers: dict[str, Any], qualifier: str | None = None) -> bytes:
        event = json.loads(body or b"{}")
        version = self.live_version if qualifier in (None, "live") else str(qualifier)
        response_headers["x-amz-executed-version"] = version
        try:
            answer = self.handle(event)
        except InvocationLost:
            self.invocations.append(Invocation(event, error="Lambda.ServiceException", version=version))
            raise LambdaServiceException("the invocation's host failed") from None
        except Exception as error:
            self.invocations.append(Invocation(event, error=type(error).__name__, version=version))
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
        self.invocations.append(Invocation(event, answer, version=version))
        return json.dumps(answer).encode()

    def errors(self, action: str) -> list[str | None]:
        """The outcome of each invocation of ``action``, in order: the error, or ``None`` when it answered."""
        return [i.error for i in self.invocations if i.event.get("action") == action]


@pytest.fixture
def workflow_function(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[dict[str, Any]], Any]], WorkflowFunction]:
    """``workflow_function(handle)``: moto's invocations of :data:`WORKFLOW_FUNCTION` run ``handle`` (moto started
    with :data:`WORKFLOW_MOTO_CONFIG`); every other function keeps moto's behaviour."""

    def install(handle: Callable[[dict[str, Any]], Any]) -> WorkflowFunction:
        function = WorkflowFunction(handle)
        original = LambdaSimpleBackend.invoke

        def invoke(
            backend: LambdaSimpleBackend, name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
        ) -> Any:
            if WORKFLOW_FUNCTION not in name:
                return original(backend, name, qualifier, body, headers, response_headers)
            named = name.rsplit(f"{WORKFLOW_FUNCTION}:", 1)[1] if f"{WORKFLOW_FUNCTION}:" in name else None
            return function.invoke(body, response_headers, qualifier or named)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
        # moto reads Invoke's qualifier as ``?qualifier=``; boto3 (and Step Functions) send ``?Qualifier=``.
        original_response = LambdaResponse.invoke

        def invoke_with_its_qualifier(response: LambdaResponse) -> Any:
            if "Qualifier" in response.querystring:
                response.querystring.setdefault("qualifier", response.querystring["Qualifier"])
            return original_response(response)

        monkeypatch.setattr(LambdaResponse, "invoke", invoke_with_its_qualifier)
        return function

    return install


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution's history, oldest first."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def failures_in(history: list[dict[str, Any]], state: str) -> list[str]:
    """The errors of the failed attempts (``TaskFailed``) of ``state``, in order, from an execution's history."""
    failures, current = [], None
    for event in history:
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
        elif "stateExitedEventDetails" in event:
            current = None
        elif event["type"] == "TaskFailed" and current == state:
            failures.append(event["taskFailedEventDetails"]["error"])
    return failures


@pytest.fixture
def history() -> Callable[[Any, str], list[dict[str, Any]]]:
    """``history(sfn, execution_arn)``: see :func:`execution_history`."""
    return execution_history


@pytest.fixture
def failures() -> Callable[[list[dict[str, Any]], str], list[str]]:
    """``failures(history, state)``: see :func:`failures_in`."""
    return failures_in


@pytest.fixture
def refuse_put_events_once(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], list[str]]:
    """``refuse(tasks)``: EventBridge cannot be reached for the first PutEvents of that TaskService (a botocore hook
    raising before the call, as when the endpoint is unreachable); returns the refused calls, as they happen."""

    def refuse(tasks: Any) -> list[str]:
        refused: list[str] = []
        events = boto3.client("events")

        def unreachable(**_: Any) -> None:
            if not refused:
                refused.append("PutEvents")
                raise EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com")

        events.meta.events.register("before-call.events.PutEvents", unreachable)
        monkeypatch.setattr(tasks.events, "client", events)
        return refused

    return refuse


@pytest.fixture
def feedback_records(stdout_records: Callable[[], list[dict]]) -> Callable[[], list[dict[str, Any]]]:
    """The feedback EMF records (``FeedbackScore``, ``Feedback_up``/``Feedback_down``) written to stdout since the
    last read of ``stdout_records``."""

    def read() -> list[dict[str, Any]]:
        return [
            record
            for record in stdout_records()
            if "_aws" in record
            and any(m["Name"].startswith("Feedback") for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"])
        ]

    return read


@pytest.fixture
def client():
    """A real bedrock-runtime client (moto has neither Converse nor ApplyGuardrail): stub it with ``stub``."""
    return boto3.client("bedrock-runtime", region_name="us-east-1", config=client_config(read_timeout=5.0))


@pytest.fixture
def stub(client) -> Iterator[Stubber]:
    """botocore's Stubber on ``client``; every queued response must be used."""
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def create_table(
    dynamodb: Any,
    name: str,
    *keys: str,
    indexes: Mapping[str, str | tuple[str, str]] | None = None,
    ttl: str | None = None,
    numbers: Collection[str] = (),
) -> str:
    """A moto table as the constructs declare it: ``keys`` (partition, then sort; strings, except the attributes
    ``numbers`` names), keys-only global secondary ``indexes`` (name: partition key, or (partition, sort)), on
    demand, with TTL on ``ttl`` if given. Returns its name."""
    indexed = {name: (keys_of,) if isinstance(keys_of, str) else keys_of for name, keys_of in (indexes or {}).items()}
    definition: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": k, "KeyType": kind} for k, kind in zip(keys, ("HASH", "RANGE"), strict=False)],
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": "N" if a in numbers else "S"}
            for a in sorted({*keys, *(a for keys_of in indexed.values() for a in keys_of)})
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if indexed:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": attribute, "KeyType": kind}
                    for attribute, kind in zip(keys_of, ("HASH", "RANGE"), strict=False)
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
            for index, keys_of in indexed.items()
        ]
    dynamodb.create_table(**definition)
    if ttl is not None:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
    return name


def create_task_table(dynamodb: Any, name: str) -> str:
    """The task table as TaskTable declares it: key ``task_id``, TTL ``expires_at``, and the contract's keys-only
    indexes (tasks by owner, newest first by owner, and a task's children by parent)."""
    return create_table(
        dynamodb,
        name,
        "task_id",
        indexes={
            contract.TASK_OWNER_INDEX: "owner",
            contract.TASK_PARENT_INDEX: "parent",
            contract.TASK_OWNER_CREATED_INDEX: ("owner", "created_at"),
        },
        ttl="expires_at",
        numbers=("created_at",),
    )


def create_comparison_table(dynamodb: Any, name: str) -> None:
    """The shadow comparison table with the construct's key schema, TTL attribute and keys-only owner index (what
    erasure queries), all the contract's."""
    create_table(
        dynamodb,
        name,
        contract.SHADOW_PARTITION_KEY,
        indexes={contract.SHADOW_OWNER_INDEX: contract.SHADOW_OWNER_ATTRIBUTE},
        ttl=contract.SHADOW_TTL_ATTRIBUTE,
    )


def create_stream_tables(
    dynamodb: Any, *, tickets: str = "stream-tickets", connections: str = "stream-connections", events: str = "stream-events"
) -> None:
    """The three streaming tables with the key schemas, TTL attribute and keys-only indexes named in the contract (what
    the construct must declare): tickets by hash, connections by id (indexes by session and by owner), and event
    batches by stream and first event id (a number)."""
    owner = {contract.STREAM_OWNER_INDEX: contract.STREAM_OWNER_ATTRIBUTE}
    ttl = contract.STREAM_TTL_ATTRIBUTE
    create_table(dynamodb, tickets, contract.STREAM_TICKET_KEY, indexes=owner, ttl=ttl)
    create_table(
        dynamodb,
        connections,
        contract.STREAM_CONNECTION_KEY,
        indexes={contract.STREAM_SESSION_INDEX: contract.STREAM_SESSION_ATTRIBUTE, **owner},
        ttl=ttl,
    )
    create_table(
        dynamodb,
        events,
        contract.STREAM_EVENT_PARTITION_KEY,
        contract.STREAM_EVENT_SORT_KEY,
        indexes=owner,
        ttl=ttl,
        numbers={contract.STREAM_EVENT_SORT_KEY},
    )
