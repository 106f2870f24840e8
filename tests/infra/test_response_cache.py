"""The response cache as infrastructure: its table (TTL, encryption, point-in-time recovery), the stateless function's
environment and least-privilege grant (with what erasing a caller's answers needs: Query on the sparse ``by_owner``
index and DeleteItem), cdk-nag and checkov, and a cache on an agent that may not use one refused at
synth in one sentence."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

from agentrail_constructs import (
    PATTERN_STACKS,
    AgentFunctionOptions,
    ResponseCache,
    ResponseCacheOptions,
    StatelessAgent,
)
from agentrail_runtime import contract
from agentrail_runtime.api.stateless import response_cache_of
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.service import AgentService
from tests.infra.conftest import TEST_ENV, SynthesizedStack
from tests.infra.test_cdk_nag import violations
from tests.infra.test_checkov import SKIPPABLE, run_checkov

CACHEABLE = AgentFunctionOptions(agent_definition="tests.infra.cache_agents:rates", deployment_options=None)
SIDE_EFFECTS = AgentFunctionOptions(agent_definition="tests.infra.cache_agents:billing", deployment_options=None)


@pytest.fixture(scope="module")
def cached_stack(app_factory: Callable[..., cdk.App]) -> SynthesizedStack:
    stack = PATTERN_STACKS["stateless"](
        app_factory(),
        "Cached-stateless",
        env=TEST_ENV,
        function_options=CACHEABLE,
        response_cache_options=ResponseCacheOptions(ttl=cdk.Duration.minutes(30)),
    )
    return SynthesizedStack(stack)


def test_the_cache_table_is_keyed_by_pk_on_demand_with_ttl_encryption_and_point_in_time_recovery(
    cached_stack: SynthesizedStack,
) -> None:
    # Given the stateless stack with a response cache, when its table is read,
    cache = cached_stack.stack.agent.response_cache
    assert cache is not None
    table = cached_stack.properties(cache.table)
    # then it is keyed by pk alone, billed on demand, expires answers by TTL, and is encrypted and recoverable,
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert len(cached_stack.of_type("AWS::DynamoDB::Table")) == 1
    # and its name is an output.
    assert "ResponseCacheTableName" in cached_stack.template.to_json()["Outputs"]


def test_the_cache_table_has_a_sparse_keys_only_by_owner_index_where_erasure_finds_a_callers_answers(
    cached_stack: SynthesizedStack,
) -> None:
    # Given the stateless stack with a response cache, when its table's indexes are read,
    table = cached_stack.properties(cached_stack.stack.agent.response_cache.table)
    [index] = table["GlobalSecondaryIndexes"]
    # then its one index is the runtime's by_owner, on the string owner, keys only
    assert index["IndexName"] == contract.RESPONSE_CACHE_OWNER_INDEX == "by_owner"
    assert index["KeySchema"] == [{"AttributeName": contract.RESPONSE_CACHE_OWNER_ATTRIBUTE, "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert {"AttributeName": "owner", "AttributeType": "S"} in table["AttributeDefinitions"]


def test_only_the_stateless_function_may_get_put_and_erase_answers_and_nothing_else(cached_stack: SynthesizedStack) -> None:
    # Given the stateless stack with a response cache
    agent = cached_stack.stack.agent
    table = cached_stack.logical_id(agent.response_cache.table)
    arn = str(cached_stack.render({"Fn::GetAtt": [table, "Arn"]}))

    # when the function's environment and grants are read
    environment = cached_stack.environment(agent.agent_function)
    grants = {
        (action, str(cached_stack.render(json.loads(resource) if resource.startswith("{") else resource)))
        for action, resource in cached_stack.grants(agent.agent_function)
        if table in resource
    }

    # then it is told the table and TTL, and may get and put an answer and, for POST /erase, query the by_owner
    # index and delete an item: on the table and that one index only (no index wildcard),
    assert table in json.dumps(environment["AGENT_RESPONSE_CACHE_TABLE"])
    assert environment["AGENT_RESPONSE_CACHE_TTL_SECONDS"] == "1800"
    assert grants == {
        ("dynamodb:GetItem", arn),
        ("dynamodb:PutItem", arn),
        ("dynamodb:DeleteItem", arn),
        ("dynamodb:Query", f"{arn}/index/by_owner"),
    }
    # and no other role of the stack is granted anything on the table.
    own = cached_stack.properties(agent.agent_function.role.node.find_child("DefaultPolicy"))["PolicyDocument"]["Statement"]
    assert cached_stack.statements_on(agent.response_cache.table)
    assert all(statement in own for statement in cached_stack.statements_on(agent.response_cache.table))


def test_the_environment_the_construct_writes_gives_the_runtime_its_cache(
    cached_stack: SynthesizedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the function's environment, with the table's reference rendered as a name
    environment = cached_stack.render(cached_stack.environment(cached_stack.stack.agent.agent_function))
    for name in [n for n in os.environ if n.startswith("AGENT_")]:
        monkeypatch.delenv(name)
    for name in ("AGENT_DEFINITION", "AGENT_RESPONSE_CACHE_TABLE", "AGENT_RESPONSE_CACHE_TTL_SECONDS"):
        monkeypatch.setenv(name, str(environment[name]))

    # when the runtime loads its settings and builds its cache at cold start
    settings = RuntimeSettings()
    cache = response_cache_of(AgentService.from_settings(settings), settings)

    # then the cache reads that table, with that TTL
    assert cache is not None
    assert (cache.table, cache.ttl_seconds, cache.per_caller) == (environment["AGENT_RESPONSE_CACHE_TABLE"], 1800, False)


def test_a_cache_on_an_agent_with_a_side_effecting_tool_fails_the_synth_in_one_sentence_naming_the_agent_and_tool(
    synthesize: Any,
) -> None:
    with pytest.raises(
        ValueError, match=r"agent 'billing' cannot use a response cache: its tool 'send_invoice' has side effects"
    ) as error:
        synthesize(
            lambda stack: StatelessAgent(
                stack, "Agent", function_options=SIDE_EFFECTS, response_cache_options=ResponseCacheOptions()
            )
        )

    assert str(error.value).count(". ") == 0 and "\n" not in str(error.value)


def test_a_cache_on_the_demo_agent_fails_the_synth_naming_its_refund_tool(synthesize: Any) -> None:
    with pytest.raises(ValueError, match=r"^agent 'demo' cannot use a response cache: its tool 'issue_refund' has side effects"):
        synthesize(lambda stack: StatelessAgent(stack, "Agent", response_cache_options=ResponseCacheOptions()))


def test_when_the_runtime_cannot_load_the_definition_at_synth_the_cache_is_built_with_a_warning(synthesize: Any) -> None:
    options = AgentFunctionOptions(agent_definition="no_such_agent_module:definition", deployment_options=None)

    agent, synthesized = synthesize(
        lambda stack: StatelessAgent(stack, "Agent", function_options=options, response_cache_options=ResponseCacheOptions())
    )

    assert agent.response_cache is not None
    Annotations.from_stack(synthesized.stack).has_warning(
        "*", Match.string_like_regexp("could not check at synth that the agent .* may use a response cache")
    )


@pytest.mark.parametrize(("ttl", "shown"), [(cdk.Duration.seconds(59), "59"), (cdk.Duration.days(31), "2678400")])
def test_a_ttl_outside_one_minute_to_thirty_days_is_refused(synthesize: Any, ttl: cdk.Duration, shown: str) -> None:
    with pytest.raises(ValueError, match=rf"response cache ttl must be between 1 minute and 30 days .* got {shown} seconds"):
        synthesize(
            lambda stack: StatelessAgent(
                stack, "Agent", function_options=CACHEABLE, response_cache_options=ResponseCacheOptions(ttl=ttl)
            )
        )


def test_response_cache_options_and_an_existing_cache_are_exclusive(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> None:
        shared = ResponseCache(stack, "Shared")
        StatelessAgent(
            stack,
            "Agent",
            function_options=CACHEABLE,
            response_cache_options=ResponseCacheOptions(),
            existing_response_cache=shared,
        )

    with pytest.raises(ValueError, match="pass either existing_response_cache or response_cache_options, not both"):
        synthesize(build)


def test_two_agents_share_an_existing_cache_table(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> tuple[StatelessAgent, StatelessAgent, ResponseCache]:
        shared = ResponseCache(stack, "Shared")
        one = StatelessAgent(stack, "One", function_options=CACHEABLE, existing_response_cache=shared)
        two = StatelessAgent(stack, "Two", function_options=CACHEABLE, existing_response_cache=shared)
        return one, two, shared

    (one, two, shared), synthesized = synthesize(build)

    assert len(synthesized.of_type("AWS::DynamoDB::Table")) == 1
    assert shared.functions == [one.agent_function, two.agent_function]


def test_a_customer_managed_key_encrypts_the_table_and_the_function_may_use_it(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> tuple[StatelessAgent, kms.Key]:
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        options = ResponseCacheOptions(encryption_key=key)
        return StatelessAgent(stack, "Agent", function_options=CACHEABLE, response_cache_options=options), key

    (agent, key), synthesized = synthesize(build)

    table = synthesized.properties(agent.response_cache.table)
    assert table["SSESpecification"]["SSEType"] == "KMS"
    assert synthesized.logical_id(key) in json.dumps(table["SSESpecification"]["KMSMasterKeyId"])
    key_id = synthesized.logical_id(key)
    assert any(action == "kms:Decrypt" and key_id in resource for action, resource in synthesized.grants(agent.agent_function))


def test_a_stack_with_a_response_cache_has_no_unacknowledged_cdk_nag_finding_and_no_failed_checkov_check(
    app_factory: Callable[..., cdk.App],
) -> None:
    # Given the stateless stack with a response cache, checked by cdk-nag as app.py checks every stack
    app = app_factory()
    stack = PATTERN_STACKS["stateless"](app, "Cached", function_options=CACHEABLE, response_cache_options=ResponseCacheOptions())
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    # when it is synthesized
    assembly = app.synth()

    # then cdk-nag leaves nothing unacknowledged,
    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    assert violations(report, "Cached") == []
    # and checkov fails nothing and skips only the reviewed kinds, passing the cache table's checks.
    template = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
    results = run_checkov([template])[template.name]
    assert not results["failed"], [(c["check_id"], c["resource"]) for c in results["failed"]]
    assert {c["check_id"] for c in results["skipped"]} <= set(SKIPPABLE)
    assert any("ResponseCache" in c["resource"] for c in results["passed"])
