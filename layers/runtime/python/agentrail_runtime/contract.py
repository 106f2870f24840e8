"""What the runtime and the CDK constructs must agree on, in one dependency-free module.

The constructs import this module, and only this one, from the runtime: it uses
the standard library alone and imports nothing else from ``agentrail_runtime``,
so an app that ``pip install``-s agentrail-aws without pydantic can still use it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

#: Model providers a model spec may name.
PROVIDERS = ("local", "bedrock", "openai")
#: A model spec: ``local``, ``bedrock:<model-id>`` or ``openai:<model>``.
MODEL_SPEC = re.compile(r"^(local|(bedrock|openai):[\w.:/-]+)$")
#: How a wrong model spec is explained, by the runtime's settings and by the constructs at synth.
MODEL_SPEC_HELP = "use 'local', 'bedrock:<model-id>' or 'openai:<model>'"
#: The kinds of step an agent may give a model of their own (``AGENT_STEP_MODELS``): the router's choice of a
#: specialist, the supervisor's plan of subtasks, and its review of the workers' results into the final answer.
StepKind = Literal["routing", "planning", "review"]
STEP_KINDS: tuple[StepKind, ...] = ("routing", "planning", "review")


def step_models_problem(step_models: Mapping[str, str]) -> str | None:
    """What is wrong with a ``step_models`` mapping (one sentence), or ``None``: the runtime's settings and the
    constructs at synth say the same."""
    for kind, spec in step_models.items():
        if kind not in STEP_KINDS:
            return f"step_models names an unknown kind of step {kind!r}; choose from {', '.join(STEP_KINDS)}"
        if not MODEL_SPEC.match(spec):
            return f"step_models[{kind!r}] is {spec!r}: {MODEL_SPEC_HELP}"
    return None


#: Cross-region inference profile ids start with one of these ("us.amazon.nova-lite-v1:0").
INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "ca.", "jp.", "au.")

#: AWS dependencies ``GET /health`` can probe (``AGENT_HEALTH_CHECKS`` entries' ``kind``).
HealthCheckKind = Literal["dynamodb", "sqs", "s3", "secretsmanager", "stepfunctions", "events", "sns"]
HEALTH_CHECK_KINDS: tuple[HealthCheckKind, ...] = ("dynamodb", "sqs", "s3", "secretsmanager", "stepfunctions", "events", "sns")

#: Names of runtime exceptions that Step Functions retries (a Lambda error's ``errorType`` is its class name).
MODEL_THROTTLED_ERROR = "ModelThrottledError"
MODEL_UNAVAILABLE_ERROR = "ModelUnavailableError"
#: The model's transient failures: worth retrying later.
MODEL_TRANSIENT_ERRORS = (MODEL_THROTTLED_ERROR, MODEL_UNAVAILABLE_ERROR)
#: EventBridge refused a task's event after its status was written: the event waits in the task's outbox, and a
#: retry of the step (or a redelivery of the message) publishes it.
TASK_EVENT_NOT_PUBLISHED_ERROR = "TaskEventNotPublished"


class ApiErrorSpec(NamedTuple):
    """One answer of the error contract: its status, its stable ``error`` code, who answers it and when."""

    status: int
    code: str
    source: Literal["function", "gateway"]
    when: str
    #: The answer carries ``Retry-After`` (seconds).
    retry_after: bool = False


#: The error contract of every agent API, every route and pattern: each error answer is one of these, with the body
#: ``{"error": code, "message", "request_id", "details"?}``. The handlers refuse to answer a pair not listed here, the
#: OpenAPI document lists them per route, the API Gateway gateway responses use the ``gateway`` ones, and the README's
#: table is checked against this one.
API_ERRORS: tuple[ApiErrorSpec, ...] = (
    ApiErrorSpec(400, "invalid_json", "function", "The body is not JSON (RFC 8259: NaN and Infinity are not JSON)."),
    ApiErrorSpec(400, "nesting_too_deep", "function", "The body nests arrays and objects deeper than 64 levels."),
    ApiErrorSpec(400, "invalid_request", "function", "A field is missing, mistyped, out of range or unknown."),
    ApiErrorSpec(400, "invalid_request", "gateway", "API Gateway's request validation refused the body or a parameter."),
    ApiErrorSpec(400, "unknown_model", "function", "`model` names a model the function is not configured with."),
    ApiErrorSpec(
        400, "input_blocked", "function", "An input guard of the agent refused the message; `reason` names its reason code."
    ),
    ApiErrorSpec(400, "invalid_cursor", "function", "`cursor` is not one this API issued."),
    ApiErrorSpec(400, "unknown_task_type", "function", "`task_type` is not one of the function's task types."),
    ApiErrorSpec(400, "invalid_callback_url", "function", "`callback_url` is not a public https URL."),
    ApiErrorSpec(
        400,
        "batch_lane_refused",
        "function",
        "`lane` is `batch` but the deployment has no batch lane, or the agent has tools, or its model or the task type "
        "cannot run as a Bedrock batch job.",
    ),
    ApiErrorSpec(400, "invalid_idempotency_key", "function", "`Idempotency-Key` is not 1 to 128 printable characters."),
    ApiErrorSpec(400, "bad_request", "gateway", "API Gateway refused the request for another reason."),
    ApiErrorSpec(401, "unauthenticated", "function", "The request reached the function without an authenticated caller."),
    ApiErrorSpec(401, "invalid_signature", "function", "A webhook's HMAC signature is missing, forged, stale or replayed."),
    ApiErrorSpec(401, "unauthorized", "gateway", "The Cognito token is missing or invalid."),
    ApiErrorSpec(403, "not_found_or_unauthenticated", "gateway", "No such route, or no credentials (API Gateway cannot tell)."),
    ApiErrorSpec(403, "forbidden", "gateway", "The caller may not call this route."),
    ApiErrorSpec(403, "invalid_api_key", "gateway", "The API key is missing or invalid."),
    ApiErrorSpec(403, "invalid_signature", "gateway", "The SigV4 signature does not match the request."),
    ApiErrorSpec(403, "expired_token", "gateway", "The credentials have expired."),
    ApiErrorSpec(403, "not_an_approver", "function", "The caller is not in the approval's approver group."),
    ApiErrorSpec(403, "self_approval", "function", "The requester may not decide its own approval."),
    ApiErrorSpec(403, "erase_forbidden", "function", "The caller may erase only its own data, unless it is an operator."),
    ApiErrorSpec(404, "not_found", "function", "No route matches the method and path."),
    ApiErrorSpec(404, "session_not_found", "function", "No such session for this caller (or it expired)."),
    ApiErrorSpec(404, "task_not_found", "function", "No such task for this caller."),
    ApiErrorSpec(404, "turn_not_found", "function", "The session has no such turn (yet)."),
    ApiErrorSpec(404, "approval_not_found", "function", "No such approval visible to this caller."),
    ApiErrorSpec(409, "turn_in_progress", "function", "Another turn of the session was answered first.", retry_after=True),
    ApiErrorSpec(409, "state_conflict", "function", "`expected_version` is not the state's current version."),
    ApiErrorSpec(409, "task_finished", "function", "The task has already finished."),
    ApiErrorSpec(
        409, "request_in_progress", "function", "The same `Idempotency-Key` is still being processed.", retry_after=True
    ),
    ApiErrorSpec(409, "feedback_already_given", "function", "The turn or task already has its feedback; the first stands."),
    ApiErrorSpec(409, "already_decided", "function", "The approval is already decided."),
    ApiErrorSpec(409, "approval_expired", "function", "The task stopped waiting for the approval."),
    ApiErrorSpec(413, "payload_too_large", "function", "The body is over `max_request_bytes`."),
    ApiErrorSpec(413, "payload_too_large", "gateway", "The request is over API Gateway's 10 MB limit."),
    ApiErrorSpec(413, "state_too_large", "function", "The state document is over 32,768 bytes."),
    ApiErrorSpec(413, "turn_too_large", "function", "The turn is too large to store."),
    ApiErrorSpec(415, "unsupported_media_type", "function", "A body whose `Content-Type` is not `application/json`."),
    ApiErrorSpec(422, "idempotency_key_reused", "function", "The `Idempotency-Key` was used with another request."),
    ApiErrorSpec(429, "throttled", "gateway", "The stage's rate or burst limit.", retry_after=True),
    ApiErrorSpec(429, "quota_exceeded", "gateway", "The API key's quota is used up until the quota period ends."),
    ApiErrorSpec(
        429,
        "budget_exceeded",
        "function",
        "The caller's (tenant's) or the agent's daily budget is spent until the next UTC midnight; `budget` names it.",
        retry_after=True,
    ),
    ApiErrorSpec(500, "internal_error", "function", "An unexpected error; the request id identifies it."),
    ApiErrorSpec(500, "unsupported_event", "function", "The function got an event it does not serve (a wiring error)."),
    ApiErrorSpec(500, "gateway_error", "gateway", "API Gateway could not reach the function or read its answer."),
    ApiErrorSpec(502, "model_error", "function", "The model failed."),
    ApiErrorSpec(502, "model_rejected_request", "function", "The model rejected the request."),
    ApiErrorSpec(502, "model_unavailable", "function", "The model could not be reached or failed on its side."),
    ApiErrorSpec(502, "gateway_error", "gateway", "The function failed (crashed or timed out inside Lambda)."),
    ApiErrorSpec(503, "model_throttled", "function", "The model kept throttling.", retry_after=True),
    ApiErrorSpec(503, "decision_not_delivered", "function", "The decision did not reach the workflow.", retry_after=True),
    ApiErrorSpec(504, "gateway_error", "gateway", "The function did not answer within API Gateway's timeout."),
)


class GatewayMessageSpec(NamedTuple):
    """One answer an API Gateway HTTP API gives for itself: its status and the fixed ``{"message": message}`` body."""

    status: int
    message: str
    when: str


#: What an HTTP API (``AgentApiOptions(kind="http")``) answers for itself, before or instead of the function. HTTP
#: APIs have no custom gateway responses, so these keep AWS's own body, ``{"message": message}``, not the error
#: contract's shape, and carry no ``Retry-After``. Behind an HTTP API they replace the ``gateway`` rows of
#: :data:`API_ERRORS`; the served OpenAPI document lists them (``AGENT_API_KIND=http``) and the README's table is this one.
HTTP_API_GATEWAY_ERRORS: tuple[GatewayMessageSpec, ...] = (
    GatewayMessageSpec(400, "Bad Request", "The HTTP API refused a malformed request."),
    GatewayMessageSpec(401, "Unauthorized", "The JWT is missing or invalid."),
    GatewayMessageSpec(
        403, "Forbidden", "No SigV4 signature, a wrong or expired one, or IAM or the JWT's scopes deny the route."
    ),
    GatewayMessageSpec(404, "Not Found", "No route matches the method and path."),
    GatewayMessageSpec(413, "Request Entity Too Large", "The request is over the HTTP API's 10 MB limit."),
    GatewayMessageSpec(429, "Too Many Requests", "The stage's rate or burst limit (no `Retry-After`)."),
    GatewayMessageSpec(500, "Internal Server Error", "The function failed, or its answer is not a payload 2.0 response."),
    GatewayMessageSpec(503, "Service Unavailable", "The function did not answer within the HTTP API's 30 s timeout."),
)
#: Deepest nesting of arrays and objects a JSON body may have (``nesting_too_deep`` beyond it).
MAX_JSON_DEPTH = 64
#: What API Gateway's throttling answers in ``Retry-After`` (seconds).
THROTTLED_RETRY_AFTER_SECONDS = 1


#: Whose spending a daily budget caps: each tenant (the caller's principal) or each agent (its definition's name).
BudgetPer = Literal["tenant", "agent"]
BUDGET_PERS: tuple[BudgetPer, ...] = ("tenant", "agent")
#: What a daily budget counts: input plus output tokens, or USD priced with the function's price table.
BudgetUnit = Literal["tokens", "usd"]
BUDGET_UNITS: tuple[BudgetUnit, ...] = ("tokens", "usd")
#: The Bedrock guardrail of a function (its id or ARN, and its version): Converse's ``guardrailConfig`` on ``bedrock:``
#: models, and what :class:`~agentrail_runtime.guardrails.bedrock.BedrockGuardrailGuard` applies by default. An empty
#: id (local mode, which has no Bedrock) turns both off.
BEDROCK_GUARDRAIL_ID_ENV = "AGENT_BEDROCK_GUARDRAIL_ID"
BEDROCK_GUARDRAIL_VERSION_ENV = "AGENT_BEDROCK_GUARDRAIL_VERSION"
#: The environment variable holding a function's daily budgets, as :func:`budgets_to_env` writes them.
BUDGETS_ENV = "AGENT_BUDGETS"
#: The environment variable naming the DynamoDB table of the budgets' daily counters.
BUDGET_TABLE_ENV = "AGENT_BUDGET_TABLE"
#: Days a day's counter is kept after its UTC day ends, before DynamoDB's TTL deletes it.
BUDGET_COUNTER_RETENTION_DAYS = 3
#: Where the constructs write ``BudgetOptions.counter_retention_days`` and the runtime reads it.
BUDGET_RETENTION_DAYS_ENV = "AGENT_BUDGET_RETENTION_DAYS"

#: The global secondary indexes the runtime queries by name, which the constructs create and grant one by one:
#: sessions and tasks by ``owner`` and subtasks by ``parent`` (keys only: how erasure finds a principal's data),
#: approvals by ``status`` (``GET /approvals`` and the pending metrics) and by ``requester``, audit entries by ``actor``.
SESSION_OWNER_INDEX = "by_owner"
TASK_OWNER_INDEX = "by_owner"
TASK_PARENT_INDEX = "by_parent"
#: Tasks by ``owner``, newest first (sort key ``created_at``, keys only): the operator console's run list and costs.
TASK_OWNER_CREATED_INDEX = "by_owner_created"
APPROVAL_STATUS_INDEX = "by_status"
APPROVAL_REQUESTER_INDEX = "by_requester"
AUDIT_ACTOR_INDEX = "by_actor"
#: Erasure (``POST /erase``): the principal patterns that may erase anyone's data (a JSON list), the Cognito group
#: that may, and the secret that salts audit pseudonyms. The runtime's ``ErasureSettings`` reads ``AGENT_ERASE_<FIELD>``.
ERASE_ENV_PREFIX = "AGENT_ERASE_"
ERASE_OPERATORS_ENV = f"{ERASE_ENV_PREFIX}OPERATORS"
ERASE_OPERATOR_GROUP_ENV = f"{ERASE_ENV_PREFIX}OPERATOR_GROUP"
ERASE_SALT_SECRET_ENV = f"{ERASE_ENV_PREFIX}SALT_SECRET"

#: Shadow deployment: what the construct sets on the live function (the queue its sampler copies requests to, and
#: the share it copies) and on the shadow worker (the candidate's ``shadow`` alias, the comparison table, how long a
#: comparison is kept). The runtime's settings read ``AGENT_SHADOW_<FIELD>``.
SHADOW_ENV_PREFIX = "AGENT_SHADOW_"
SHADOW_QUEUE_URL_ENV = f"{SHADOW_ENV_PREFIX}QUEUE_URL"
SHADOW_PERCENT_ENV = f"{SHADOW_ENV_PREFIX}PERCENT"
SHADOW_FUNCTION_ENV = f"{SHADOW_ENV_PREFIX}FUNCTION"
SHADOW_TABLE_ENV = f"{SHADOW_ENV_PREFIX}TABLE"
SHADOW_RETENTION_DAYS_ENV = f"{SHADOW_ENV_PREFIX}RETENTION_DAYS"
#: The comparison table's partition key (API Gateway's request id) and TTL attribute.
SHADOW_PARTITION_KEY = "request_id"
SHADOW_TTL_ATTRIBUTE = "expires_at"
#: What the shadow worker calls on the comparison table: one conditional put per request, which alone decides
#: whether a redelivered message writes anything.
SHADOW_WORKER_TABLE_ACTIONS = ("dynamodb:PutItem",)
#: Who sent a sampled request (the caller as the API names it; a session turn's session owner), and the keys-only
#: index erasure finds a principal's comparisons through.
SHADOW_OWNER_ATTRIBUTE = "owner"
SHADOW_OWNER_INDEX = "by_owner"
#: What the live function may call on the comparison table itself when it serves ``POST /erase`` (besides a Query
#: of ``by_owner``, which lists the principal's comparisons): a delete of each, never a read or a write.
SHADOW_ERASE_TABLE_ACTIONS = ("dynamodb:DeleteItem",)

#: The response cache of a stateless agent (``ResponseCacheOptions``): its table and how long an answer is served.
#: The runtime's settings read ``AGENT_RESPONSE_CACHE_TABLE`` and ``AGENT_RESPONSE_CACHE_TTL_SECONDS``.
RESPONSE_CACHE_TABLE_ENV = "AGENT_RESPONSE_CACHE_TABLE"
RESPONSE_CACHE_TTL_ENV = "AGENT_RESPONSE_CACHE_TTL_SECONDS"
#: The cache table's partition key (the SHA-256 of the normalized request) and TTL attribute (epoch seconds).
RESPONSE_CACHE_PARTITION_KEY = "pk"
RESPONSE_CACHE_TTL_ATTRIBUTE = "expires_at"
#: What the stateless function calls on the cache table: a read of one answer and a write of one, nothing else.
RESPONSE_CACHE_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
#: Who an answer keyed per caller belongs to (the caller's principal; absent on an answer callers share), and the
#: sparse keys-only index erasure finds a principal's answers through.
RESPONSE_CACHE_OWNER_ATTRIBUTE = "owner"
RESPONSE_CACHE_OWNER_INDEX = "by_owner"
#: What the stateless function may call on the cache table itself when it serves ``POST /erase`` (besides a Query of
#: ``by_owner``, which lists the principal's answers): a delete of each.
RESPONSE_CACHE_ERASE_TABLE_ACTIONS = ("dynamodb:DeleteItem",)
#: The range of a cached answer's life, in seconds: one minute to 30 days. Default: one hour.
RESPONSE_CACHE_MIN_TTL_SECONDS = 60
RESPONSE_CACHE_MAX_TTL_SECONDS = 2_592_000
RESPONSE_CACHE_DEFAULT_TTL_SECONDS = 3600

#: The batch lane of async tasks (``BatchLaneOptions``): a task submitted with ``"lane": "batch"`` waits in the task
#: table (its ``batch_queue`` attribute, on the sparse keys-only ``by_batch`` index sorted by ``created_at``) until the
#: lane's scheduled function flushes it into a Bedrock batch inference job. The runtime's ``BatchLaneSettings`` read
#: ``AGENT_BATCH_<FIELD>``.
TaskLane = Literal["on_demand", "batch"]
TASK_LANES: tuple[TaskLane, ...] = ("on_demand", "batch")
BelowMinimum = Literal["on_demand", "fail"]
BELOW_MINIMUM_CHOICES: tuple[BelowMinimum, ...] = ("on_demand", "fail")
BATCH_ENV_PREFIX = "AGENT_BATCH_"
BATCH_ENABLED_ENV = f"{BATCH_ENV_PREFIX}ENABLED"
BATCH_DEFAULT_LANE_ENV = f"{BATCH_ENV_PREFIX}DEFAULT_LANE"
BATCH_BUCKET_ENV = f"{BATCH_ENV_PREFIX}BUCKET"
BATCH_ROLE_ARN_ENV = f"{BATCH_ENV_PREFIX}ROLE_ARN"
BATCH_FLUSH_SIZE_ENV = f"{BATCH_ENV_PREFIX}FLUSH_SIZE"
BATCH_MAX_AGE_ENV = f"{BATCH_ENV_PREFIX}MAX_AGE_SECONDS"
BATCH_BELOW_MINIMUM_ENV = f"{BATCH_ENV_PREFIX}BELOW_MINIMUM"
TASK_BATCH_INDEX = "by_batch"
TASK_BATCH_ATTRIBUTE = "batch_queue"
#: What the lane's function calls on Bedrock: start a job over the bucket's files, and read where it stands.
BATCH_JOB_ACTIONS = ("bedrock:CreateModelInvocationJob", "bedrock:GetModelInvocationJob")
#: Bedrock may take up to this long over a job (its shortest timeout): the lane's completion window.
BATCH_WINDOW_HOURS = 24
#: A batch job's price against the same tokens on demand (Bedrock's batch inference price for the models it lists).
BATCH_PRICE_FACTOR = 0.5


class BatchModel(NamedTuple):
    """How a model takes batch inference jobs: the fewest and the most records one job may hold (Bedrock's quotas)."""

    min_records: int = 100
    max_records: int = 50_000


#: Bedrock models that take batch inference jobs (Converse records), by foundation model id prefix; an inference
#: profile follows its model.
BEDROCK_BATCH_MODELS: Mapping[str, BatchModel] = {
    "amazon.nova-micro": BatchModel(),
    "amazon.nova-lite": BatchModel(),
    "amazon.nova-pro": BatchModel(),
    "amazon.nova-premier": BatchModel(),
    "anthropic.claude-3-haiku": BatchModel(),
    "anthropic.claude-3-5-haiku": BatchModel(),
    "anthropic.claude-3-5-sonnet": BatchModel(),
    "anthropic.claude-3-7-sonnet": BatchModel(),
    "anthropic.claude-sonnet-4": BatchModel(),
    "anthropic.claude-opus-4": BatchModel(),
    "meta.llama3-1-8b-instruct": BatchModel(),
    "meta.llama3-1-70b-instruct": BatchModel(),
}
#: The local model runs a job of any size (local mode emulates the job): one record is enough.
LOCAL_BATCH_MODEL = BatchModel(min_records=1)


def batch_model(spec: str) -> BatchModel | None:
    """How the model ``spec`` takes batch jobs; ``None`` when it takes none (an ``openai:`` model, a Bedrock model
    without batch inference)."""
    provider, _, model_id = spec.partition(":")
    if provider == "local":
        return LOCAL_BATCH_MODEL
    if provider != "bedrock":
        return None
    for prefix in INFERENCE_PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            model_id = model_id[len(prefix) :]
            break
    key = max((k for k in BEDROCK_BATCH_MODELS if model_id.startswith(k)), key=len, default=None)
    return BEDROCK_BATCH_MODELS[key] if key is not None else None


def batch_model_problem(spec: str) -> str | None:
    """Why the model ``spec`` cannot run in the batch lane (one sentence), or ``None``."""
    if batch_model(spec) is None:
        return (
            f"The model {spec} does not take Bedrock batch inference jobs; use the on_demand lane or one of: "
            + ", ".join(f"bedrock:{key}..." for key in BEDROCK_BATCH_MODELS)
            + "."
        )
    return None


#: Streaming over a WebSocket API: the runtime's ``StreamSettings`` read ``AGENT_STREAM_<FIELD>``. Three tables, each
#: with its TTL attribute and a keys-only ``by_owner`` index (how erasure finds a principal's items):
#: connect tickets (partition key the ticket's SHA-256), connections (partition key the connection id, and a sparse
#: keys-only ``by_session`` index: the connections following a session) and the event log (one item per batch of
#: events: partition key the stream, a session id; sort key, a number, the batch's first event id).
STREAM_ENV_PREFIX = "AGENT_STREAM_"
STREAM_TICKET_TABLE_ENV = f"{STREAM_ENV_PREFIX}TICKET_TABLE"
STREAM_CONNECTION_TABLE_ENV = f"{STREAM_ENV_PREFIX}CONNECTION_TABLE"
STREAM_EVENT_TABLE_ENV = f"{STREAM_ENV_PREFIX}EVENT_TABLE"
#: The WebSocket stage's callback URL (``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}``), where the
#: ``@connections`` management API posts to a connection.
STREAM_CONNECTIONS_URL_ENV = f"{STREAM_ENV_PREFIX}CONNECTIONS_URL"
#: The queue a WebSocket message's turn waits on under the ``reject`` policy (``enqueue`` uses the sessions' FIFO queue).
STREAM_QUEUE_URL_ENV = f"{STREAM_ENV_PREFIX}QUEUE_URL"
#: The WebSocket API's actions (``$request.body.action``): the route keys besides ``$connect``, ``$disconnect`` and
#: ``$default``.
STREAM_ACTIONS = ("sendMessage", "resume")
STREAM_TICKET_KEY = "ticket_hash"
STREAM_CONNECTION_KEY = "connection_id"
STREAM_EVENT_PARTITION_KEY = "stream"
STREAM_EVENT_SORT_KEY = "first_id"
STREAM_SESSION_ATTRIBUTE = "session_id"
STREAM_SESSION_INDEX = "by_session"
STREAM_OWNER_ATTRIBUTE = "owner"
STREAM_OWNER_INDEX = "by_owner"
STREAM_TTL_ATTRIBUTE = "expires_at"


class BudgetLimit(NamedTuple):
    """One daily budget: at most ``limit`` ``unit`` per UTC day, for each tenant or each agent (``per``)."""

    per: BudgetPer
    unit: BudgetUnit
    limit: float


def check_budget(per: object, unit: object, limit: object) -> BudgetLimit:
    """The budget ``per``/``unit``/``limit``, validated.

    Raises
    ------
    ValueError
        Naming the fix: an unknown ``per`` or ``unit``, or a limit that is not a finite number above zero (whole
        for tokens).
    """
    if per not in BUDGET_PERS:
        raise ValueError(f"a budget is per {' or per '.join(BUDGET_PERS)}, got per={per!r}")
    if unit not in BUDGET_UNITS:
        raise ValueError(f"a budget counts {' or '.join(BUDGET_UNITS)}, got unit={unit!r}")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit) or limit <= 0:
        raise ValueError(f"the daily {unit} budget per {per} must be a number above zero, got {limit!r}")
    if unit == "tokens" and limit != int(limit):
        raise ValueError(f"the daily tokens budget per {per} must be a whole number of tokens, got {limit!r}")
    return BudgetLimit(per, unit, int(limit) if unit == "tokens" else float(limit))


def budgets_to_env(budgets: tuple[BudgetLimit, ...] | list[BudgetLimit]) -> str:
    """``AGENT_BUDGETS``: a JSON list of ``{"per", "unit", "limit"}`` objects, at most one per (per, unit)."""
    seen: set[tuple[str, str]] = set()
    for budget in budgets:
        check_budget(*budget)
        if (budget.per, budget.unit) in seen:
            raise ValueError(f"two daily {budget.unit} budgets per {budget.per}: declare each (per, unit) once")
        seen.add((budget.per, budget.unit))
    return json.dumps([{"per": b.per, "unit": b.unit, "limit": b.limit} for b in budgets], separators=(",", ":"))


def budgets_from_env(text: str) -> tuple[BudgetLimit, ...]:
    """The budgets ``AGENT_BUDGETS`` declares (``""``: none).

    Raises
    ------
    ValueError
        The text is not what :func:`budgets_to_env` writes.
    """
    if not text.strip():
        return ()
    try:
        items = json.loads(text)
    except ValueError:
        raise ValueError(f"{BUDGETS_ENV} is not JSON") from None
    if not isinstance(items, list) or not all(isinstance(item, dict) and set(item) == {"per", "unit", "limit"} for item in items):
        raise ValueError(f'{BUDGETS_ENV} must be a JSON list of {{"per", "unit", "limit"}} objects')
    budgets = tuple(check_budget(item["per"], item["unit"], item["limit"]) for item in items)
    budgets_to_env(budgets)  # one per (per, unit)
    return budgets


def api_error(status: int, code: str) -> ApiErrorSpec:
    """The contract's entry for ``(status, code)``.

    Raises
    ------
    KeyError
        The pair is not in :data:`API_ERRORS`: add it there (and to the README's table) first.
    """
    for spec in API_ERRORS:
        if (spec.status, spec.code) == (status, code):
            return spec
    raise KeyError(f"{status} {code!r} is not in the API error contract (agentrail_runtime.contract.API_ERRORS)")


def http_api_gateway_error(status: int, message: str) -> GatewayMessageSpec:
    """The HTTP API gateway's own answer ``status`` with the body ``{"message": message}``.

    Raises
    ------
    KeyError
        The pair is not in :data:`HTTP_API_GATEWAY_ERRORS`.
    """
    for spec in HTTP_API_GATEWAY_ERRORS:
        if (spec.status, spec.message) == (status, message):
            return spec
    raise KeyError(f"{status} {message!r} is not an HTTP API gateway answer (agentrail_runtime.contract.HTTP_API_GATEWAY_ERRORS)")


def unknown_model_message(spec: str) -> str:
    """The one sentence that refuses a model spec."""
    return f"unknown model {spec!r}: {MODEL_SPEC_HELP}"


# -- JSON Schema draft-04 (API Gateway request models): the runtime's models and an ASGI app's OpenAPI document

DRAFT4 = "http://json-schema.org/draft-04/schema#"
#: Keywords that only annotate (or that API Gateway does not need): dropped.
_ANNOTATIONS = frozenset({"title", "default", "examples", "readOnly", "writeOnly", "deprecated", "$comment"})
#: Keywords draft-04 has, with the same meaning as in 2020-12: kept (their subschemas converted).
_DRAFT4_KEYWORDS = frozenset(
    {
        "type", "description", "enum", "format", "pattern", "minLength", "maxLength", "minimum", "maximum",
        "multipleOf", "minItems", "maxItems", "uniqueItems", "items", "minProperties", "maxProperties",
        "required", "properties", "additionalProperties", "anyOf", "allOf", "oneOf", "not",
    }
)  # fmt: skip
_SUBSCHEMA = frozenset({"items", "additionalProperties", "not"})
_SUBSCHEMA_LISTS = frozenset({"anyOf", "allOf", "oneOf"})


_NUMBERS = frozenset({"minimum", "maximum", "multipleOf"})


def _number(value: float) -> float:
    """``0.0`` → ``0``: the OpenAPI document types every bound as a float; the model reads better without it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class UnsupportedSchema(ValueError):
    """A 2020-12 keyword with no draft-04 equivalent: converting it would loosen or change validation."""


def draft4(schema: Mapping[str, Any], definitions: Mapping[str, Any] | None = None, *, root: bool = True) -> dict[str, Any]:
    """Convert a pydantic (JSON Schema 2020-12 / OpenAPI 3.1) schema to a self-contained draft-04 one.

    - ``$ref`` to ``#/$defs/X`` or ``#/components/schemas/X`` is inlined (from ``definitions`` or ``$defs``);
    - ``anyOf [X, {"type": "null"}]`` with a typed ``X`` becomes ``X`` whose ``type`` also allows ``"null"``;
    - ``const: v`` becomes ``enum: [v]``;
    - a numeric ``exclusiveMinimum``/``exclusiveMaximum`` becomes ``minimum``/``maximum`` plus ``true``;
    - annotations (``title``, ``default``, ...) are dropped; any other keyword raises :class:`UnsupportedSchema`.

    The root also gets ``"$schema"`` draft-04.
    """
    defs: dict[str, Any] = {**(definitions or {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        if name not in defs:
            raise UnsupportedSchema(f"$ref {schema['$ref']!r} names no known definition")
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        converted = draft4({**defs[name], **siblings}, defs, root=False)
    else:
        converted = _convert(schema, defs)
    return {"$schema": DRAFT4, **converted} if root else converted


def _convert(schema: Mapping[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ANNOTATIONS or key == "$defs":
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            if isinstance(value, bool):  # already draft-04
                out[key] = value
            else:
                out["minimum" if key == "exclusiveMinimum" else "maximum"] = _number(value)
                out[key] = True
        elif key == "properties":
            out[key] = {name: draft4(sub, defs, root=False) for name, sub in value.items()}
        elif key in _SUBSCHEMA and isinstance(value, Mapping):
            out[key] = draft4(value, defs, root=False)
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [draft4(sub, defs, root=False) for sub in value]
        elif key in _NUMBERS:
            out[key] = _number(value)
        elif key in _DRAFT4_KEYWORDS:
            out[key] = value
        else:
            raise UnsupportedSchema(f"JSON Schema keyword {key!r} has no draft-04 equivalent")
    return _fold_nullable(out)


def _fold_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [X, null]`` → ``X`` with ``"null"`` added to its ``type`` (what API Gateway and draft-04 read best)."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2 or {"type": "null"} not in branches:
        return schema
    (other,) = [b for b in branches if b != {"type": "null"}]
    kind = other.get("type")
    if not isinstance(kind, str) or "anyOf" in other:
        return schema
    folded = {k: v for k, v in schema.items() if k != "anyOf"}
    if any(k in folded and folded[k] != other[k] for k in other):
        return schema
    folded.update(other)
    folded["type"] = [kind, "null"]
    if "enum" in folded:
        folded["enum"] = [*folded["enum"], None]
    return folded


__all__ = [
    "API_ERRORS",
    "APPROVAL_REQUESTER_INDEX",
    "APPROVAL_STATUS_INDEX",
    "AUDIT_ACTOR_INDEX",
    "BEDROCK_GUARDRAIL_ID_ENV",
    "BEDROCK_GUARDRAIL_VERSION_ENV",
    "BUDGETS_ENV",
    "BUDGET_COUNTER_RETENTION_DAYS",
    "BUDGET_PERS",
    "BUDGET_RETENTION_DAYS_ENV",
    "BUDGET_TABLE_ENV",
    "BUDGET_UNITS",
    "DRAFT4",
    "ERASE_ENV_PREFIX",
    "ERASE_OPERATORS_ENV",
    "ERASE_OPERATOR_GROUP_ENV",
    "ERASE_SALT_SECRET_ENV",
    "HEALTH_CHECK_KINDS",
    "HTTP_API_GATEWAY_ERRORS",
    "INFERENCE_PROFILE_PREFIXES",
    "MAX_JSON_DEPTH",
    "MODEL_SPEC",
    "MODEL_SPEC_HELP",
    "MODEL_THROTTLED_ERROR",
    "MODEL_TRANSIENT_ERRORS",
    "MODEL_UNAVAILABLE_ERROR",
    "PROVIDERS",
    "RESPONSE_CACHE_DEFAULT_TTL_SECONDS",
    "RESPONSE_CACHE_ERASE_TABLE_ACTIONS",
    "RESPONSE_CACHE_MAX_TTL_SECONDS",
    "RESPONSE_CACHE_MIN_TTL_SECONDS",
    "RESPONSE_CACHE_OWNER_ATTRIBUTE",
    "RESPONSE_CACHE_OWNER_INDEX",
    "RESPONSE_CACHE_PARTITION_KEY",
    "RESPONSE_CACHE_TABLE_ACTIONS",
    "RESPONSE_CACHE_TABLE_ENV",
    "RESPONSE_CACHE_TTL_ATTRIBUTE",
    "RESPONSE_CACHE_TTL_ENV",
    "SESSION_OWNER_INDEX",
    "SHADOW_ENV_PREFIX",
    "SHADOW_ERASE_TABLE_ACTIONS",
    "SHADOW_FUNCTION_ENV",
    "SHADOW_OWNER_ATTRIBUTE",
    "SHADOW_OWNER_INDEX",
    "SHADOW_PARTITION_KEY",
    "SHADOW_PERCENT_ENV",
    "SHADOW_QUEUE_URL_ENV",
    "SHADOW_RETENTION_DAYS_ENV",
    "SHADOW_TABLE_ENV",
    "SHADOW_TTL_ATTRIBUTE",
    "SHADOW_WORKER_TABLE_ACTIONS",
    "STEP_KINDS",
    "STREAM_ACTIONS",
    "STREAM_CONNECTIONS_URL_ENV",
    "STREAM_CONNECTION_KEY",
    "STREAM_CONNECTION_TABLE_ENV",
    "STREAM_ENV_PREFIX",
    "STREAM_EVENT_PARTITION_KEY",
    "STREAM_EVENT_SORT_KEY",
    "STREAM_EVENT_TABLE_ENV",
    "STREAM_OWNER_ATTRIBUTE",
    "STREAM_OWNER_INDEX",
    "STREAM_QUEUE_URL_ENV",
    "STREAM_SESSION_ATTRIBUTE",
    "STREAM_SESSION_INDEX",
    "STREAM_TICKET_KEY",
    "STREAM_TICKET_TABLE_ENV",
    "STREAM_TTL_ATTRIBUTE",
    "TASK_EVENT_NOT_PUBLISHED_ERROR",
    "TASK_OWNER_CREATED_INDEX",
    "TASK_OWNER_INDEX",
    "TASK_PARENT_INDEX",
    "THROTTLED_RETRY_AFTER_SECONDS",
    "ApiErrorSpec",
    "BudgetLimit",
    "BudgetPer",
    "BudgetUnit",
    "GatewayMessageSpec",
    "HealthCheckKind",
    "StepKind",
    "UnsupportedSchema",
    "api_error",
    "budgets_from_env",
    "budgets_to_env",
    "check_budget",
    "draft4",
    "http_api_gateway_error",
    "step_models_problem",
    "unknown_model_message",
]
