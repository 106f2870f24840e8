"""Secrets for tools in a session: a planted secret a tool returns, logs and writes to the session state appears in
no log line, no session item and no offloaded turn."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from agentrail_runtime.models.local import LocalModel
from tests.integration.secrets_agent import CRM_SECRET, PLANTED, crm_agent

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def test_a_planted_secret_a_tool_returns_logs_and_keeps_in_the_state_is_in_no_session_item_and_no_log_line(
    aws, agent_env, make_store, make_agent, make_app, create_session, send, stdout_records
):
    # given: the CRM key planted in Secrets Manager and granted to the tools as ``crm``; a session whose turns are
    # offloaded to S3 as well
    arn = boto3.client("secretsmanager").create_secret(Name=CRM_SECRET, SecretString=PLANTED)["ARN"]
    agent_env.setenv("AGENT_TOOL_SECRETS", json.dumps({"crm": arn}))
    parameters.clear_caches()
    app = make_app(make_agent(make_store(offload=True), model=LocalModel(), definition=crm_agent))
    session_id = create_session(app, state={"language": "en"})
    # when: a turn runs the tool that fetches the key, logs it, stores it in the state and returns it
    reply = send(app, session_id, "Please look up customer ada")
    # then: the turn succeeded with the tool's result, the key masked
    assert reply.status == 200, reply.body
    assert "gold" in reply.body["answer"] and PLANTED not in json.dumps(reply.body)
    # and: no session item (turns, state, meta) and no offloaded object carries it, while the turn and state are there
    stored = [json.dumps(item) for item in aws.items(session_id)]
    stored += [aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read().decode() for key in aws.objects()]
    assert any("gold" in text for text in stored) and any("crm_key" in text for text in stored)
    assert [text for text in stored if PLANTED in text] == []
    # and: no log line carries it, while the tool's own lines are there, masked
    lines = [json.dumps(record) for record in stdout_records()]
    assert any("the raw key is **********" in line for line in lines)
    assert [line for line in lines if PLANTED in line] == []
    parameters.clear_caches()
