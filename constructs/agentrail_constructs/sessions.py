"""SessionTable and StatefulAgent: conversations stored outside the function, one item per turn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from agentrail_constructs.api import AgentApi, AgentApiOptions
from agentrail_constructs.budgets import BudgetOptions, DailyBudgets, budgets_for
from agentrail_constructs.contract import contract
from agentrail_constructs.erasure import ErasureOptions, serve_erasure
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions, companion_options
from agentrail_constructs.nag import logical_id
from agentrail_constructs.queues import QueueWithDeadLetters, dead_letter_queue, visibility_timeout_for
from agentrail_constructs.renames import check_exclusive, renamed_keywords
from agentrail_constructs.request_models import request_model
from agentrail_constructs.security import baseline_for
from agentrail_constructs.sources import handler_dir
from agentrail_constructs.storage import (
    SESSION_TABLE_ACTIONS,
    encrypt_log_group,
    grant_index_query,
    grant_table,
    keys_only_index,
    private_bucket,
    secure_table,
)
from agentrail_constructs.streaming import StreamingApi, StreamingOptions

TTL_ATTRIBUTE = "expires_at"
#: Mirrors agentrail_runtime.sessions.offload.S3TurnOffload's default prefix.
OFFLOAD_PREFIX = "sessions/"


@dataclass(frozen=True, kw_only=True)
class SessionTableOptions:
    """Options of a new SessionTable."""

    encryption_key: kms.IKey | None = None
    """A customer managed key for the table, the offload bucket, the queues and the log groups. Default: the stack's
    SecurityBaseline key if any, else AWS owned/managed encryption."""
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    """Default: RETAIN (conversations outlive a stack deletion unless you say otherwise)."""
    offload_large_turns: bool = True
    """Keep turns over DynamoDB's item limit in an encrypted S3 bucket; when false they are refused with 413. Default: true."""
    cleanup_on_expiry: bool = True
    """Purge a session's turns when DynamoDB's TTL deletes its metadata (stream + function). Default: true."""


class SessionTable(Construct):
    """DynamoDB table of sessions: ``pk`` = session id, ``sk`` = ``~meta``, ``~state``, ``~summary`` or ``turn#NNNNNNNNNN``.

    On-demand billing, point-in-time recovery, encryption and a TTL attribute
    (``expires_at``, on the session metadata only). Optionally an encrypted S3
    bucket for turns too large for an item, and a clean-up function on the
    table's stream that purges an expired session's turns.

    Parameters
    ----------
    existing_table:
        Your table (any ``ITable`` with string keys ``pk`` and ``sk``, TTL on ``expires_at``, and a keys-only index
        ``by_owner`` on the string ``owner`` for erasure; without this construct's stream, expired sessions' turns are
        not purged). Not with ``table_options``.
    table_options:
        Options of a new table. Default: ``SessionTableOptions()``.
    function_options:
        The options of the agent's functions: the clean-up function logs and exports as they do (see
        :func:`companion_options`). Default: ``AgentFunctionOptions()``.

    Attributes
    ----------
    table, encryption_key, offload_bucket, cleanup_function, cleanup_dead_letter_queue
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        existing_table: dynamodb.ITable | None = None,
        table_options: SessionTableOptions | None = None,
        function_options: AgentFunctionOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        check_exclusive(existing_table, table_options, "existing_table", "table_options")
        self.options = options = table_options or SessionTableOptions()
        baseline = baseline_for(self)
        self.encryption_key = options.encryption_key or (baseline.key if baseline is not None else None)
        self.offload_bucket: s3.Bucket | None = None
        self.cleanup_function: AgentFunction | None = None
        self.cleanup_dead_letter_queue: sqs.Queue | None = None
        if existing_table is not None:
            self.table: dynamodb.ITable = existing_table
            return
        self.table = secure_table(
            self,
            "Table",
            partition_key="pk",
            sort_key="sk",
            time_to_live_attribute=TTL_ATTRIBUTE,
            encryption_key=self.encryption_key,
            removal_policy=options.removal_policy,
            stream=dynamodb.StreamViewType.KEYS_ONLY if options.cleanup_on_expiry else None,
        )
        keys_only_index(self.table, contract.SESSION_OWNER_INDEX, "owner")
        if options.offload_large_turns:
            self.offload_bucket = private_bucket(
                self,
                "OffloadBucket",
                encryption_key=self.encryption_key,
                access_log_bucket=baseline.access_logs_destination() if baseline is not None else None,
                removal_policy=options.removal_policy,
                access_log_reason=(
                    "Only the session functions' roles read and write this bucket, through the API that already logs "
                    "every request; enable CloudTrail S3 data events for object-level audit if you need it."
                ),
            )
        if options.cleanup_on_expiry:
            self._build_cleanup(function_options)

    def _build_cleanup(self, function_options: AgentFunctionOptions | None) -> None:
        self.cleanup_function = AgentFunction(
            self,
            "Cleanup",
            handler_code=handler_dir("session_cleanup"),
            options=companion_options(
                function_options, memory_size=256, timeout=Duration.seconds(120), service_name="session-cleanup"
            ),
        )
        self.grant_sessions(self.cleanup_function)
        self.cleanup_dead_letter_queue = dead_letter_queue(self, "CleanupFailures", encryption_key=self.encryption_key)
        self.cleanup_function.function.add_event_source(
            sources.DynamoEventSource(
                self.table,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=50,
                bisect_batch_on_error=True,
                retry_attempts=5,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(self.cleanup_dead_letter_queue),
                filters=[
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.is_equal("REMOVE"),
                            "dynamodb": {"Keys": {"sk": {"S": lambda_.FilterRule.is_equal("~meta")}}},
                        }
                    )
                ],
            )
        )

    def grant_erasure(self, agent_function: AgentFunction) -> None:
        """Let ``agent_function`` (which already has :meth:`grant_sessions`) find a principal's sessions: Query on the
        ``by_owner`` index only. Deleting them uses the session grants (DeleteItem, BatchWriteItem, the offload
        prefix)."""
        grant_index_query(self.table, agent_function.function, contract.SESSION_OWNER_INDEX)

    def grant_console(self, agent_function: AgentFunction) -> None:
        """Let the API function (which already has :meth:`grant_erasure`) list a caller's sessions for the operator
        console: BatchGetItem of the sessions the ``by_owner`` index names."""
        grant_table(self.table, agent_function.function, ("dynamodb:BatchGetItem",))

    def grant_sessions(self, agent_function: AgentFunction) -> None:
        """Let ``agent_function`` read and write sessions, and tell it where they are (environment and health check)."""
        grant_table(self.table, agent_function.function, SESSION_TABLE_ACTIONS)
        agent_function.add_environment("AGENT_SESSION_TABLE", self.table.table_name)
        agent_function.add_health_check("dynamodb", self.table.table_name)
        if self.encryption_key is not None:
            agent_function.encrypt_logs(self.encryption_key)
            agent_function.acknowledge_key_grants()
        if self.offload_bucket is not None:
            bucket = self.offload_bucket
            iam.Grant.add_to_principal(
                grantee=agent_function.function,
                actions=["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                resource_arns=[bucket.arn_for_objects(f"{OFFLOAD_PREFIX}*")],
            )
            iam.Grant.add_to_principal(
                grantee=agent_function.function,
                actions=["s3:ListBucket"],
                resource_arns=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{OFFLOAD_PREFIX}*"]}},
            )
            if bucket.encryption_key is not None:
                bucket.encryption_key.grant_encrypt_decrypt(agent_function.function)
            agent_function.acknowledge_policy(
                f"IAM5[Resource::<{logical_id(bucket)}.Arn>/{OFFLOAD_PREFIX}*]",
                "Offloaded turns are objects keyed by session id under one prefix; their names cannot be known in "
                "advance. Only Put/Get/DeleteObject are allowed, on that prefix only.",
            )
            agent_function.add_environment("AGENT_SESSION_OFFLOAD_BUCKET", bucket.bucket_name)


@dataclass(frozen=True, kw_only=True)
class SessionOptions:
    """How a StatefulAgent keeps conversations."""

    ttl: Duration = field(default_factory=lambda: Duration.hours(24))
    """Sliding expiry, refreshed by every write. Default: 24 hours."""
    window_turns: int = 20
    """Turns of history given to the model. Default: 20."""
    window_tokens: int = 8_000
    """Estimated tokens of history given to the model. Default: 8,000."""
    truncation: Literal["truncate", "summary"] = "truncate"
    """Beyond the window: drop turns, or keep an extractive summary of them. Default: truncate."""
    history_detail: Literal["compact", "full"] = "compact"
    """Earlier turns as question and answer only, or with their tool calls. Default: compact."""
    concurrency: Literal["reject", "enqueue"] = "reject"
    """A second message while a turn is in progress: 409 with Retry-After, or queue it (SQS FIFO per session). Default: reject."""
    worker_max_concurrency: int = 10
    """With enqueue: most concurrent worker invocations (sessions processed in parallel). Default: 10."""

    def validate(self) -> None:
        if not 60 <= self.ttl.to_seconds() <= 365 * 86_400:
            raise ValueError("ttl must be between 1 minute and 365 days")
        if not 1 <= self.window_turns <= 200:
            raise ValueError("window_turns must be between 1 and 200")
        if self.window_tokens < 100:
            raise ValueError("window_tokens must be at least 100")
        if not 2 <= self.worker_max_concurrency <= 1000:
            raise ValueError("worker_max_concurrency must be between 2 and 1000 (the event source mapping's limits)")


class StatefulAgent(Construct):
    """An agent that remembers: sessions in a SessionTable, any instance serves any session.

    Routes (all authenticated like StatelessAgent): ``POST /sessions``,
    ``POST /sessions/{id}/messages``, ``GET /sessions/{id}``,
    ``PUT /sessions/{id}/state``, ``POST /sessions/{id}/feedback``, ``DELETE /sessions/{id}``, ``POST /erase``, ``GET /health``,
    ``GET /openapi.json``.

    Parameters
    ----------
    function_options:
        Options of the API function (and of the queue worker under ``enqueue``). Default: ``AgentFunctionOptions()``.
    session_options:
        Window, expiry and concurrency policy. Default: ``SessionOptions()``.
    existing_session_table:
        Your SessionTable (the construct, not an ``ITable``: turns may need its offload bucket; wrap your own table
        with ``SessionTable(existing_table=...)``). Not with ``session_table_options``.
    session_table_options:
        Options of a new SessionTable. Default: ``SessionTableOptions()``.
    api_options:
        REST API options. Default: IAM auth.
    existing_rest_api:
        Your REST API to add the routes to (see :class:`AgentApi`). Default: a new one.
    budget_options:
        Daily token or USD budgets per tenant and per agent, with a new counters table (see :class:`BudgetOptions`).
        Default: none.
    existing_budgets:
        Your :class:`DailyBudgets` (shared with other patterns). Not with ``budget_options``. Default: none.
    erasure_options:
        Who may erase another principal's data through ``POST /erase`` (see :class:`ErasureOptions`). Default:
        ``ErasureOptions()`` (callers erase their own data; the Cognito group ``operators`` anyone's).
    streaming_options:
        Stream turns over a WebSocket API (see :class:`StreamingApi`), with ``POST /sessions/{id}/stream-ticket``
        on the REST API when ``$connect`` takes tickets. Default: none (no streaming).

    Attributes
    ----------
    session_table, table, agent_function, function, alias, api, rest_api, queue, dead_letter_queue, worker, budgets,
    streaming (the :class:`StreamingApi`, or None)
    """

    @renamed_keywords(
        function="function_options",
        sessions="session_options",
        session_table="existing_session_table",
        table_options="session_table_options",
        api="api_options",
    )
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_options: AgentFunctionOptions | None = None,
        session_options: SessionOptions | None = None,
        existing_session_table: SessionTable | None = None,
        session_table_options: SessionTableOptions | None = None,
        api_options: AgentApiOptions | None = None,
        existing_rest_api: apigw.RestApi | None = None,
        budget_options: BudgetOptions | None = None,
        existing_budgets: DailyBudgets | None = None,
        erasure_options: ErasureOptions | None = None,
        streaming_options: StreamingOptions | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        check_exclusive(existing_session_table, session_table_options, "existing_session_table", "session_table_options")
        self.session_options = options = session_options or SessionOptions()
        options.validate()
        self.session_table = existing_session_table or SessionTable(
            self, "Sessions", table_options=session_table_options, function_options=function_options
        )
        self.table = self.session_table.table
        self.agent_function = AgentFunction(self, "Agent", handler_code=handler_dir("sessions"), options=function_options)
        self.function = self.agent_function.function
        self.alias = self.agent_function.alias
        self._configure(self.agent_function)
        self.queue: sqs.Queue | None = None
        self.dead_letter_queue: sqs.Queue | None = None
        self.worker: AgentFunction | None = None
        if options.concurrency == "enqueue":
            self._build_queue(function_options)
        self.api = AgentApi(
            self, "Api", options=api_options, existing_rest_api=existing_rest_api, description="agentrail stateful agent"
        )
        self.api.serve_with(self.agent_function)
        self.rest_api = self.api.rest_api
        if self.session_table.encryption_key is not None and self.api.access_log_group is not None:
            encrypt_log_group(self.api.access_log_group, self.session_table.encryption_key)
        self.streaming: StreamingApi | None = None
        if streaming_options is not None:
            self.streaming = StreamingApi(
                self,
                "Streaming",
                options=streaming_options,
                function_options=function_options,
                configure=self._configure,
                session_function=self.agent_function,
                concurrency=options.concurrency,
                session_queue=self.queue,
                session_worker=self.worker,
                encryption_key=self.session_table.encryption_key,
            )
        self._build_routes()
        self.session_table.grant_erasure(self.agent_function)
        self.session_table.grant_console(self.agent_function)
        serve_erasure(self.api, self.agent_function, self.alias, erasure_options or ErasureOptions())
        self.budgets = budgets_for(self, budget_options=budget_options, existing_budgets=existing_budgets)

    def _configure(self, agent_function: AgentFunction) -> None:
        o = self.session_options
        self.session_table.grant_sessions(agent_function)
        for key, value in {
            "AGENT_SESSION_TTL_SECONDS": str(int(o.ttl.to_seconds())),
            "AGENT_SESSION_WINDOW_TURNS": str(o.window_turns),
            "AGENT_SESSION_WINDOW_TOKENS": str(o.window_tokens),
            "AGENT_SESSION_TRUNCATION": o.truncation,
            "AGENT_SESSION_HISTORY_DETAIL": o.history_detail,
            "AGENT_SESSION_CONCURRENCY": o.concurrency,
        }.items():
            agent_function.add_environment(key, value)

    def _build_queue(self, function: AgentFunctionOptions | None) -> None:
        self.worker = AgentFunction(self, "Worker", handler_code=handler_dir("session_worker"), options=function)
        self._configure(self.worker)
        queues = QueueWithDeadLetters(
            self,
            "Turns",
            fifo=True,
            visibility_timeout=visibility_timeout_for(self.worker.options.timeout),
            encryption_key=self.session_table.encryption_key,
        )
        self.queue, self.dead_letter_queue = queues.queue, queues.dead_letter_queue
        self.queue.grant_send_messages(self.function)
        self.agent_function.calls_service("sqs")
        self.agent_function.add_environment("AGENT_SESSION_QUEUE_URL", self.queue.queue_url)
        self.agent_function.add_health_check("sqs", self.queue.queue_url)
        self.worker.add_environment("AGENT_SESSION_QUEUE_URL", self.queue.queue_url)
        self.worker.alias.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=10,
                report_batch_item_failures=True,
                max_concurrency=self.session_options.worker_max_concurrency,
            )
        )

    def _build_routes(self) -> None:
        create, message, state, feedback = (
            request_model(name) for name in ("CreateSessionRequest", "MessageRequest", "StateUpdate", "SessionFeedbackRequest")
        )
        route = self.api.add_function_route
        route("/sessions", "POST", self.alias, request_schema=create, operation_name="CreateSession")
        route("/sessions/{session_id}/messages", "POST", self.alias, request_schema=message, operation_name="SendMessage")
        route(
            "/sessions/{session_id}",
            "GET",
            self.alias,
            request_parameters={"querystring.limit": False, "querystring.cursor": False},
            operation_name="GetSession",
        )
        route("/sessions/{session_id}/state", "PUT", self.alias, request_schema=state, operation_name="PutState")
        route(
            "/sessions/{session_id}/feedback", "POST", self.alias, request_schema=feedback, operation_name="GiveSessionFeedback"
        )
        route("/sessions/{session_id}", "DELETE", self.alias, operation_name="DeleteSession")
        # the operator console's reads
        route("/sessions", "GET", self.alias, request_parameters={"querystring.limit": False}, operation_name="ListSessions")
        route("/sessions/{session_id}/turns/{number}/timeline", "GET", self.alias, operation_name="GetTurnTimeline")
        if self.streaming is not None and self.streaming.ticket_table is not None:
            route("/sessions/{session_id}/stream-ticket", "POST", self.alias, operation_name="IssueStreamTicket")
        self.api.add_operational_routes(self.alias)

    @property
    def url(self) -> str:
        return self.api.url
