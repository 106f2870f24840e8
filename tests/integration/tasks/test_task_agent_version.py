"""The agent version on what a task stores and answers: the finished task item, and ``X-Agent-Version``."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def test_a_finished_task_item_records_the_version_of_the_agent_that_finished_it(
    aws, task_handler, api_event, call, receive, sqs_event, lambda_context
):
    api, worker = task_handler("tasks"), task_handler("task_worker")
    submitted = call(api.handler, api_event("submit", body={"message": "Calculate 6 * 7"}))
    queued = aws.task_item(submitted.body["task_id"])

    worker.handler(sqs_event(receive()), lambda_context)

    finished = aws.task_item(submitted.body["task_id"])
    assert "agent_version" not in queued
    assert finished["status"]["S"] == "succeeded"
    assert finished["agent_version"]["S"] == worker.tasks.agents.version
    assert re.fullmatch(r"[0-9a-f]{12}", finished["agent_version"]["S"])


def test_every_tasks_route_answers_with_x_agent_version_errors_included(aws, task_handler, api_event, call):
    api = task_handler("tasks")

    submitted = call(api.handler, api_event("submit", body={"message": "Calculate 6 * 7"}))
    read = call(api.handler, api_event("get-task", task_id=submitted.body["task_id"]))
    missing = call(api.handler, api_event("get-task"))  # the event's own id: no such task here

    assert (submitted.status, read.status, missing.status) == (202, 200, 404)
    assert {r.headers["X-Agent-Version"] for r in (submitted, read, missing)} == {api.app.agent_version}
