"""The async agent API: ``POST /tasks`` (202 + task id), ``GET /tasks/{id}``, ``DELETE /tasks/{id}``, the operator
console's reads (``GET /tasks``, ``GET /tasks/{id}/timeline``, ``GET /costs``, see :mod:`agentrail_runtime.api.console`),
``POST /tasks/{id}/feedback`` (the owner's rating, once), ``POST /erase`` (everything of a principal, see
:mod:`agentrail_runtime.erasure`), and
``GET /webhooks/secret`` (the caller's key for verifying its task webhooks).

``Idempotency-Key`` makes a retried submit return the same task (Powertools
idempotency, keyed on caller and key, with the payload validated), and a key
reused with a different payload is refused with 422.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel, Field

from agentrail_runtime.api.approvals import add_approval_routes
from agentrail_runtime.api.console import TaskSummary, add_console_routes
from agentrail_runtime.api.erasure import add_erasure_route
from agentrail_runtime.api.errors import (
    AgentResolver,
    ApiError,
    add_operational_routes,
    cognito_groups,
    error_responses,
    resource_links,
)
from agentrail_runtime.api.feedback import FeedbackOut, FeedbackRequest
from agentrail_runtime.approvals.service import ApprovalService
from agentrail_runtime.aws import read_secret
from agentrail_runtime.config import RuntimeSettings, load_settings
from agentrail_runtime.contract import BATCH_WINDOW_HOURS
from agentrail_runtime.erasure import PrincipalEraser, load_erasure_settings
from agentrail_runtime.metering import FeedbackGiven
from agentrail_runtime.signatures import SIGNATURE_HEADER, receiver_secret
from agentrail_runtime.tasks.models import TaskRecord
from agentrail_runtime.tasks.service import TASK_ID_PATTERN, BatchLaneRefused, TaskService, TaskSubmission, UnknownTaskType
from agentrail_runtime.tasks.settings import TaskSettings, load_task_settings
from agentrail_runtime.tasks.store import TaskFinished, TaskNotFound
from agentrail_runtime.tasks.webhook import InvalidCallbackUrl

API_TITLE = "agentrail async agent"
API_VERSION = "1.0.0"
IDEMPOTENCY_HEADER = "Idempotency-Key"

TaskId = Annotated[str, Path(pattern=TASK_ID_PATTERN, description="32 lowercase hex characters")]


class TaskAccepted(BaseModel):
    task_id: str
    status: str
    status_url: str = Field(description="GET it to follow the task")


class WebhookSecret(BaseModel):
    """The key that signs the caller's task webhooks, and how they are signed."""

    secret: str = Field(description="HMAC-SHA256 key; verify with its UTF-8 bytes. Yours alone: keep it secret.")
    header: str = Field(default=SIGNATURE_HEADER, description="The request header carrying t=<unix seconds>,v1=<hex>")
    signed_payload: str = Field(default="<t>.<raw body>", description="What the digest covers")


class BatchJobOut(BaseModel):
    """The Bedrock batch inference job answering a task of the batch lane."""

    job_arn: str = Field(description="The job's ARN (GetModelInvocationJob's identifier)")
    submitted_at: int = Field(description="When the job was submitted (epoch seconds)")
    answer_by: int = Field(description=f"When the job's window closes: {BATCH_WINDOW_HOURS} hours after it was submitted")


class TaskOut(BaseModel):
    """A task as its owner sees it."""

    task_id: str
    task_type: str
    status: str
    created_at: int
    updated_at: int
    started_at: int | None
    finished_at: int | None
    steps: int
    usage: dict[str, int]
    cost_usd: float | None
    spend: dict[str, Any]
    spend_by_model: dict[str, Any] = Field(
        default_factory=dict, description="Tokens, cost and runs per model the task used (a step model shows apart)"
    )
    error: dict[str, str] | None
    result: dict[str, Any] | None
    metadata: dict[str, Any]
    feedback: FeedbackOut | None = Field(default=None, description="The owner's rating of the task, once given")
    lane: str = Field(default="on_demand", description="on_demand or batch")
    batch_job: BatchJobOut | None = Field(default=None, description="The batch job answering the task (status batched)")

    @classmethod
    def of(cls, record: TaskRecord) -> TaskOut:
        return cls(
            **TaskSummary.of(record).model_dump(exclude={"message"}),
            spend={name: spend.model_dump(mode="json") for name, spend in record.spend.items()},
            spend_by_model={name: spend.model_dump(mode="json") for name, spend in record.spend_by_model.items()},
            error=record.error.model_dump() if record.error else None,
            result=record.result.model_dump(mode="json") if record.result else None,
            metadata=record.metadata,
            feedback=FeedbackOut.of(record.feedback),
            lane=record.lane or "on_demand",
            batch_job=BatchJobOut(
                job_arn=record.batch_job,
                submitted_at=record.batch_submitted_at,
                answer_by=record.batch_submitted_at + BATCH_WINDOW_HOURS * 3600,
            )
            if record.batch_job and record.batch_submitted_at is not None
            else None,
        )


class TaskFeedbackRequest(FeedbackRequest):
    """A rating of the task."""


class TaskFeedbackOut(BaseModel):
    task_id: str
    feedback: FeedbackOut


def create_tasks_app(
    *,
    tasks: TaskService | None = None,
    settings: RuntimeSettings | None = None,
    task_settings: TaskSettings | None = None,
    persistence: DynamoDBPersistenceLayer | None = None,
    approvals: ApprovalService | None = None,
    eraser: PrincipalEraser | None = None,
) -> AgentResolver:
    """Build the resolver; every dependency can be passed in (``eraser`` serves ``POST /erase``; default: the task
    store, the approvals' stores and the budgets, with ``AGENT_ERASE_*``)."""
    settings = settings or load_settings()
    task_settings = task_settings or load_task_settings()
    tasks = tasks or TaskService.from_settings(task_settings, settings)
    if persistence is None and task_settings.idempotency_table:
        persistence = DynamoDBPersistenceLayer(table_name=task_settings.idempotency_table)
    app = AgentResolver(
        max_request_bytes=settings.max_request_bytes,
        iam_identity=settings.iam_identity,
        api=settings.api_kind,
        models=settings.models,
        agent_version=tasks.agents.version,
    )

    owner = app.principal

    def submit(submission: dict[str, Any]) -> dict[str, Any]:
        # The idempotency payload stays the request as sent: a retry is recognised by what the client sent.
        request = TaskSubmission.model_validate(submission["request"]).model_copy(update={"message": submission["message"]})
        record = tasks.submit(request, owner=submission["owner"], correlation_id=submission["correlation_id"])
        return {"task_id": record.task_id, "status": record.status.value}

    submit_once = submit
    config: IdempotencyConfig | None = None
    if persistence is not None:
        config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=False,
            expires_after_seconds=24 * 3600,
        )
        submit_once = idempotent_function(data_keyword_argument="submission", persistence_store=persistence, config=config)(
            submit
        )

    app.answer(TaskNotFound, 404, "task_not_found", "No such task.")
    app.answer(TaskFinished, 409, "task_finished", lambda error: f"The task has already finished ({error.status.value}).")
    app.answer(
        UnknownTaskType, 400, "unknown_task_type", lambda error: f"Choose one of the task types: {', '.join(error.known)}."
    )
    app.answer(FeedbackGiven, 409, "feedback_already_given", "This task already has feedback; the first feedback stands.")
    app.answer(InvalidCallbackUrl, 400, "invalid_callback_url", str)
    app.answer(BatchLaneRefused, 400, "batch_lane_refused", str)
    app.answer(
        IdempotencyValidationError, 422, "idempotency_key_reused", "This Idempotency-Key was used with a different request."
    )
    app.answer(
        IdempotencyAlreadyInProgressError,
        409,
        "request_in_progress",
        "The same request is still being processed; retry shortly.",
        headers={"Retry-After": "1"},
    )

    @app.post(
        "/tasks",
        summary="Submit a task; answers 202 at once",
        responses={
            202: {
                "description": "Accepted: follow status_url",
                "links": resource_links(
                    "task_id",
                    {
                        "ReadTask": ("/tasks/{task_id}", "get"),
                        "CancelTask": ("/tasks/{task_id}", "delete"),
                        "GiveFeedback": ("/tasks/{task_id}/feedback", "post"),
                        "ReadTimeline": ("/tasks/{task_id}/timeline", "get"),
                    },
                ),
            },
            **error_responses(
                "unknown_model",
                "input_blocked",
                "unknown_task_type",
                "invalid_callback_url",
                "batch_lane_refused",
                "budget_exceeded",
                "invalid_idempotency_key",
                "request_in_progress",
                "idempotency_key_reused",
            ),
        },
    )
    def create(request: Annotated[TaskSubmission, Body()]) -> Response[TaskAccepted]:
        key = app.current_event.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and not (1 <= len(key) <= 128 and key.isprintable()):
            raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 128 printable characters.")
        caller = owner()
        tasks.agents.check_budget(caller)  # a tenant that has spent its day's budget is refused before anything is queued
        # A message an input guard blocks is refused (400), not queued; one it redacts is queued redacted.
        message = tasks.agents.check_input(request.message)
        if config is not None:
            # An in-progress record then expires with this invocation, so a crashed submit does not lock its key for a day.
            config.register_lambda_context(app.lambda_context)
        # Without a key there is nothing to deduplicate on: skip the persistence layer (and its warning).
        accepted = (submit_once if key else submit)(
            submission={
                "key": f"{caller}#{key}" if key else None,
                "owner": caller,
                "correlation_id": app.current_event.request_context.request_id,
                # A lane left out stays out (``null`` is no lane a client may send), as before lanes existed.
                "request": request.model_dump(mode="json", exclude={"lane"} if request.lane is None else None),
                "message": message,
            }
        )
        body = TaskAccepted(task_id=accepted["task_id"], status=accepted["status"], status_url=_status_url(accepted["task_id"]))
        return Response(status_code=202, content_type="application/json", body=body, headers={"Location": body.status_url})

    def _status_url(task_id: str) -> str:
        event = app.current_event
        host = event.headers.get("Host")
        stage = event.request_context.stage
        if host and stage and stage != "$default" and ".execute-api." in host:
            return f"https://{host}/{stage}/tasks/{task_id}"
        return f"/tasks/{task_id}"

    @app.get(
        "/tasks/<task_id>",
        summary="Status and result of a task (its owner only)",
        responses={200: {"description": "Success"}, **error_responses("task_not_found")},
    )
    def read(task_id: TaskId) -> TaskOut:
        return TaskOut.of(tasks.store.get_for(task_id, owner()))

    @app.delete(
        "/tasks/<task_id>",
        summary="Cancel a task that has not finished",
        responses={200: {"description": "Cancelled"}, **error_responses("task_not_found", "task_finished")},
    )
    def cancel(task_id: TaskId) -> TaskOut:
        return TaskOut.of(tasks.cancel(task_id, owner=owner()))

    @app.post(
        "/tasks/<task_id>/feedback",
        summary="Rate a task: a 1-5 score or thumbs up/down, once (its owner only)",
        responses={
            201: {"description": "Stored", "content": {"application/json": {"model": TaskFeedbackOut}}},
            **error_responses("task_not_found", "feedback_already_given"),
        },
    )
    def feedback(task_id: TaskId, request: Annotated[TaskFeedbackRequest, Body()]) -> Response[TaskFeedbackOut]:
        given = request.feedback(given_at=tasks.store.now())
        tasks.store.give_feedback(task_id, owner=owner(), feedback=given)
        tasks.agents.emit_feedback(given)
        body = TaskFeedbackOut(task_id=task_id, feedback=FeedbackOut.model_validate(given.model_dump()))
        return Response(status_code=201, content_type="application/json", body=body)

    if task_settings.webhook_secret:
        secret_id = task_settings.webhook_secret

        @app.get("/webhooks/secret", summary="The key that signs your task webhooks (each caller has its own)")
        def webhook_secret() -> Response[WebhookSecret]:
            body = WebhookSecret(secret=receiver_secret(read_secret(secret_id).encode(), owner()))
            return Response(status_code=200, content_type="application/json", body=body, headers={"Cache-Control": "no-store"})

    if approvals is None:
        approvals = ApprovalService.from_environment()
    if approvals is not None:
        add_approval_routes(app, approvals, owner)
    if eraser is None:
        eraser = PrincipalEraser(
            tasks=tasks.store,
            approvals=approvals.approvals if approvals is not None else None,
            audit=approvals.audit if approvals is not None else None,
            budgets=tasks.agents.budgets,
            settings=load_erasure_settings(),
        )
    add_erasure_route(app, eraser, owner)
    add_console_routes(
        app, tasks, approvals, owner, lambda: cognito_groups(app.current_event.raw_event.get("requestContext") or {})
    )
    add_operational_routes(app, checks=lambda: tasks.agents.health_checks, title=API_TITLE, version=API_VERSION)
    return app
