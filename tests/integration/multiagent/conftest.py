"""Fixtures of the multi-agent tests: what MultiAgentSystem and HierarchicalAgents create, in moto, and their handlers.

The SQS event source mappings are played by :meth:`Handlers.pump`: it receives from
each queue as Lambda's poller does (up to 10 messages, with their attributes),
hands the batch to the queue's handler, and deletes what the handler did not
report failed. Queues have a visibility timeout of 0, so a failed message is
received again at once, and moto's redrive policy moves it to the queue's
dead-letter queue after ``MAX_RECEIVE_COUNT`` receives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws

from agentrail_runtime import clock as runtime_clock
from agentrail_runtime.contract import BudgetLimit, budgets_to_env
from agentrail_runtime.demo_team import ACCOUNT_DESCRIPTION, BILLING_DESCRIPTION, TECHNICAL_DESCRIPTION
from agentrail_runtime.tasks.models import TaskRecord
from agentrail_runtime.tasks.store import TaskStore
from tests.integration.conftest import WORKFLOW_MOTO_CONFIG

TASK_TABLE = "agentrail-team-tasks"
IDEMPOTENCY_TABLE = "agentrail-team-idempotency"
BUS = "agentrail-team-events"
BUDGET_TABLE = "agentrail-team-budget-counters"
MAX_RECEIVE_COUNT = 3

#: The demo support team as the MultiAgentStack declares it: name -> (definition, hand-offs, description).
DEMO_TEAM = {
    "billing": ("agentrail_runtime.demo_team:billing", ("account",), BILLING_DESCRIPTION),
    "technical": ("agentrail_runtime.demo_team:technical", (), TECHNICAL_DESCRIPTION),
    "account": ("agentrail_runtime.demo_team:account", ("billing",), ACCOUNT_DESCRIPTION),
}


@dataclass
class FunctionContext:
    """The Lambda context of one function: its name lands on every log line (``function_name``)."""

    function_name: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/agentrail-team"
    log_stream_name: str = "2026/11/28/[$LATEST]0000"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}:live"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class Queue:
    url: str
    arn: str
    dlq_url: str


@dataclass
class Team:
    """The moto account of a multi-agent test: tables, the task queue, one queue per specialist, the outcome queue."""

    sqs: Any
    dynamodb: Any
    sfn: Any
    tasks: Queue
    outcomes: Queue
    specialists: dict[str, Queue]
    #: The task events of the team's bus (the integration tier's ``task_event_capture``).
    captured: Any
    store: TaskStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = TaskStore(TASK_TABLE)

    def task(self, task_id: str) -> TaskRecord:
        record = self.store.get(task_id)
        assert record is not None
        return record

    def receive(self, queue: Queue) -> list[dict[str, Any]]:
        return self.sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]).get(
            "Messages", []
        )

    def dead_letters(self, specialist: str) -> list[dict[str, Any]]:
        """What the specialist's dead-letter queue holds."""
        dlq_url = self.specialists[specialist].dlq_url
        return self.sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])

    def task_events(self) -> list[dict[str, Any]]:
        return self.captured.events()


def _queue(sqs: Any, name: str) -> Queue:
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
            "VisibilityTimeout": "0",
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(url=url, arn=arn, dlq_url=dlq_url)


@pytest.fixture
def aws(task_event_capture) -> Iterator[Team]:
    # Step Functions that execute, and Lambda without Docker: a rendered workflow's Lambda tasks run in process.
    with mock_aws(config=WORKFLOW_MOTO_CONFIG):
        dynamodb = boto3.client("dynamodb")
        for name, key in ((TASK_TABLE, "task_id"), (IDEMPOTENCY_TABLE, "id"), (BUDGET_TABLE, "pk")):
            dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        sqs = boto3.client("sqs")
        captured = task_event_capture(BUS, "agentrail-team-events-capture")
        parameters.clear_caches()
        yield Team(
            sqs=sqs,
            dynamodb=dynamodb,
            sfn=boto3.client("stepfunctions"),
            tasks=_queue(sqs, "agentrail-team-tasks"),
            outcomes=_queue(sqs, "agentrail-team-outcomes"),
            specialists={name: _queue(sqs, f"agentrail-team-{name}") for name in DEMO_TEAM},
            captured=captured,
        )
        parameters.clear_caches()


@dataclass(frozen=True)
class TeamOptions:
    """What MultiAgentOptions and the Specialist declarations turn into environment variables."""

    max_hops: int = 4
    fallback: str | None = None
    max_task_tokens: int | None = None
    price_table: dict[str, dict[str, float]] | None = None
    #: Specialist name (or ``router``) to the AGENT_* variables that differ for it (a misconfigured model, say).
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class Handlers:
    """The functions of one MultiAgentSystem, each as its own Lambda module, and the team's moto account."""

    aws: Team
    router: ModuleType
    specialists: dict[str, ModuleType]
    orchestrator: ModuleType
    #: Builds the SQS event Lambda would (the integration tier's ``sqs_event``).
    sqs_event: Callable[[list[dict[str, Any]], str], dict[str, Any]]
    #: Who submits tasks: the caller of the shared API events (the integration tier's ``owner``).
    owner: str
    #: Every (function, SQS event) delivered, in order.
    deliveries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def submit(self, message: str, *, correlation_id: str | None = None) -> str:
        """``POST /tasks`` as the API function does it: the task record, then one message on the task queue."""
        from agentrail_runtime.tasks.service import TaskSubmission

        return self.router.tasks.submit(TaskSubmission(message=message), owner=self.owner, correlation_id=correlation_id).task_id

    def routes(self) -> dict[str, tuple[Queue, ModuleType]]:
        return {
            "router": (self.aws.tasks, self.router),
            **{name: (self.aws.specialists[name], module) for name, module in self.specialists.items()},
            "orchestrator": (self.aws.outcomes, self.orchestrator),
        }

    def deliver(self, name: str) -> dict[str, Any] | None:
        """One poll of ``name``'s queue and one invocation with what it received; ``None`` when the queue was empty."""
        queue, module = self.routes()[name]
        messages = self.aws.receive(queue)
        if not messages:
            return None
        event = self.sqs_event(messages, queue.arn)
        self.deliveries.append((name, event))
        try:
            result = module.handler(event, FunctionContext(name))
        except BatchProcessingError:
            # Every record failed: the invocation fails and Lambda deletes nothing.
            result = {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                self.aws.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=record["receiptHandle"])
        return result

    def pump(self, *, max_rounds: int = 40) -> None:
        """Deliver every queued message to its function until all queues are empty (see the module docstring)."""
        for _ in range(max_rounds):
            delivered = [self.deliver(name) for name in self.routes()]
            if not any(result is not None for result in delivered):
                return
        raise AssertionError("the queues did not drain")


def team_environment(aws: Team, options: TeamOptions) -> tuple[dict[str, str], dict[str, str]]:
    """The environment every member shares, and the router's additions."""
    catalog = [{"name": n, "description": d, "queue_url": aws.specialists[n].url} for n, (_, _, d) in DEMO_TEAM.items()]
    shared = {
        "AGENT_TASK_TABLE": TASK_TABLE,
        "AGENT_TASK_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "AGENT_TASK_EVENT_BUS": BUS,
        "AGENT_TASK_MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
        "AGENT_MULTI_SPECIALISTS": json.dumps(catalog),
        "AGENT_MULTI_ORCHESTRATOR_QUEUE_URL": aws.outcomes.url,
        "AGENT_MULTI_MAX_HOPS": str(options.max_hops),
    }
    if options.max_task_tokens is not None:
        shared["AGENT_MULTI_MAX_TASK_TOKENS"] = str(options.max_task_tokens)
    if options.price_table is not None:
        shared["AGENT_PRICE_TABLE"] = json.dumps(options.price_table)
    router = {
        "AGENT_TASK_QUEUE_URL": aws.tasks.url,
        "AGENT_MULTI_AGENT_NAME": "router",
        "AGENT_MULTI_HANDOFFS": json.dumps(list(DEMO_TEAM)),
    }
    if options.fallback:
        router["AGENT_MULTI_FALLBACK"] = options.fallback
    return shared, router


@pytest.fixture
def team(
    aws: Team,
    handler_module: Callable[..., ModuleType],
    sqs_event: Callable[[list[dict[str, Any]], str], dict[str, Any]],
    owner: str,
) -> Callable[..., Handlers]:
    """Build the demo support team's functions under the given options (``team(max_hops=2)``)."""

    def build(**options: Any) -> Handlers:
        chosen = TeamOptions(**options)
        shared, router_env = team_environment(aws, chosen)
        router = handler_module("router", shared | router_env | chosen.overrides.get("router", {}), exclusive=True)
        specialists = {}
        for name, (definition, handoffs, _) in DEMO_TEAM.items():
            member = (
                shared
                | {
                    "AGENT_MULTI_AGENT_NAME": name,
                    "AGENT_DEFINITION": definition,
                    "AGENT_MULTI_HANDOFFS": json.dumps(list(handoffs)),
                }
                | chosen.overrides.get(name, {})
            )
            specialists[name] = handler_module("specialist", member, exclusive=True)
        orchestrator = handler_module(
            "orchestrator", {k: v for k, v in shared.items() if k.startswith("AGENT_TASK_")}, exclusive=True
        )
        return Handlers(
            aws=aws, router=router, specialists=specialists, orchestrator=orchestrator, sqs_event=sqs_event, owner=owner
        )

    return build


@pytest.fixture
def supervisor(aws: Team, handler_module: Callable[..., ModuleType]) -> Callable[..., ModuleType]:
    """The HierarchicalAgents function (``handlers/supervisor``) under the construct's environment and these options
    (``budgets``: daily budgets over the team's counters table)."""

    def build(
        *,
        max_review_rounds: int = 1,
        tolerated_failure_percentage: float = 50.0,
        max_task_tokens: int | None = None,
        budgets: Sequence[BudgetLimit] = (),
        extra: Mapping[str, str] | None = None,
    ) -> ModuleType:
        environment = {
            "AGENT_TASK_TABLE": TASK_TABLE,
            "AGENT_TASK_EVENT_BUS": BUS,
            "AGENT_DEFINITION": "agentrail_runtime.demo_team:research_worker",
            "AGENT_MULTI_MAX_REVIEW_ROUNDS": str(max_review_rounds),
            "AGENT_MULTI_TOLERATED_FAILURE_PERCENTAGE": repr(float(tolerated_failure_percentage)),
        }
        if max_task_tokens is not None:
            environment["AGENT_MULTI_MAX_TASK_TOKENS"] = str(max_task_tokens)
        if budgets:  # what DailyBudgets.enforce_on writes
            environment |= {"AGENT_BUDGETS": budgets_to_env(list(budgets)), "AGENT_BUDGET_TABLE": BUDGET_TABLE}
        return handler_module("supervisor", environment | dict(extra or {}), exclusive=True)

    return build


@pytest.fixture
def stored_task(aws: Team, owner: str) -> Callable[..., str]:
    """Store a task as ``POST /tasks`` does (the shared events' task unless another id is given)."""

    def store(message: str, *, task_id: str, correlation_id: str | None = None, task_type: str = "default") -> str:
        now = int(runtime_clock.now())
        aws.store.create(
            TaskRecord(
                task_id=task_id,
                owner=owner,
                task_type=task_type,
                message=message,
                created_at=now,
                updated_at=now,
                correlation_id=correlation_id,
            )
        )
        return task_id

    return store


#: The research task of the hierarchical tests (one subtask is "flaky": it fails its first attempt).
RESEARCH = "Research Lambda; research flaky Step Functions; compare DynamoDB and SQS"


@pytest.fixture
def research_task(stored_task: Callable[..., str], load_event: Callable[[str], dict[str, Any]]) -> str:
    """The research task of the shared events in events/multiagent/, stored as ``POST /tasks`` does."""
    plan = load_event("multiagent/plan.json")
    return stored_task(RESEARCH, task_id=plan["task_id"], correlation_id=plan["correlation_id"], task_type="research")
