"""Secrets for tools: a tool reads a credential from Secrets Manager (moto) through ``context.secret``; the value never
reaches the model, a log line or a stored item, even when the tool returns, logs or stores it by mistake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from agentrail_runtime.models.local import LocalModel
from tests.integration.secrets_agent import CRM_SECRET, PLANTED, crm_agent

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def crm_secret(aws, agent_env) -> str:
    """The CRM key, planted in Secrets Manager and granted to the tools as ``crm`` (what the construct writes)."""
    arn = boto3.client("secretsmanager").create_secret(Name=CRM_SECRET, SecretString=PLANTED)["ARN"]
    agent_env.setenv("AGENT_TOOL_SECRETS", json.dumps({"crm": arn}))
    return arn


@pytest.fixture
def get_secret_value_calls() -> Iterator[list[str]]:
    """The GetSecretValue calls Powertools' secrets provider makes, counted with a botocore event hook."""
    client = boto3.client("secretsmanager")
    calls: list[str] = []
    client.meta.events.register(
        "before-parameter-build.secrets-manager.GetSecretValue", lambda params, **_: calls.append(params["SecretId"])
    )
    parameters.clear_caches()
    DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider(boto3_client=client)
    yield calls
    DEFAULT_PROVIDERS.pop("secrets", None)
    parameters.clear_caches()


@pytest.fixture
def crm_worker(task_handler, monkeypatch, agents_with):
    worker = task_handler("task_worker")
    monkeypatch.setattr(worker.tasks, "agents", agents_with(LocalModel(), definition=crm_agent))
    return worker


@pytest.fixture
def run_task(crm_worker, task_handler, api_event, call, receive, sqs_event, lambda_context):
    api = task_handler("tasks").handler

    def run(message: str) -> dict[str, Any]:
        reply = call(api, api_event("submit", body={"message": message}))
        assert reply.status == 202, reply.body
        assert crm_worker.handler(sqs_event(receive()), lambda_context) == {"batchItemFailures": []}
        return call(api, api_event("get-task", task_id=reply.body["task_id"])).body

    return run


def stored_items(aws) -> list[str]:
    """Every item of every table and every object of the bucket, as text."""
    texts = [
        json.dumps(item)
        for table in aws.dynamodb.list_tables()["TableNames"]
        for item in aws.dynamodb.scan(TableName=table)["Items"]
    ]
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket):
        texts += [aws.s3.get_object(Bucket=aws.bucket, Key=o["Key"])["Body"].read().decode() for o in page.get("Contents", [])]
    return texts


def test_two_tool_calls_in_one_execution_environment_read_the_secret_once(crm_secret, get_secret_value_calls, run_task):
    # given: a tool that reads the CRM key on every call
    # when: one task calls it twice, and a second task calls it again
    first = run_task("Please look up customer ada and look up customer bob")
    second = run_task("Please look up customer cy")
    # then: Secrets Manager was asked once; Powertools' cache (max_age 300 s) answered the others
    assert [c["outcome"] for c in first["result"]["tool_calls"] + second["result"]["tool_calls"]] == ["success"] * 3
    assert get_secret_value_calls == [crm_secret]


def test_a_planted_secret_a_tool_returns_logs_and_stores_appears_in_no_log_line_and_no_stored_item(
    aws, crm_secret, run_task, stdout_records
):
    # given: a secret planted in Secrets Manager, and a tool that fetches it, logs it, keeps it in its state and
    # returns it
    # when: a task runs the tool and finishes
    task = run_task("Please look up customer ada")
    # then: the tool ran, and its result reached the answer with the key masked
    assert task["status"] == "succeeded"
    assert [c["outcome"] for c in task["result"]["tool_calls"]] == ["success"]
    assert "gold" in task["result"]["answer"] and "**********" in task["result"]["answer"]
    # and: no stored item (task record, checkpoint, idempotency record, S3 payload) carries it
    stored = stored_items(aws)
    assert any("gold" in text for text in stored)
    assert [text for text in stored if PLANTED in text] == []
    # and: no log line carries the value, while the lines the tool wrote are there, masked (a positive control)
    lines = [json.dumps(record) for record in stdout_records()]
    assert [line for line in lines if PLANTED in line] == []
    assert any("the raw key is **********" in line for line in lines)
    assert any('"event": "secret_masked"' in line for line in lines)


def test_a_secret_the_function_was_not_granted_fails_the_tool_call_naming_the_fix_and_never_reaches_secrets_manager(
    aws, agent_env, get_secret_value_calls, run_task, stdout_records
):
    # given: the CRM key exists, but the function's tool_secrets do not name it
    boto3.client("secretsmanager").create_secret(Name=CRM_SECRET, SecretString=PLANTED)
    agent_env.setenv("AGENT_TOOL_SECRETS", json.dumps({"billing": "arn:aws:secretsmanager:us-east-1:123456789012:secret:b"}))
    # when: the tool asks for it
    task = run_task("Please look up customer ada")
    # then: the call fails, its log names the grant to add, and Secrets Manager was never asked
    assert [c["outcome"] for c in task["result"]["tool_calls"]] == ["error"]
    [failure] = [r for r in stdout_records() if r.get("event") == "tool_exception"]
    assert "SecretNotGranted" in failure["exception_name"]
    assert "AgentFunctionOptions(tool_secrets={'crm': secret})" in failure["exception"]
    assert get_secret_value_calls == []
