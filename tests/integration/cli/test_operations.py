"""agentrail dlq / approvals / openapi against moto: the commands operators run."""

from __future__ import annotations

import argparse
import io
import json

import boto3
import httpx
import pytest
from moto import mock_aws

from agentrail_cli.commands import run_dlq_list, run_dlq_redrive, run_openapi
from agentrail_cli.operations import Target, TargetError, peek_dead_letters, redrive
from agentrail_local.apigateway.auth import LocalPrincipal, verify_sigv4
from agentrail_runtime.tasks.models import TaskError, TaskRecord, TaskStatus
from agentrail_runtime.tasks.store import TaskStore


@pytest.fixture
def async_stack():
    """A task table, a task queue and its DLQ in moto, described the way an AsyncAgentStack's outputs do."""
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="tasks",
            KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "task_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="task-dlq")["QueueUrl"]
        queue = sqs.create_queue(QueueName="task-queue")["QueueUrl"]
        outputs = {"DeadLetterQueueUrl": dlq, "TaskQueueUrl": queue, "TaskTableName": "tasks", "ApiUrl": "http://127.0.0.1:1/v1"}
        target = Target("Agentrail-Async", outputs, boto3.session.Session(region_name="us-east-1"), None, None, None)
        yield target, sqs, TaskStore("tasks", client=ddb)


def _dead_letter(sqs, store: TaskStore, target: Target, task_id: str, cause: str) -> None:
    store.create(TaskRecord(task_id=task_id, owner="iam:alice", message="m", created_at=1, updated_at=1))
    store.mark_running(task_id)
    store.note_attempt_failure(task_id, TaskError(code="RuntimeError", message=cause))
    store.finish(task_id, status=TaskStatus.FAILED, error=TaskError(code="RuntimeError", message=cause))
    sqs.send_message(QueueUrl=target.output("DeadLetterQueueUrl"), MessageBody=json.dumps({"task_id": task_id}))


def test_dlq_list_shows_each_dead_lettered_task_with_its_cause_and_consumes_nothing(async_stack):
    target, sqs, store = async_stack
    _dead_letter(sqs, store, target, "a" * 32, "the tool kept failing")
    _dead_letter(sqs, store, target, "b" * 32, "model unavailable")

    letters = peek_dead_letters(target)

    assert sorted((letter.task_id, letter.cause) for letter in letters) == [
        ("a" * 32, "RuntimeError: the tool kept failing"),
        ("b" * 32, "RuntimeError: model unavailable"),
    ]
    assert len(peek_dead_letters(target)) == 2  # still there


def test_redrive_of_one_task_requeues_it_and_leaves_the_others(async_stack):
    target, sqs, store = async_stack
    _dead_letter(sqs, store, target, "a" * 32, "x")
    _dead_letter(sqs, store, target, "b" * 32, "y")

    moved = redrive(target, task_id="a" * 32)

    assert moved == ["a" * 32]
    assert store.get("a" * 32).status == TaskStatus.QUEUED
    queued = sqs.receive_message(QueueUrl=target.output("TaskQueueUrl"), MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["task_id"] for m in queued] == ["a" * 32]
    assert [letter.task_id for letter in peek_dead_letters(target)] == ["b" * 32]


def test_redrive_all_empties_the_dead_letter_queue(async_stack):
    target, sqs, store = async_stack
    for task_id in ("a" * 32, "b" * 32, "c" * 32):
        _dead_letter(sqs, store, target, task_id, "boom")

    moved = redrive(target, task_id=None)

    assert sorted(moved) == ["a" * 32, "b" * 32, "c" * 32]
    assert peek_dead_letters(target) == []


def test_redrive_of_a_task_not_in_the_dead_letter_queue_says_so(async_stack):
    target, _, _ = async_stack
    with pytest.raises(TargetError, match="not in the dead-letter queue"):
        redrive(target, task_id="f" * 32)


def test_dlq_commands_print_a_table_and_a_summary(async_stack, monkeypatch):
    target, sqs, store = async_stack
    _dead_letter(sqs, store, target, "a" * 32, "the tool kept failing")
    monkeypatch.setattr("agentrail_cli.commands._target", lambda args: target)
    out = io.StringIO()

    assert run_dlq_list(argparse.Namespace(), out) == 0
    assert run_dlq_redrive(argparse.Namespace(all=True, task=None), out) == 0

    text = out.getvalue()
    assert "1 dead-lettered task(s) in Agentrail-Async" in text and "the tool kept failing" in text
    assert "Redrove 1 task(s)" in text


def test_a_deployed_target_has_the_stacks_outputs_and_signs_its_api_calls_with_your_credentials():
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "ApiUrl": {"Value": "https://abc.execute-api.us-east-1.amazonaws.com/v1"},
            "TaskQueueUrl": {"Value": {"Ref": "Queue"}},
        },
    }
    with mock_aws():
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="Agentrail-Async", TemplateBody=json.dumps(template)
        )

        target = Target.deployed("Agentrail-Async", region="us-east-1")

    assert set(target.outputs) == {"ApiUrl", "TaskQueueUrl"}
    assert (target.api_url, target.endpoint_url) == ("https://abc.execute-api.us-east-1.amazonaws.com/v1", None)
    request = next(target.auth.auth_flow(httpx.Request("GET", f"{target.api_url}/approvals")))
    yours = target.session.get_credentials()
    signer = verify_sigv4(method="GET", url=str(request.url), headers=dict(request.headers), body=b"",
                          principals=(LocalPrincipal("you", yours.access_key, yours.secret_key),))  # fmt: skip
    assert signer.name == "you"


def test_a_deployed_stack_that_cannot_be_described_is_a_target_error():
    with mock_aws(), pytest.raises(TargetError, match="cannot describe stack Nope"):
        Target.deployed("Nope", region="us-east-1")


def test_a_target_without_the_outputs_a_command_needs_names_the_missing_output():
    target = Target("Other", {}, boto3.session.Session(region_name="us-east-1"), None, None, None)
    with pytest.raises(TargetError, match="no output 'DeadLetterQueueUrl'"):
        peek_dead_letters(target)


@pytest.mark.parametrize(
    ("pattern", "path"),
    [("stateless", "/invoke"), ("stateful", "/sessions/{session_id}/messages"), ("async", "/approvals/{approval_id}/decision")],
)
def test_openapi_command_writes_each_pattern_document_with_error_shapes(pattern, path, tmp_path, monkeypatch):
    for key in ("AGENT_SESSION_TABLE", "AGENT_TASK_TABLE", "AGENT_APPROVAL_TABLE", "AGENT_APPROVAL_AUDIT_TABLE"):
        monkeypatch.setenv(key, "placeholder")  # what the command sets, undone after the test
    output = tmp_path / f"{pattern}.json"

    assert run_openapi(argparse.Namespace(pattern=pattern, output=output), io.StringIO()) == 0

    document = json.loads(output.read_text())
    assert document["openapi"].startswith("3.")
    assert path in document["paths"]
    assert "ErrorBody" in document["components"]["schemas"]
