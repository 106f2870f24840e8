"""Fixtures of the approval tests: what ApprovalWorkflow creates, in moto, with real Step Functions task tokens.

Step Functions runs in moto (``execute_state_machine``). A one-state machine
waits on ``sqs:sendMessage.waitForTaskToken`` and sends its task token to a
queue, where the tests read it: the token is real, ``SendTaskSuccess`` moves
that execution on, and a timed-out execution's token is refused by the service.
The agent side runs through the workflow's own actions (``start``, ``step``,
``request_approval``, ``resume``) with the demo agent and the local model.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from agentrail_runtime import clock as runtime_clock
from agentrail_runtime import demo
from agentrail_runtime.api.tasks import create_tasks_app
from agentrail_runtime.approvals import ApprovalService, ApprovalStore, AuditLog
from agentrail_runtime.approvals.settings import ApprovalSettings
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.demo import definition as demo_definition
from agentrail_runtime.service import AgentService
from agentrail_runtime.signatures import SIGNATURE_HEADER, signature_header
from agentrail_runtime.tasks.events import TaskEvents
from agentrail_runtime.tasks.models import TaskRecord, TaskStatus
from agentrail_runtime.tasks.service import TaskService
from agentrail_runtime.tasks.settings import TaskSettings
from agentrail_runtime.tasks.store import TaskStore
from agentrail_runtime.workflows import LongTaskSteps
from tests.integration.conftest import create_task_table

TASK_TABLE = "agentrail-reviewed-tasks"
APPROVALS_TABLE = "agentrail-approvals"
AUDIT_TABLE = "agentrail-approval-audit"
BUS = "agentrail-reviewed-events"
WEBHOOK_SECRET = "agentrail/approval-webhook"
WEBHOOK_SECRET_VALUE = "whsec-2f7c9e1a4b6d8f0a3c5e7b9d1f3a5c7e"
REFUND_REQUEST = "Please refund 150 USD for order A-1002"
#: The task of the shared events in events/approvals/ (their approval id follows from it and the local model's call id).
EVENT_TASK_ID = "4c2e9a7f1b3d4e5f8a6b0c1d2e3f4a5b"
EVENT_CORRELATION_ID = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


@dataclass(frozen=True)
class Caller:
    """An IAM caller: ``arn`` goes into an event's ``identity.userArn``, ``principal`` is what principal_of makes of it:
    the user's ARN, or for a caller that assumed a role, the role's (``role`` names it)."""

    arn: str
    role: str | None = None

    @property
    def principal(self) -> str:
        return f"iam:{self.role or self.arn}"


@dataclass(frozen=True)
class Callers:
    """Who calls in these tests. ``requester`` and ``alice`` are the callers of the shared events."""

    requester: Caller = Caller(
        "arn:aws:sts::123456789012:assumed-role/agentrail-caller/agentrail-client",
        "arn:aws:iam::123456789012:role/agentrail-caller",
    )
    #: Another session of the requester's role: the same identity unless the API identifies callers by session.
    requester_other_session: Caller = Caller(
        "arn:aws:sts::123456789012:assumed-role/agentrail-caller/another-client",
        "arn:aws:iam::123456789012:role/agentrail-caller",
    )
    other_requester: Caller = Caller(
        "arn:aws:sts::123456789012:assumed-role/agentrail-partner/partner-client",
        "arn:aws:iam::123456789012:role/agentrail-partner",
    )
    #: A session of a role that the documented approver pattern ``role/Approver*`` names.
    finance_approver: Caller = Caller(
        "arn:aws:sts::123456789012:assumed-role/ApproverFinance/frank", "arn:aws:iam::123456789012:role/ApproverFinance"
    )
    alice: Caller = Caller("arn:aws:iam::123456789012:user/alice")
    ops_dana: Caller = Caller("arn:aws:iam::123456789012:user/ops-dana")
    carol: Caller = Caller("arn:aws:iam::123456789012:user/carol")
    mallory: Caller = Caller("arn:aws:iam::123456789012:user/mallory")
    #: A Cognito user in the ``approvers`` group (the caller of events/approvals/decide-cognito.json).
    bob_claims: tuple[tuple[str, str], ...] = (("sub", "5e1c7a9b-3d2f-4e8a-b6c0-9f1d2e3a4b5c"), ("cognito:groups", "approvers"))
    #: A Cognito user in another group.
    erin_claims: tuple[tuple[str, str], ...] = (("sub", "0a9b8c7d-6e5f-4a3b-9c2d-1e0f2a3b4c5d"), ("cognito:groups", "support"))


CALLERS = Callers()
REQUESTER = CALLERS.requester.principal
#: The chat approver of events/approvals/webhook.json, a configured identity of the approvers group.
WEBHOOK_APPROVER = "webhook:alice@example.com"
GROUPS = {
    "approvers": [
        CALLERS.alice.principal,
        "iam:arn:aws:iam::123456789012:user/ops-*",
        "iam:arn:aws:iam::123456789012:role/Approver*",
        WEBHOOK_APPROVER,
    ],
    "finance-leads": [CALLERS.carol.principal],
}


@dataclass
class Aws:
    dynamodb: Any
    sqs: Any
    sfn: Any
    token_queue_url: str
    #: The task events of the bus (the integration tier's ``task_event_capture``).
    captured: Any
    state_machine_arn: str
    #: The same wait with TimeoutSeconds 1: its execution fails with States.Timeout a second after it starts.
    short_wait_arn: str

    def approval_item(self, approval_id: str) -> dict[str, Any]:
        return self.dynamodb.get_item(TableName=APPROVALS_TABLE, Key={"approval_id": {"S": approval_id}})["Item"]

    def task_events(self) -> list[dict[str, Any]]:
        return self.captured.events()

    def start_waiting(self, task_id: str, correlation_id: str | None, *, times_out: bool = False) -> tuple[str, str]:
        """Start an execution that waits for a decision (for a second only if ``times_out``); returns its ARN and token."""
        execution_arn = self.sfn.start_execution(
            stateMachineArn=self.short_wait_arn if times_out else self.state_machine_arn,
            name=f"{task_id}-{time.monotonic_ns()}",
            input=json.dumps({"task_id": task_id, "correlation_id": correlation_id}),
        )["executionArn"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for message in self.sqs.receive_message(QueueUrl=self.token_queue_url, MaxNumberOfMessages=10).get("Messages", []):
                body = json.loads(message["Body"])
                self.sqs.delete_message(QueueUrl=self.token_queue_url, ReceiptHandle=message["ReceiptHandle"])
                if body["execution"] == execution_arn:
                    return execution_arn, body["token"]
            time.sleep(0.01)
        raise AssertionError("the execution sent no task token")

    def execution_after_wait(self, execution_arn: str, *, seconds: float = 10) -> dict[str, Any]:
        """The execution once it stopped running (moto runs it in a thread)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            execution = self.sfn.describe_execution(executionArn=execution_arn)
            if execution["status"] != "RUNNING":
                return execution
            time.sleep(0.01)
        raise AssertionError("the execution is still waiting")


#: ApprovalWorkflow's RequestApproval state, reduced to the wait: the token goes to a queue instead of a Lambda.
WAIT_FOR_DECISION = {
    "StartAt": "RequestApproval",
    "States": {
        "RequestApproval": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": None,
                "MessageBody": {"token.$": "$$.Task.Token", "execution.$": "$$.Execution.Id", "task_id.$": "$.task_id"},
            },
            "ResultPath": "$.decision",
            "Next": "Decided",
        },
        "Decided": {"Type": "Succeed"},
    },
}


@pytest.fixture
def aws(task_event_capture) -> Iterator[Aws]:
    # Lambda without Docker: the rendered workflows' Lambda tasks are answered in process (``workflow_function``).
    with mock_aws(config={"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}):
        dynamodb = boto3.client("dynamodb")
        create_task_table(dynamodb, TASK_TABLE)
        # The schemas of constructs/agentrail_constructs/approvals.py.
        dynamodb.create_table(
            TableName=APPROVALS_TABLE,
            KeySchema=[{"AttributeName": "approval_id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "approval_id", "AttributeType": "S"},
                {"AttributeName": "status", "AttributeType": "S"},
                {"AttributeName": "requested_at", "AttributeType": "N"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_status",
                    "KeySchema": [
                        {"AttributeName": "status", "KeyType": "HASH"},
                        {"AttributeName": "requested_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.create_table(
            TableName=AUDIT_TABLE,
            KeySchema=[{"AttributeName": "approval_id", "KeyType": "HASH"}, {"AttributeName": "entry", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "approval_id", "AttributeType": "S"},
                {"AttributeName": "entry", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = boto3.client("sqs")
        token_queue_url = sqs.create_queue(QueueName="agentrail-approval-tokens")["QueueUrl"]
        captured = task_event_capture(BUS, "agentrail-reviewed-events-capture")
        definition = copy.deepcopy(WAIT_FOR_DECISION)
        definition["States"]["RequestApproval"]["Parameters"]["QueueUrl"] = token_queue_url
        sfn = boto3.client("stepfunctions")
        state_machine_arn = sfn.create_state_machine(
            name="agentrail-approval-wait",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/agentrail-approval-workflow",
        )["stateMachineArn"]
        definition["States"]["RequestApproval"]["TimeoutSeconds"] = 1
        short_wait_arn = sfn.create_state_machine(
            name="agentrail-approval-wait-1s",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/agentrail-approval-workflow",
        )["stateMachineArn"]
        boto3.client("secretsmanager").create_secret(Name=WEBHOOK_SECRET, SecretString=WEBHOOK_SECRET_VALUE)
        parameters.clear_caches()
        yield Aws(
            dynamodb=dynamodb,
            sqs=sqs,
            sfn=sfn,
            token_queue_url=token_queue_url,
            captured=captured,
            state_machine_arn=state_machine_arn,
            short_wait_arn=short_wait_arn,
        )
        parameters.clear_caches()


@pytest.fixture
def callers() -> Callers:
    return CALLERS


@dataclass
class Paused:
    """A task paused on an approval: the execution waiting, its token, the approval id."""

    task_id: str
    correlation_id: str
    approval_id: str
    execution_arn: str
    token: str


@dataclass
class Approvals:
    """One deployment of the approval workflow: the API function's side and the workflow function's side.

    Like the two Lambda functions, each side has its own services over the same tables.
    """

    aws: Aws
    settings: ApprovalSettings
    api_service: ApprovalService
    workflow_service: ApprovalService
    tasks: TaskService
    workflow: LongTaskSteps
    app: Any
    #: The integration tier's ``call``.
    caller: Callable[[Any, dict[str, Any]], Any]
    refunds: dict[str, float] = field(default_factory=dict)

    def call(self, event: dict[str, Any]) -> Any:
        """The API function's answer to ``event``: a Reply with status, headers, parsed body and raw body."""
        return self.caller(self.app, event)

    def status(self, task_id: str) -> TaskStatus:
        record = self.tasks.store.get(task_id)
        assert record is not None
        return record.status

    def task(self, task_id: str) -> TaskRecord:
        record = self.tasks.store.get(task_id)
        assert record is not None
        return record

    def pause(
        self,
        task_id: str = EVENT_TASK_ID,
        *,
        message: str = REFUND_REQUEST,
        owner: str = REQUESTER,
        correlation_id: str = EVENT_CORRELATION_ID,
        times_out: bool = False,
    ) -> Paused:
        """Submit a ``reviewed`` task and run it until it waits for a decision on its refund.

        The workflow's ``start`` and ``step`` actions run the demo agent (local model) until
        ``issue_refund`` needs approval; a real execution then waits with a task token, and the
        ``request_approval`` action stores the approval with that token.
        """
        now = int(runtime_clock.now())
        self.tasks.store.create(
            TaskRecord(
                task_id=task_id,
                owner=owner,
                task_type="reviewed",
                message=message,
                created_at=now,
                updated_at=now,
                correlation_id=correlation_id,
            )
        )
        self.workflow.handle({"action": "start", "task_id": task_id, "correlation_id": correlation_id})
        step = self.workflow.handle({"action": "step", "task_id": task_id, "correlation_id": correlation_id})
        assert step["awaiting_approval"] is True, step
        execution_arn, token = self.aws.start_waiting(task_id, correlation_id, times_out=times_out)
        requested = self.workflow.handle(
            {"action": "request_approval", "level": 0, "task_id": task_id, "correlation_id": correlation_id, "task_token": token}
        )
        return Paused(task_id, correlation_id, requested["approval_id"], execution_arn, token)


def approval_settings(**overrides: Any) -> ApprovalSettings:
    """What the ApprovalWorkflow construct sets, for these tables (``AGENT_APPROVAL_*``)."""
    values: dict[str, Any] = {
        "table": APPROVALS_TABLE,
        "audit_table": AUDIT_TABLE,
        "groups": GROUPS,
        "webhook_secret": WEBHOOK_SECRET,
        "webhook_groups": ("approvers",),
    }
    return ApprovalSettings(**(values | overrides))


@pytest.fixture
def deployment(aws: Aws, agent_env, call, monkeypatch) -> Callable[..., Approvals]:
    """Build both sides of the approval workflow under the given ApprovalSettings (``deployment(timeout_policy="escalate", ...)``).

    ``api_sfn_client`` replaces the Step Functions client the API side answers the workflow with; ``iam_identity``
    is the API's (AGENT_IAM_IDENTITY). The demo's
    refund ledger starts empty, so a test sees exactly the refunds its tools issued.
    """

    def build(*, slice_steps: int = 2, api_sfn_client: Any = None, iam_identity: str = "role", **overrides: Any) -> Approvals:
        settings = approval_settings(**overrides)
        refunds: dict[str, float] = {}
        monkeypatch.setattr(demo, "_REFUNDS", refunds)

        def service(sfn_client: Any = None) -> ApprovalService:
            return ApprovalService(
                approvals=ApprovalStore(settings.table),
                audit=AuditLog(settings.audit_table, retention_seconds=settings.audit_retention_days * 86_400),
                settings=settings,
                sfn_client=sfn_client,
            )

        def task_service() -> TaskService:
            return TaskService(
                store=TaskStore(TASK_TABLE),
                agents=AgentService(definition=demo_definition, settings=RuntimeSettings()),
                events=TaskEvents(BUS),
                routes={"reviewed": aws.state_machine_arn},
            )

        api_tasks, workflow_tasks = task_service(), task_service()
        api_service, workflow_service = service(api_sfn_client), service()
        app = create_tasks_app(
            tasks=api_tasks,
            settings=RuntimeSettings(iam_identity=iam_identity),
            task_settings=TaskSettings(table=TASK_TABLE),
            approvals=api_service,
        )
        return Approvals(
            aws=aws,
            settings=settings,
            api_service=api_service,
            workflow_service=workflow_service,
            tasks=workflow_tasks,
            workflow=LongTaskSteps(workflow_tasks, slice_steps=slice_steps, approvals=workflow_service),
            app=app,
            caller=call,
            refunds=refunds,
        )

    return build


@pytest.fixture
def api_event(load_event, aimed_event) -> Callable[..., dict[str, Any]]:
    """An events/approvals/<name>.json event, aimed at ``approval_id``, from another caller or with another body if given.

    ``caller``: an IAM caller, or the claims of a Cognito user.
    """

    def build(
        name: str,
        *,
        approval_id: str | None = None,
        caller: Caller | tuple | None = None,
        body: Any = ...,
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        event = load_event(f"approvals/{name}.json")
        path = {"approval_id": approval_id} if approval_id is not None and event.get("pathParameters") else None
        event = aimed_event(event, path_parameters=path, body=body, query=query)
        if isinstance(caller, Caller):
            event["requestContext"].pop("authorizer", None)
            event["requestContext"]["identity"]["userArn"] = caller.arn
        elif caller is not None:
            event["requestContext"]["identity"]["userArn"] = None
            event["requestContext"]["authorizer"] = {"claims": dict(caller)}
        if body is ... and name == "webhook" and approval_id is not None:
            event["body"] = json.dumps({**json.loads(event["body"]), "approval_id": approval_id})  # signed with the body
        return event

    return build


@pytest.fixture
def signed_webhook(api_event) -> Callable[..., dict[str, Any]]:
    """events/approvals/webhook.json signed now (or at ``at``) with ``secret``; the same body unless one is given."""

    def build(
        approval_id: str, *, secret: str = WEBHOOK_SECRET_VALUE, at: int | None = None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        event = api_event("webhook", approval_id=approval_id, body=body if body is not None else ...)
        header = signature_header(secret.encode(), int(runtime_clock.now()) if at is None else at, event["body"].encode())
        event["headers"][SIGNATURE_HEADER] = header
        event["multiValueHeaders"][SIGNATURE_HEADER] = [header]
        return event

    return build


@pytest.fixture
def functions(aws: Aws, handler_module, monkeypatch) -> Callable[..., tuple[Any, Any]]:
    """The async API function (``handlers/tasks``) and the workflow function (``handlers/task_workflow``),
    initialized under the environment the AsyncAgent and ApprovalWorkflow constructs give them."""

    def build(**approval_environment: str) -> tuple[Any, Any]:
        monkeypatch.setattr(demo, "_REFUNDS", {})
        environment = {
            "AGENT_TASK_TABLE": TASK_TABLE,
            "AGENT_TASK_EVENT_BUS": BUS,
            "AGENT_TASK_ROUTES": json.dumps({"reviewed": aws.state_machine_arn}),
            "AGENT_APPROVAL_TABLE": APPROVALS_TABLE,
            "AGENT_APPROVAL_AUDIT_TABLE": AUDIT_TABLE,
            "AGENT_APPROVAL_GROUPS": json.dumps(GROUPS),
            "AGENT_APPROVAL_WEBHOOK_GROUPS": json.dumps(["approvers"]),
            "AGENT_APPROVAL_WEBHOOK_SECRET": WEBHOOK_SECRET,
        } | approval_environment
        return handler_module("tasks", environment), handler_module("task_workflow", environment)

    return build
