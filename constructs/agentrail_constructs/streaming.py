"""StreamingApi: a WebSocket API that streams a stateful agent's turns (steps, tool calls, tokens, the final answer).

A client connects (with a connect ticket from ``POST /sessions/{id}/stream-ticket``, or an IAM signature), sends
``{"action": "sendMessage", "session_id": ..., "text": ...}`` and gets ``accepted`` at once; a worker takes the turn
through the same session store and concurrency policy as the REST API, and posts its events to every connection
that follows the session. Events are numbered and kept briefly: ``{"action": "resume", "last_event_id": n}`` gets
the rest after a reconnect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from agentrail_constructs.api import log_stage_access
from agentrail_constructs.contract import contract
from agentrail_constructs.function import AgentFunction, AgentFunctionOptions, companion_options
from agentrail_constructs.nag import acknowledge, arn_prefix, default_resource, logical_id
from agentrail_constructs.queues import QueueWithDeadLetters, visibility_timeout_for
from agentrail_constructs.sources import handler_dir
from agentrail_constructs.storage import (
    encrypt_log_group,
    grant_index_query,
    grant_table,
    keys_only_index,
    log_group,
    secure_table,
)

#: The access log's fields (``$context`` variables of a WebSocket stage): never the message, never the query string
#: (where a connect ticket travels).
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.user",
    "requestTime": "$context.requestTime",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "connectionId": "$context.connectionId",
    "integrationError": "$context.integrationErrorMessage",
}
TICKET_ACTIONS = ("dynamodb:PutItem",)
REDEEM_ACTIONS = ("dynamodb:DeleteItem",)
CONNECTION_ACTIONS = ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
EVENT_READ_ACTIONS = ("dynamodb:Query", "dynamodb:GetItem")
EVENT_WRITE_ACTIONS = ("dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem")
ERASE_ACTIONS = ("dynamodb:DeleteItem",)


@dataclass(frozen=True, kw_only=True)
class StreamingOptions:
    """How a StatefulAgent streams over its WebSocket API."""

    auth: Literal["ticket", "iam"] = "ticket"
    """``ticket``: ``$connect`` carries ``?ticket=`` from ``POST /sessions/{id}/stream-ticket`` (browsers: they cannot
    set headers on a WebSocket, and a token in the query string lands in logs); ``iam``: a SigV4-signed ``$connect``
    (servers). Default: ticket."""
    stage_name: str = "live"
    """The WebSocket stage. Default: live."""
    ticket_ttl: Duration = field(default_factory=lambda: Duration.seconds(60))
    """How long a connect ticket may be redeemed. Default: 60 seconds."""
    event_ttl: Duration = field(default_factory=lambda: Duration.hours(1))
    """How long streamed events are kept for a client that reconnects with ``last_event_id``. Default: 1 hour."""
    worker_timeout: Duration = field(default_factory=lambda: Duration.minutes(5))
    """The timeout of the function that runs a streamed turn (runs may outlast API Gateway's 29 seconds). Default:
    5 minutes."""
    worker_max_concurrency: int = 10
    """Most turns streamed at once under the ``reject`` policy (the queue's event source). Default: 10."""
    throttling_rate_limit: int = 50
    """Messages per second over every connection of the stage. Default: 50."""
    throttling_burst_limit: int = 100
    """Default: 100."""
    access_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """Of the stage's access logs. Default: one month."""

    def validate(self) -> None:
        if self.auth not in ("ticket", "iam"):
            raise ValueError(f"auth must be 'ticket' or 'iam', got {self.auth!r}")
        if not 5 <= self.ticket_ttl.to_seconds() <= 900:
            raise ValueError("ticket_ttl must be between 5 seconds and 15 minutes")
        if not 60 <= self.event_ttl.to_seconds() <= 7 * 86_400:
            raise ValueError("event_ttl must be between 1 minute and 7 days")
        if not 30 <= self.worker_timeout.to_seconds() <= 900:
            raise ValueError("worker_timeout must be between 30 seconds and 15 minutes (Lambda's limit)")
        if not 2 <= self.worker_max_concurrency <= 1000:
            raise ValueError("worker_max_concurrency must be between 2 and 1000 (the event source mapping's limits)")
        if self.throttling_rate_limit < 1 or self.throttling_burst_limit < 1:
            raise ValueError("throttling_rate_limit and throttling_burst_limit must be at least 1")


class StreamingApi(Construct):
    """The WebSocket API of a StatefulAgent: made by ``StatefulAgent(streaming_options=...)``, which passes its parts.

    Routes: ``$connect`` (a connect ticket redeemed by a Lambda ``REQUEST`` authorizer, or IAM), ``$disconnect``,
    ``sendMessage`` and ``resume`` (two-way: each answers), and ``$default`` (an ``error`` reply for any other
    frame). One function serves every route; under the ``reject`` policy a queue (with its dead-letter queue) feeds the
    worker that takes the turns, under ``enqueue`` the sessions' FIFO queue and worker do. Three tables with TTL:
    connect tickets, connections (index ``by_session``) and the event log; each has a keys-only ``by_owner`` index,
    through which ``POST /erase`` deletes a principal's items.

    The stage has throttling and JSON access logs. API Gateway has no X-Ray setting for WebSocket stages: the
    functions are traced, and each accepted message names the correlation id its worker's logs and trace carry.

    Parameters
    ----------
    options:
        See :class:`StreamingOptions`.
    function_options:
        The agent's function options (the worker runs the agent with them, ``worker_timeout`` aside).
    configure:
        Gives a function the session table and the session settings (the StatefulAgent's own): the routes read a
        session's owner and reserve its turn slot, the worker takes the turn.
    session_function:
        The REST API's function: it issues connect tickets and erases the stream tables.
    concurrency:
        The sessions' policy.
    session_queue, session_worker:
        The sessions' FIFO queue and its worker (``enqueue``): streamed messages go there. Default: none.
    encryption_key:
        The session table's customer managed key, for the stream tables, the queues and the logs. Default: AWS
        managed keys.

    Attributes
    ----------
    web_socket_api, stage, url (``wss://``), callback_url, ticket_table (``ticket`` only), connection_table, event_table,
    socket_function, authorizer_function (``ticket`` only), worker (the reject policy's; else the session worker),
    queue, dead_letter_queue (reject only), access_log_group
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: StreamingOptions,
        function_options: AgentFunctionOptions | None,
        configure: Callable[[AgentFunction], None],
        session_function: AgentFunction,
        concurrency: Literal["reject", "enqueue"],
        session_queue: sqs.IQueue | None = None,
        session_worker: AgentFunction | None = None,
        encryption_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        options.validate()
        if concurrency == "enqueue" and (session_queue is None or session_worker is None):
            raise ValueError("the enqueue policy streams through the sessions' FIFO queue: pass session_queue and session_worker")
        self.options = options
        self.encryption_key = encryption_key
        self._build_tables()
        companion = companion_options(
            function_options,
            store_redacted=(function_options or AgentFunctionOptions()).store_redacted,
            memory_size=512,
            timeout=Duration.seconds(29),
        )
        self.socket_function = AgentFunction(self, "Socket", handler_code=handler_dir("stream_socket"), options=companion)
        configure(self.socket_function)
        self.authorizer_function: AgentFunction | None = None
        if self.ticket_table is not None:
            self.authorizer_function = AgentFunction(
                self, "Authorizer", handler_code=handler_dir("stream_authorizer"), options=replace(companion, memory_size=256)
            )
            grant_table(self.ticket_table, self.authorizer_function.function, REDEEM_ACTIONS)
            self.authorizer_function.add_environment(contract.STREAM_TICKET_TABLE_ENV, self.ticket_table.table_name)
        self.queue: sqs.Queue | None = None
        self.dead_letter_queue: sqs.Queue | None = None
        if concurrency == "reject":
            self.worker = AgentFunction(
                self,
                "Worker",
                handler_code=handler_dir("stream_worker"),
                options=replace(function_options or AgentFunctionOptions(), timeout=options.worker_timeout),
            )
            configure(self.worker)
            queues = QueueWithDeadLetters(
                self,
                "Turns",
                visibility_timeout=visibility_timeout_for(options.worker_timeout),
                encryption_key=encryption_key,
            )
            self.queue, self.dead_letter_queue = queues.queue, queues.dead_letter_queue
            self.worker.alias.add_event_source(
                sources.SqsEventSource(
                    self.queue, batch_size=1, report_batch_item_failures=True, max_concurrency=options.worker_max_concurrency
                )
            )
            turn_queue: sqs.IQueue = self.queue
        else:
            assert session_worker is not None and session_queue is not None
            self.worker = session_worker
            turn_queue = session_queue
            self.socket_function.add_environment("AGENT_SESSION_QUEUE_URL", session_queue.queue_url)
        turn_queue.grant_send_messages(self.socket_function.function)
        self.socket_function.calls_service("sqs")
        if self.queue is not None:
            self.socket_function.add_environment(contract.STREAM_QUEUE_URL_ENV, self.queue.queue_url)
        lease = int(options.worker_timeout.to_seconds()) + 60
        self.socket_function.add_environment(f"{contract.STREAM_ENV_PREFIX}TURN_LEASE_SECONDS", str(lease))
        self._build_api()
        self._grant(self.socket_function, connections=CONNECTION_ACTIONS, events=EVENT_READ_ACTIONS)
        self._grant(self.worker, connections=("dynamodb:DeleteItem",), events=EVENT_WRITE_ACTIONS)
        grant_index_query(self.connection_table, self.worker.function, contract.STREAM_SESSION_INDEX)
        self._grant_tickets_and_erasure(session_function)
        self._encrypt_logs()

    @property
    def tables(self) -> list[dynamodb.Table]:
        """The streaming tables: connect tickets (``ticket`` only), connections and the event log."""
        return [t for t in (self.ticket_table, self.connection_table, self.event_table) if t is not None]

    @property
    def url(self) -> str:
        """The ``wss://`` URL of the stage."""
        return self.stage.url

    @property
    def callback_url(self) -> str:
        """The ``https://`` URL of the stage's ``@connections`` API."""
        return self.stage.callback_url

    def _build_tables(self) -> None:
        key = self.encryption_key
        ttl = contract.STREAM_TTL_ATTRIBUTE
        self.ticket_table: dynamodb.Table | None = None
        if self.options.auth == "ticket":
            self.ticket_table = secure_table(
                self, "Tickets", partition_key=contract.STREAM_TICKET_KEY, time_to_live_attribute=ttl, encryption_key=key
            )
        self.connection_table = secure_table(
            self, "Connections", partition_key=contract.STREAM_CONNECTION_KEY, time_to_live_attribute=ttl, encryption_key=key
        )
        keys_only_index(self.connection_table, contract.STREAM_SESSION_INDEX, contract.STREAM_SESSION_ATTRIBUTE)
        self.event_table = secure_table(
            self,
            "Events",
            partition_key=contract.STREAM_EVENT_PARTITION_KEY,
            sort_key=dynamodb.Attribute(name=contract.STREAM_EVENT_SORT_KEY, type=dynamodb.AttributeType.NUMBER),
            time_to_live_attribute=ttl,
            encryption_key=key,
        )
        for table in self.tables:
            keys_only_index(table, contract.STREAM_OWNER_INDEX, contract.STREAM_OWNER_ATTRIBUTE)

    def _build_api(self) -> None:
        options = self.options
        socket = integrations.WebSocketLambdaIntegration
        target = self.socket_function.alias
        if self.authorizer_function is not None:
            authorizer: apigwv2.IWebSocketRouteAuthorizer = authorizers.WebSocketLambdaAuthorizer(
                "Tickets", self.authorizer_function.alias, identity_source=["route.request.querystring.ticket"]
            )
        else:
            authorizer = authorizers.WebSocketIamAuthorizer()
        self.web_socket_api = apigwv2.WebSocketApi(
            self,
            "Api",
            description=f"agentrail streaming API {self.node.path}",
            route_selection_expression="$request.body.action",
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=socket("ConnectIntegration", target), authorizer=authorizer
            ),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(integration=socket("DisconnectIntegration", target)),
            default_route_options=apigwv2.WebSocketRouteOptions(
                integration=socket("DefaultIntegration", target), return_response=True
            ),
        )
        for route in ("$disconnect", "$default"):
            self._acknowledge_route(route)
        for action in contract.STREAM_ACTIONS:
            self.web_socket_api.add_route(
                action, integration=socket(f"{action[0].upper()}{action[1:]}Integration", target), return_response=True
            )
            self._acknowledge_route(action)
        self.access_log_group = log_group(
            self, "AccessLogs", retention=options.access_log_retention, encryption_key=self.encryption_key
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.web_socket_api,
            stage_name=options.stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=options.throttling_rate_limit, burst_limit=options.throttling_burst_limit
            ),
        )
        log_stage_access(self.stage, self.access_log_group, ACCESS_LOG_FORMAT)
        default_resource(self.stage).add_property_override(
            "DefaultRouteSettings",
            {
                "ThrottlingRateLimit": options.throttling_rate_limit,
                "ThrottlingBurstLimit": options.throttling_burst_limit,
                "DataTraceEnabled": False,
                "LoggingLevel": "ERROR",
            },
        )
        for function in (self.socket_function, self.worker):
            self.web_socket_api.grant_manage_connections(function.function)
            function.acknowledge_policy(
                f"IAM5[Resource::{arn_prefix(self, 'execute-api')}:<{logical_id(self.web_socket_api)}>/*/*/@connections/*]",
                "Posting to a WebSocket connection names its id, which API Gateway assigns at connect: the grant "
                "covers this API's @connections only (execute-api:ManageConnections).",
            )
            function.add_environment(contract.STREAM_CONNECTIONS_URL_ENV, self.stage.callback_url)
            function.allow_internet_egress(
                f"{function.node.path} posts to WebSocket connections (the stage's public @connections API)",
                "turn streaming off (an execute-api VPC endpoint with private DNS would capture the stage's public host name)",
            )

    def _acknowledge_route(self, route_key: str) -> None:
        route = self.web_socket_api.node.find_child(f"{route_key}-Route")
        acknowledge(
            default_resource(route),
            "APIG4",
            "A WebSocket API authorizes once, at $connect (a connect ticket or IAM); API Gateway runs no authorizer on "
            "the later routes of an authorized connection, and the routes check that the session is the caller's.",
        )

    def _grant(self, function: AgentFunction, *, connections: tuple[str, ...], events: tuple[str, ...]) -> None:
        grant_table(self.connection_table, function.function, connections)
        grant_table(self.event_table, function.function, events)
        function.add_environment(contract.STREAM_CONNECTION_TABLE_ENV, self.connection_table.table_name)
        function.add_environment(contract.STREAM_EVENT_TABLE_ENV, self.event_table.table_name)
        function.add_environment(f"{contract.STREAM_ENV_PREFIX}EVENT_TTL_SECONDS", str(int(self.options.event_ttl.to_seconds())))

    def _grant_tickets_and_erasure(self, function: AgentFunction) -> None:
        if self.ticket_table is not None:
            grant_table(self.ticket_table, function.function, TICKET_ACTIONS)
            function.add_environment(contract.STREAM_TICKET_TABLE_ENV, self.ticket_table.table_name)
            function.add_environment(
                f"{contract.STREAM_ENV_PREFIX}TICKET_TTL_SECONDS", str(int(self.options.ticket_ttl.to_seconds()))
            )
        function.add_environment(contract.STREAM_CONNECTION_TABLE_ENV, self.connection_table.table_name)
        function.add_environment(contract.STREAM_EVENT_TABLE_ENV, self.event_table.table_name)

        def erase() -> None:
            for table in self.tables:
                grant_index_query(table, function.function, contract.STREAM_OWNER_INDEX)
                grant_table(table, function.function, ERASE_ACTIONS)

        function.when_serving_erasure(erase)

    def _encrypt_logs(self) -> None:
        """Under the session table's customer managed key: the functions' logs and the stage's access logs."""
        if self.encryption_key is None:
            return
        for part in (self.socket_function, self.worker, *([self.authorizer_function] if self.authorizer_function else [])):
            part.encrypt_logs(self.encryption_key)
        encrypt_log_group(self.access_log_group, self.encryption_key)


__all__ = ["ACCESS_LOG_FORMAT", "StreamingApi", "StreamingOptions"]
