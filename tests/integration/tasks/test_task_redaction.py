"""``store_redacted``: a task with planted personal data stores none of it once it finished (the task item, its
checkpoint, result and S3 objects) and logs none of it at DEBUG, while its agent saw it as written; off, the record
keeps it as written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentrail_runtime.agent.loop import AgentCheckpoint
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.models.base import Message
from agentrail_runtime.models.local import LocalModel
from agentrail_runtime.observability import logger
from agentrail_runtime.tasks import TaskEvents, TaskStore
from agentrail_runtime.tasks.service import TaskService
from agentrail_runtime.tasks.settings import TaskSettings
from tests.integration.planted_pii import (
    DEFINITION,
    EMAIL,
    MESSAGE,
    PLANTED,
    PlantedModel,
    dumped,
    markers_in,
    planted_in,
    spy_on_redaction,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def debug_logging() -> Iterator[None]:
    level = logger.log_level
    logger.setLevel("DEBUG")
    yield
    logger.setLevel(level)


def run_planted_task(
    aws, task_handler, api_event, call, receive, sqs_event, lambda_context, agents_with, monkeypatch, *, store_redacted
):
    api, worker = task_handler("tasks"), task_handler("task_worker")
    model = PlantedModel()
    monkeypatch.setattr(worker.tasks, "agents", agents_with(model, definition=DEFINITION))
    monkeypatch.setattr(worker.tasks, "store_redacted", store_redacted)
    submitted = call(api.handler, api_event("submit", body={"message": MESSAGE}))
    worker.handler(sqs_event(receive()), lambda_context)
    read = call(api.handler, api_event("get-task", task_id=submitted.body["task_id"]))
    return model, read


def stored(aws) -> list[str]:
    listed = aws.s3.list_objects_v2(Bucket=aws.bucket).get("Contents", [])
    objects = [aws.s3.get_object(Bucket=aws.bucket, Key=o["Key"])["Body"].read().decode() for o in listed]
    return dumped(aws.task_items()) + objects


def test_with_store_redacted_a_finished_task_stores_and_logs_no_planted_value_and_the_markers_instead(
    aws,
    task_handler,
    api_event,
    call,
    receive,
    sqs_event,
    lambda_context,
    agents_with,
    monkeypatch,
    stdout_records,
    debug_logging,
):
    model, read = run_planted_task(
        aws, task_handler, api_event, call, receive, sqs_event, lambda_context, agents_with, monkeypatch, store_redacted=True
    )

    lines = dumped(stdout_records())
    assert read.body["status"] == "succeeded"
    assert EMAIL in model.seen[0]  # the agent saw the message as written
    assert planted_in(stored(aws)) == []
    assert markers_in(stored(aws)) == ["[REDACTED:email]", "[REDACTED:card_number]", "[REDACTED:aws_access_key]"]
    item = aws.task_item(read.body["task_id"])
    assert item["message"]["S"].startswith("Refund my card [REDACTED:card_number]; write to [REDACTED:email].")
    assert "[REDACTED:email]" in read.body["result"]["answer"]
    assert lines and planted_in(lines) == []
    assert markers_in(lines) == ["[REDACTED:email]", "[REDACTED:card_number]"]  # the tool logged its arguments


def test_without_store_redacted_the_task_record_keeps_the_planted_values(
    aws, task_handler, api_event, call, receive, sqs_event, lambda_context, agents_with, monkeypatch
):
    _, read = run_planted_task(
        aws, task_handler, api_event, call, receive, sqs_event, lambda_context, agents_with, monkeypatch, store_redacted=False
    )

    assert aws.task_item(read.body["task_id"])["message"]["S"] == MESSAGE
    assert set(planted_in(stored(aws))) >= set(PLANTED) - {"4111111111111111"}


def test_agent_store_redacted_reaches_the_task_service(aws):
    settings = TaskSettings(table="agentrail-tasks")

    on = TaskService.from_settings(settings, RuntimeSettings(store_redacted=True))
    off = TaskService.from_settings(settings, RuntimeSettings())

    assert (on.store_redacted, off.store_redacted) == (True, False)


def redacting_tasks(aws: Any, agents: Any) -> TaskService:
    """A task service on the test's task table that stores redacted (no event bus, one queue route)."""
    return TaskService(
        store=TaskStore(aws.table, client=aws.dynamodb),
        agents=agents,
        events=TaskEvents(None),
        routes={"default": "queue"},
        store_redacted=True,
    )


def test_with_store_redacted_each_checkpoint_of_a_run_redacts_only_the_messages_no_earlier_one_stored(
    aws, agents_with, monkeypatch
):
    # given a task service that stores redacted, and a spy on the redaction of each text
    tasks = redacting_tasks(aws, agents_with(LocalModel()))
    redacted = spy_on_redaction(monkeypatch)
    save = tasks.checkpointer("t-1")
    messages = [Message.user(MESSAGE)]

    # when one run saves three checkpoints, each a message longer than the last
    for step in range(3):
        messages = [*messages, Message.assistant(f"Step {step} done.")]
        save(AgentCheckpoint(messages=messages, history_length=0, steps=step + 1))

    # then the first message was redacted once, not once per checkpoint, and the last checkpoint holds its markers
    assert redacted.count(MESSAGE) == 1
    [item] = aws.task_items()
    assert EMAIL not in item["checkpoint_json"]["S"] and "[REDACTED:email]" in item["checkpoint_json"]["S"]
    assert AgentCheckpoint.model_validate_json(item["checkpoint_json"]["S"]).steps == 3


def test_with_store_redacted_each_run_checkpoint_of_a_multi_agent_run_redacts_only_the_messages_no_earlier_one_stored(
    aws, agents_with, monkeypatch
):
    # given a task service that stores redacted, an agent whose tool has side effects (checkpointed before and after
    # it runs), and spies on the redaction of each text and on the run checkpoints saved
    tasks = redacting_tasks(aws, agents_with(PlantedModel(), definition=DEFINITION))
    redacted = spy_on_redaction(monkeypatch)
    saves: list[str] = []
    save_run_checkpoint = tasks.store.save_run_checkpoint
    monkeypatch.setattr(tasks.store, "save_run_checkpoint", lambda *args: saves.append(args[-1]) or save_run_checkpoint(*args))

    # when one run of a multi-agent task calls the tool and answers
    tasks.run_agent(tasks.agents.agent(), "t-1", "router", MESSAGE)

    # then the user's message was redacted once however many checkpoints the run saved, each with its markers
    assert len(saves) >= 2
    assert redacted.count(MESSAGE) == 1
    assert all(EMAIL not in saved and "[REDACTED:email]" in saved for saved in saves)
