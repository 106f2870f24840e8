"""Least privilege and load guards of the pattern stacks: DynamoDB grants name the actions the runtime calls, the
audit trail is append-only, records expire, and concurrency is capped without reserving it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import listed, token_text

#: Writes that would change or remove an audit entry: IAM cannot test a write's condition, so these are denied.
AUDIT_TABLE_DENIED = {
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
}

#: What no role of agentrail needs on any table (``grant_read_write_data`` gave them all).
NEVER_USED = {"dynamodb:Scan", "dynamodb:ConditionCheckItem"}
#: Only the API functions read items in batches: the operator console's runs, costs, timelines and sessions.
BATCH_READ = "dynamodb:BatchGetItem"


def _allowed_dynamodb_actions(stack: Any) -> set[str]:
    return {
        action
        for statement in stack.policy_statements()
        if statement["Effect"] == "Allow"
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        if action.startswith("dynamodb:")
    }


@pytest.mark.parametrize("name", ["stateless", "stateful", "stateful-enqueue", "async", "multiagent", "hierarchical"])
def test_no_role_is_granted_dynamodb_actions_the_runtime_never_calls(pattern_stacks: dict[str, Any], name: str) -> None:
    # Given a pattern stack, when its roles' policies are read, then none allows an action the runtime never calls.
    assert not _allowed_dynamodb_actions(pattern_stacks[name]) & NEVER_USED


@pytest.mark.parametrize("name", ["async", "hierarchical", "stateful"])
def test_only_the_api_function_reads_in_batches_and_only_its_own_tables(pattern_stacks: dict[str, Any], name: str) -> None:
    # Given a pattern stack, when the grants of BatchGetItem are read,
    stack = pattern_stacks[name]
    agent = {"async": lambda s: s.agent, "hierarchical": lambda s: s.tasks, "stateful": lambda s: s.agent}[name](stack.stack)
    if name == "stateful":
        tables = [agent.session_table.table]
    else:
        tables = [agent.task_table.table] + ([agent.approval_workflow.approvals_table] if agent.approval_workflow else [])
    # then the API function has it on the task table (and the approvals table), or the session table; on no index,
    batch = {resource for action, resource in stack.grants(agent.agent_function) if action == BATCH_READ}
    assert batch == {token_text({"Fn::GetAtt": [stack.logical_id(table), "Arn"]}) for table in tables}
    # and no other role of the stack has it anywhere.
    policy = stack.properties(agent.agent_function.role.node.find_child("DefaultPolicy"))
    mine = [s for s in policy["PolicyDocument"]["Statement"] if BATCH_READ in listed(s["Action"])]
    assert [s for s in stack.policy_statements() if BATCH_READ in listed(s["Action"])] == mine


def test_the_audit_trail_allows_only_put_and_query_and_denies_every_other_write(pattern_stacks: dict[str, Any]) -> None:
    # Given the async stack's approval workflow,
    stack = pattern_stacks["async"]
    approvals = stack.stack.agent.approval_workflow
    for holder in (approvals.step_function, stack.stack.agent.agent_function):
        # when the grants of each role that writes the audit trail are read,
        audit = stack.logical_id(approvals.audit_table)
        allowed = {action for action, resource in stack.grants(holder) if audit in resource and "/index/" not in resource}
        denied = {action for action, resource in stack.denials(holder) if audit in resource}
        # then it may only append (PutItem, with attribute_not_exists in the runtime) and read; the API function, which
        # serves erasure, may also update an entry's actor (test_erasure_grants: nothing else, by condition),
        pseudonymizes = {"dynamodb:UpdateItem"} if holder is stack.stack.agent.agent_function else set()
        assert allowed == {"dynamodb:PutItem", "dynamodb:Query"} | pseudonymizes
        # and changing or removing an entry is denied outright, whatever else the role is given.
        assert denied >= AUDIT_TABLE_DENIED


def test_the_approvals_table_expires_its_records(pattern_stacks: dict[str, Any]) -> None:
    stack = pattern_stacks["async"]
    # Given the approvals table, then DynamoDB's TTL deletes records by the purge_at the runtime writes.
    table = stack.properties(stack.stack.agent.approval_workflow.approvals_table)
    assert table["TimeToLiveSpecification"] == {"AttributeName": "purge_at", "Enabled": True}


@pytest.mark.parametrize("name", ["stateful-enqueue", "async", "multiagent"])
def test_sqs_event_sources_cap_concurrency_and_no_function_reserves_it(pattern_stacks: dict[str, Any], name: str) -> None:
    stack = pattern_stacks[name]
    mappings = stack.of_type("AWS::Lambda::EventSourceMapping")
    sqs_mappings = [
        m for m in mappings.values() if "sqs" in str(m["EventSourceArn"]).lower() or "Queue" in str(m["EventSourceArn"])
    ]
    # Given the stack's SQS event sources, then each caps its concurrency (MaximumConcurrency),
    assert sqs_mappings
    assert all(m.get("ScalingConfig", {}).get("MaximumConcurrency", 0) >= 2 for m in sqs_mappings)
    # and no function reserves concurrency by default (a reservation fails deploys in accounts with a quota of 10).
    assert not [p for p in stack.of_type("AWS::Lambda::Function").values() if "ReservedConcurrentExecutions" in p]
