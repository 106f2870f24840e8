"""What ``POST /erase`` may do in the pattern stacks: the deletes it needs, on the tables and bucket involved only; the
audit trail's actor and nothing else; and the indexes the runtime queries, with the names and keys it uses."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from agentrail_constructs import ErasureOptions, StatefulAgent
from agentrail_runtime import contract
from agentrail_runtime.approvals.store import ACTOR_INDEX, REQUESTER_INDEX
from agentrail_runtime.erasure import ErasureSettings
from agentrail_runtime.sessions.dynamodb import OWNER_INDEX as SESSION_OWNER_INDEX
from agentrail_runtime.tasks.store import OWNER_CREATED_INDEX, PARENT_INDEX
from agentrail_runtime.tasks.store import OWNER_INDEX as TASK_OWNER_INDEX

AUDIT_ATTRIBUTES = ["approval_id", "entry", "actor"]


def _grants(stack: Any, agent_function: Any) -> set[tuple[str, str]]:
    """The function's allowed (action, resource) pairs, with resources rendered as ARNs."""
    return {
        (action, str(stack.render(json.loads(resource) if resource.startswith("{") else resource)))
        for action, resource in stack.grants(agent_function)
    }


def _arn(stack: Any, construct: Any) -> str:
    return str(stack.render({"Fn::GetAtt": [stack.logical_id(construct), "Arn"]}))


def _indexes(stack: Any, table: Any) -> dict[str, tuple[str, str]]:
    """The table's global secondary indexes: name -> (partition key, projection)."""
    return {
        index["IndexName"]: (index["KeySchema"][0]["AttributeName"], index["Projection"]["ProjectionType"])
        for index in stack.properties(table).get("GlobalSecondaryIndexes", [])
    }


def test_every_table_erasure_queries_has_the_keys_only_index_the_runtime_names(pattern_stacks: dict[str, Any]) -> None:
    # Given the stateful and async stacks, when their tables are read, then each has the runtime's index, keys only
    stateful, tasks = pattern_stacks["stateful"], pattern_stacks["async"]
    agent = tasks.stack.agent
    assert _indexes(stateful, stateful.stack.agent.table)[SESSION_OWNER_INDEX] == ("owner", "KEYS_ONLY")
    assert _indexes(tasks, agent.task_table.table) == {
        TASK_OWNER_INDEX: ("owner", "KEYS_ONLY"),
        PARENT_INDEX: ("parent", "KEYS_ONLY"),
        OWNER_CREATED_INDEX: ("owner", "KEYS_ONLY"),  # the console's runs, newest first (sort key created_at)
    }
    assert _indexes(tasks, agent.approval_workflow.approvals_table)[REQUESTER_INDEX] == ("requester", "KEYS_ONLY")
    assert _indexes(tasks, agent.approval_workflow.audit_table) == {ACTOR_INDEX: ("actor", "KEYS_ONLY")}


@pytest.mark.parametrize("name", ["stateless", "stateful", "async"])
def test_the_api_routes_post_erase_to_its_function(pattern_stacks: dict[str, Any], name: str) -> None:
    # Given a pattern stack (the stateless one keeps budget counters and shadow comparisons), then its API has
    # POST /erase, authenticated like the other routes
    method = pattern_stacks[name].routes()[("POST", "/erase")]
    assert method["AuthorizationType"] == "AWS_IAM"


def test_only_the_api_function_may_delete_tasks_and_query_the_erasure_indexes(pattern_stacks: dict[str, Any]) -> None:
    # Given the async stack
    stack = pattern_stacks["async"]
    agent = stack.stack.agent
    table = _arn(stack, agent.task_table.table)
    bucket = _arn(stack, agent.task_table.results_bucket)
    # When the API function's grants are read, then it may delete tasks and their objects, and query exactly the two
    # erasure indexes and the console's (no index wildcard)
    grants = _grants(stack, agent.agent_function)
    assert {("dynamodb:DeleteItem", table), ("dynamodb:BatchWriteItem", table)} <= grants  # subtasks go in batches
    queried = {resource for action, resource in grants if action == "dynamodb:Query" and resource.startswith(table)}
    assert queried == {f"{table}/index/{index}" for index in (TASK_OWNER_INDEX, PARENT_INDEX, OWNER_CREATED_INDEX)}
    assert ("s3:DeleteObject", f"{bucket}/*") in grants
    # And no other function of the stack may delete a task or its objects, or read an erasure index
    for other in (agent.worker, *(f for f in (agent.notifier,) if f is not None)):
        theirs = _grants(stack, other)
        deletes = ("dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
        assert not {(a, r) for a, r in theirs if r.startswith(table) and (a in deletes or "/index/" in r)}
        assert ("s3:DeleteObject", f"{bucket}/*") not in theirs


def test_the_api_function_may_change_only_the_actor_of_an_audit_entry(pattern_stacks: dict[str, Any]) -> None:
    # Given the async stack's API function and audit trail
    stack = pattern_stacks["async"]
    agent = stack.stack.agent
    audit = stack.logical_id(agent.approval_workflow.audit_table)
    policy = stack.properties(agent.agent_function.role.node.find_child("DefaultPolicy"))
    updates = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if "dynamodb:UpdateItem" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        and audit in str(s["Resource"])
    ]
    # When its UpdateItem statements on the audit table are read, then the Allow names only the keys and actor,
    allow = [s for s in updates if s["Effect"] == "Allow"]
    assert [s["Condition"] for s in allow] == [{"ForAllValues:StringEquals": {"dynamodb:Attributes": AUDIT_ATTRIBUTES}}]
    # and a Deny refuses any update naming another attribute, whatever else the role is given
    deny = [s for s in updates if s["Effect"] == "Deny" and "Condition" in s]
    assert [s["Condition"] for s in deny] == [{"ForAnyValue:StringNotEquals": {"dynamodb:Attributes": AUDIT_ATTRIBUTES}}]
    # And deleting an entry stays denied outright
    assert any(action == "dynamodb:DeleteItem" and audit in resource for action, resource in stack.denials(agent.agent_function))


def test_the_api_function_reads_the_salt_and_knows_the_operators(pattern_stacks: dict[str, Any]) -> None:
    # Given the async stack, when the API function's environment is read, then it names the salt's secret and the
    # default operator group, and the workflow's steps get neither
    stack = pattern_stacks["async"]
    agent = stack.stack.agent
    environment = stack.environment(agent.agent_function)
    assert stack.logical_id(agent.approval_workflow.erasure_salt) in str(environment["AGENT_ERASE_SALT_SECRET"])
    assert environment["AGENT_ERASE_OPERATOR_GROUP"] == "operators"
    assert environment["AGENT_ERASE_OPERATORS"] == "[]"
    assert "AGENT_ERASE_SALT_SECRET" not in stack.environment(agent.approval_workflow.step_function)


def test_the_erasure_environment_the_constructs_write_loads_into_the_runtime_settings(
    synthesize: Any, pattern_stacks: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stateful agent with its own operators, and the async stack (whose approvals salt the audit pseudonyms)
    options = ErasureOptions(operators=["iam:arn:aws:iam::123456789012:role/PrivacyOperator"], operator_group="privacy")
    agent, stateful = synthesize(lambda stack: StatefulAgent(stack, "Agent", erasure_options=options))
    tasks = pattern_stacks["async"]

    def loaded(stack: Any, agent_function: Any) -> ErasureSettings:
        """The runtime's ErasureSettings under exactly the function's AGENT_ERASE_* variables."""
        with monkeypatch.context() as env:
            for name in [n for n in os.environ if n.startswith(contract.ERASE_ENV_PREFIX)]:
                env.delenv(name)
            for name, value in stack.render(stack.environment(agent_function)).items():
                if name.startswith(contract.ERASE_ENV_PREFIX):
                    env.setenv(name, str(value))
            return ErasureSettings()

    # When each API function's erasure variables load into the runtime's settings
    own, theirs = loaded(stateful, agent.agent_function), loaded(tasks, tasks.stack.agent.agent_function)

    # Then the runtime sees the construct's operators and group, and the async API the salt's secret
    assert (own.operators, own.operator_group, own.salt_secret) == (tuple(options.operators), "privacy", None)
    assert (theirs.operators, theirs.operator_group) == ((), "operators")
    assert tasks.logical_id(tasks.stack.agent.approval_workflow.erasure_salt) in str(theirs.salt_secret)
