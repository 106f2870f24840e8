"""ApprovalWorkflow: approvals and audit tables, append-only audit, decision routes, webhook, reminders and options."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_kms as kms

from agentrail_constructs import ApprovalOptions, ApprovalWorkflow, AsyncAgent, TaskTableOptions
from agentrail_constructs.app_config import AppConfig
from agentrail_runtime.approvals.models import MAX_COMMENT_CHARS
from agentrail_runtime.approvals.store import REQUESTER_INDEX, STATUS_INDEX

#: What the framework's roles may do on the audit table: append (PutItem with attribute_not_exists) and read.
AUDIT_ACTIONS = {"dynamodb:PutItem", "dynamodb:Query"}
AUDIT_FORBIDDEN = {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:*", "*"}
DECISION_ROUTES = {
    ("GET", "/approvals"),
    ("GET", "/approvals/{approval_id}"),
    ("POST", "/approvals/{approval_id}/decision"),
}
WEBHOOK_ROUTE = ("POST", "/approvals/{approval_id}/webhook")
FULL_OPTIONS = ApprovalOptions(
    timeout_policy="escalate",
    escalation_group="leads",
    groups={"approvers": ["iam:arn:aws:iam::123456789012:user/alice"], "leads": ["iam:arn:aws:iam::123456789012:user/bob"]},
    webhook_groups=("approvers",),
    reminder_after=Duration.hours(4),
)


@pytest.fixture(scope="module")
def default(pattern_stacks: dict[str, Any]) -> Any:
    """The async pattern stack: its ApprovalWorkflow has every default."""
    return pattern_stacks["async"]


@pytest.fixture(scope="module")
def full(synthesize: Any) -> tuple[AsyncAgent, Any]:
    """An AsyncAgent whose approvals escalate, accept webhooks, send reminders and use a customer managed key."""

    def build(stack: cdk.Stack) -> AsyncAgent:
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        return AsyncAgent(stack, "Agent", approval_options=FULL_OPTIONS, task_table_options=TaskTableOptions(encryption_key=key))

    return synthesize(build)


def workflow_of(synth: Any) -> ApprovalWorkflow:
    return synth.stack.agent.approval_workflow


def variant_of(request: pytest.FixtureRequest, variant: str) -> tuple[AsyncAgent, Any]:
    """``(agent, synth)`` of the ``default`` or the ``full`` fixture."""
    fixture = request.getfixturevalue(variant)
    return (fixture.stack.agent, fixture) if variant == "default" else fixture


def text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- tables ----------------------------------------------------------------------------------


def test_approvals_table_is_keyed_by_approval_id_and_indexed_by_status_and_request_time(default: Any) -> None:
    props = default.properties(workflow_of(default).approvals_table)

    assert props["KeySchema"] == [{"AttributeName": "approval_id", "KeyType": "HASH"}]
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "by_status",
            "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}, {"AttributeName": "requested_at", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        },
        # What erasure queries: the approvals a principal requested.
        {
            "IndexName": "by_requester",
            "KeySchema": [{"AttributeName": "requester", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
    ]
    assert {"AttributeName": "requested_at", "AttributeType": "N"} in props["AttributeDefinitions"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_audit_table_is_keyed_by_approval_and_entry_and_expires_on_expires_at(default: Any) -> None:
    props = default.properties(workflow_of(default).audit_table)

    assert props["KeySchema"] == [
        {"AttributeName": "approval_id", "KeyType": "HASH"},
        {"AttributeName": "entry", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_approval_and_audit_tables_are_retained_when_the_stack_is_deleted(default: Any) -> None:
    workflow = workflow_of(default)

    for table in (workflow.approvals_table, workflow.audit_table):
        assert default.resources[default.logical_id(table)]["DeletionPolicy"] == "Retain"


def test_customer_managed_key_encrypts_the_approval_tables_and_the_decision_secret(full: tuple[AsyncAgent, Any]) -> None:
    agent, synth = full
    workflow = agent.approval_workflow
    key_arn = {"Fn::GetAtt": [synth.logical_id(agent.task_table.encryption_key), "Arn"]}

    for table in (workflow.approvals_table, workflow.audit_table):
        assert synth.properties(table)["SSESpecification"]["KMSMasterKeyId"] == key_arn
    assert synth.properties(workflow.webhook_secret)["KmsKeyId"] == key_arn


# -- the audit trail is append-only -----------------------------------------------------------


@pytest.mark.parametrize("variant", ["default", "full"])
def test_no_role_may_change_or_delete_audit_entries(request: pytest.FixtureRequest, variant: str) -> None:
    agent, synth = variant_of(request, variant)

    statements = synth.statements_on(agent.approval_workflow.audit_table)

    assert len(statements) >= 1, "the API and step functions write the audit table; no statement means the lookup broke"
    granted = {action for s in statements if s["Effect"] == "Allow" and "Condition" not in s for action in listed(s["Action"])}
    assert granted & AUDIT_FORBIDDEN == set()
    assert granted <= AUDIT_ACTIONS
    # Erasure's one exception: UpdateItem that names only the keys and actor (the pseudonym), by IAM condition.
    conditional = [s for s in statements if s["Effect"] == "Allow" and "Condition" in s]
    assert all(listed(s["Action"]) == ["dynamodb:UpdateItem"] for s in conditional)
    assert all(
        s["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:Attributes": ["approval_id", "entry", "actor"]}}
        for s in conditional
    )
    denied = {action for s in statements if s["Effect"] == "Deny" for action in listed(s["Action"])}
    assert {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} <= denied


@pytest.mark.parametrize("variant", ["default", "full"])
def test_no_role_has_dynamodb_actions_on_every_resource(request: pytest.FixtureRequest, variant: str) -> None:
    _, synth = variant_of(request, variant)

    wildcard = [
        action
        for s in synth.policy_statements()
        if "*" in listed(s["Resource"])
        for action in listed(s["Action"])
        if action.startswith("dynamodb:") or action == "*"
    ]

    assert wildcard == []


def test_api_and_step_functions_may_append_to_and_read_the_audit_table(default: Any) -> None:
    workflow = workflow_of(default)
    audit = text({"Fn::GetAtt": [default.logical_id(workflow.audit_table), "Arn"]})

    for agent_function in (default.stack.agent.agent_function, workflow.step_function):
        granted = {action for action, resource in default.grants(agent_function) if resource == audit}
        # The API function serves erasure: it may also update an entry's actor (conditions: test above).
        erases = {"dynamodb:UpdateItem"} if agent_function is default.stack.agent.agent_function else set()
        assert granted == AUDIT_ACTIONS | erases


# -- routes ----------------------------------------------------------------------------------


def test_async_agent_serves_the_decision_routes_with_iam_authorization(default: Any) -> None:
    routes = default.routes()

    assert set(routes) >= DECISION_ROUTES
    assert {route: routes[route]["AuthorizationType"] for route in DECISION_ROUTES} == dict.fromkeys(DECISION_ROUTES, "AWS_IAM")


def test_decision_body_must_be_approve_or_reject_with_an_optional_comment(default: Any) -> None:
    model = default.routes()[("POST", "/approvals/{approval_id}/decision")]["RequestModels"]["application/json"]

    schema = default.resources[model["Ref"]]["Properties"]["Schema"]

    assert schema["required"] == ["decision"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["decision"]["enum"] == ["approve", "reject"]
    assert schema["properties"]["comment"]["maxLength"] == MAX_COMMENT_CHARS


def test_no_webhook_route_and_no_decision_secret_without_webhook_groups(default: Any) -> None:
    workflow = workflow_of(default)

    assert WEBHOOK_ROUTE not in default.routes()
    assert workflow.webhook_secret is None
    assert "AGENT_APPROVAL_WEBHOOK_SECRET" not in default.environment(default.stack.agent.agent_function)


def test_webhook_route_is_open_at_the_gateway_because_the_function_checks_an_hmac(full: tuple[AsyncAgent, Any]) -> None:
    _, synth = full

    method = synth.routes()[WEBHOOK_ROUTE]

    assert method["AuthorizationType"] == "NONE"
    assert "ApiKeyRequired" not in method
    assert {route for route, m in synth.routes().items() if m["AuthorizationType"] == "NONE"} == {WEBHOOK_ROUTE}


def test_webhook_routes_nag_acknowledgements_say_it_is_authenticated_by_hmac(full: tuple[AsyncAgent, Any]) -> None:
    agent, synth = full
    method = agent.rest_api.root.resource_for_path("/approvals/{approval_id}/webhook").node.find_child("POST")

    acknowledged = synth.acknowledgements(method)

    assert set(acknowledged) == {"APIG4", "COG4"}
    assert all("HMAC" in reason for reason in acknowledged.values())


def test_decision_secret_is_readable_by_the_api_function_and_named_in_its_environment(full: tuple[AsyncAgent, Any]) -> None:
    agent, synth = full
    secret = synth.logical_id(agent.approval_workflow.webhook_secret)

    environment = synth.environment(agent.agent_function)

    assert ("secretsmanager:GetSecretValue", text({"Ref": secret})) in synth.grants(agent.agent_function)
    assert environment["AGENT_APPROVAL_WEBHOOK_SECRET"] == {"Ref": secret}
    assert json.loads(environment["AGENT_APPROVAL_WEBHOOK_GROUPS"]) == ["approvers"]


# -- reminders -------------------------------------------------------------------------------


def scheduler_roles(synth: Any) -> list[str]:
    """Logical ids of the roles EventBridge Scheduler may assume."""
    return [
        lid
        for lid, props in synth.of_type("AWS::IAM::Role").items()
        if any(s["Principal"].get("Service") == "scheduler.amazonaws.com" for s in props["AssumeRolePolicyDocument"]["Statement"])
    ]


def test_no_reminder_schedule_group_or_role_without_reminder_after(default: Any) -> None:
    workflow = workflow_of(default)

    default.template.resource_count_is("AWS::Scheduler::ScheduleGroup", 0)
    assert workflow.schedule_group is None
    assert scheduler_roles(default) == []


def test_reminders_get_a_schedule_group_and_a_role_that_may_only_put_events_on_the_task_bus(
    full: tuple[AsyncAgent, Any],
) -> None:
    agent, synth = full
    (role,) = scheduler_roles(synth)

    policies = [p for p in synth.of_type("AWS::IAM::Policy").values() if {"Ref": role} in p["Roles"]]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]

    synth.template.resource_count_is("AWS::Scheduler::ScheduleGroup", 1)
    bus = {"Fn::GetAtt": [synth.logical_id(agent.event_bus), "Arn"]}
    assert statements == [{"Action": "events:PutEvents", "Effect": "Allow", "Resource": bus}]


def test_api_function_may_manage_only_the_reminder_groups_schedules_and_pass_only_the_reminder_role(
    full: tuple[AsyncAgent, Any],
) -> None:
    agent, synth = full
    workflow = agent.approval_workflow
    group = synth.logical_id(workflow.schedule_group)

    grants = synth.grants(agent.agent_function)

    schedules = {(a, r) for a, r in grants if a.startswith("scheduler:")}
    assert {a for a, _ in schedules} == {"scheduler:CreateSchedule", "scheduler:DeleteSchedule"}
    assert all(f'"Ref": "{group}"' in r and r.endswith('"/*"]]}') for _, r in schedules)
    (role,) = scheduler_roles(synth)
    assert {r for a, r in grants if a == "iam:PassRole"} == {text({"Fn::GetAtt": [role, "Arn"]})}


# -- decisions reach the workflow -------------------------------------------------------------


def test_api_function_may_send_the_decision_to_the_waiting_workflow(default: Any) -> None:
    agent = default.stack.agent
    machine = text({"Ref": default.logical_id(agent.approval_workflow.state_machine)})

    task_responses = {action for action, resource in default.grants(agent.agent_function) if resource == machine}

    assert {"states:SendTaskSuccess", "states:SendTaskFailure"} <= task_responses


@pytest.mark.parametrize("variant", ["default", "full"])
def test_synthesized_approval_environment_is_accepted_by_the_runtime_settings(
    request: pytest.FixtureRequest, variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The construct writes AGENT_APPROVAL_* and the runtime reads them: a rename on either side breaks here.
    from agentrail_runtime.approvals.settings import ApprovalSettings

    agent, synth = variant_of(request, variant)
    for agent_function in (agent.agent_function, agent.approval_workflow.step_function):
        for name, value in synth.render(synth.environment(agent_function)).items():
            monkeypatch.setenv(name, value)

        settings = ApprovalSettings()  # type: ignore[call-arg]

        assert settings.timeout_seconds == 259_200
        assert settings.audit_table == synth.logical_id(agent.approval_workflow.audit_table)
        assert settings.timeout_policy == ("escalate" if variant == "full" else "reject")


# -- pending approvals emitter -----------------------------------------------------------------


def test_a_schedule_every_5_minutes_invokes_the_approval_metrics_function_with_a_dead_letter_queue(default: Any) -> None:
    workflow = workflow_of(default)
    assert workflow.pending_metrics_function is not None and workflow.pending_metrics_rule is not None
    assert workflow.pending_metrics_dead_letter_queue is not None

    rule = default.properties(workflow.pending_metrics_rule)
    function = default.properties(workflow.pending_metrics_function.function)

    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    [target] = rule["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    dead_letters = default.logical_id(workflow.pending_metrics_dead_letter_queue)
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dead_letters, "Arn"]}}
    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [dead_letters, "Arn"]}}
    assert default.environment(workflow.pending_metrics_function)["POWERTOOLS_SERVICE_NAME"] == "approval-metrics"


def test_the_approval_metrics_function_may_only_query_the_approvals_table(default: Any) -> None:
    workflow = workflow_of(default)
    assert workflow.pending_metrics_function is not None
    table = default.logical_id(workflow.approvals_table)

    dynamodb = {(a, r) for a, r in default.grants(workflow.pending_metrics_function) if a.startswith("dynamodb:")}

    assert {a for a, _ in dynamodb} == {"dynamodb:Query"}
    assert all(table in r for _, r in dynamodb)
    assert set(default.environment(workflow.pending_metrics_function)) >= {"AGENT_APPROVAL_TABLE"}
    assert not {k for k in default.environment(workflow.pending_metrics_function) if k.startswith("AGENT_APPROVAL_")} - {
        "AGENT_APPROVAL_TABLE"
    }


def test_each_function_may_query_only_the_approval_indexes_it_reads(default: Any) -> None:
    # Given the async stack's approvals table and the functions that use it
    workflow = workflow_of(default)
    indexes = str(default.render({"Fn::GetAtt": [default.logical_id(workflow.approvals_table), "Arn"]})) + "/index/"

    def queried(agent_function: Any) -> set[str]:
        rendered = (
            default.render(json.loads(r) if r.startswith("{") else r)
            for a, r in default.grants(agent_function)
            if a == "dynamodb:Query"
        )
        return {str(r).removeprefix(indexes) for r in rendered if str(r).startswith(indexes)}

    # When their Query grants on its indexes are read, then each names exactly the indexes its code queries (no index/*)
    assert queried(workflow.step_function) == set()  # it gets and puts approvals by id
    assert queried(workflow.pending_metrics_function) == {STATUS_INDEX}  # pending counts
    assert queried(default.stack.agent.agent_function) == {STATUS_INDEX, REQUESTER_INDEX}  # GET /approvals, erasure


def test_no_pending_metrics_every_means_no_emitter(stack: cdk.Stack) -> None:
    agent = AsyncAgent(stack, "Agent", approval_options=ApprovalOptions(pending_metrics_every=None))

    assert agent.approval_workflow is not None
    assert agent.approval_workflow.pending_metrics_function is None
    assert agent.approval_workflow.pending_metrics_rule is None


@pytest.mark.parametrize("every", [Duration.seconds(30), Duration.days(2)])
def test_pending_metrics_every_outside_one_minute_to_one_day_is_refused(every: Duration) -> None:
    with pytest.raises(ValueError, match="pending_metrics_every must be between 1 minute"):
        ApprovalOptions(pending_metrics_every=every).validate()


# -- options ---------------------------------------------------------------------------------


def test_approvals_without_task_types_are_refused() -> None:
    with pytest.raises(ValueError, match="task_types must name at least one task type"):
        ApprovalOptions(task_types=()).validate()


@pytest.mark.parametrize("timeout", [Duration.seconds(0), Duration.days(366)])
def test_decision_timeout_outside_one_second_to_one_year_is_refused(timeout: Duration) -> None:
    with pytest.raises(ValueError, match="decision_timeout must be between 1 second and the service's 1-year limit"):
        ApprovalOptions(decision_timeout=timeout, execution_timeout=Duration.days(365)).validate()


def test_decision_timeout_just_under_a_year_is_accepted() -> None:
    ApprovalOptions(decision_timeout=Duration.days(364), execution_timeout=Duration.days(365)).validate()


def test_execution_timeout_beyond_a_year_is_refused() -> None:
    with pytest.raises(ValueError, match="execution_timeout cannot exceed a Standard workflow's 1-year limit"):
        ApprovalOptions(decision_timeout=Duration.days(365), execution_timeout=Duration.days(366)).validate()


def test_escalate_without_an_escalation_group_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout_policy='escalate' needs escalation_group"):
        ApprovalOptions(timeout_policy="escalate").validate()


def test_execution_timeout_not_longer_than_the_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="execution_timeout must exceed the decision_timeout wait"):
        ApprovalOptions(decision_timeout=Duration.days(30), execution_timeout=Duration.days(30)).validate()


def test_execution_timeout_not_longer_than_both_escalation_waits_is_refused() -> None:
    options = ApprovalOptions(
        decision_timeout=Duration.days(10),
        timeout_policy="escalate",
        escalation_group="leads",
        execution_timeout=Duration.days(20),
    )

    with pytest.raises(ValueError, match="execution_timeout must exceed the decision_timeout wait"):
        options.validate()


def test_reminder_not_shorter_than_the_decision_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="reminder_after must be shorter than decision_timeout"):
        ApprovalOptions(decision_timeout=Duration.hours(4), reminder_after=Duration.hours(4)).validate()


def test_approval_step_timeout_beyond_15_minutes_is_refused() -> None:
    with pytest.raises(ValueError, match="step_timeout cannot exceed Lambda's 15 minutes"):
        ApprovalOptions(step_timeout=Duration.minutes(16)).validate()


def test_approval_workflow_validates_its_options(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="escalation_group"):
        AsyncAgent(stack, "Agent", approval_options=ApprovalOptions(timeout_policy="escalate"))


def test_separation_of_duties_is_on_unless_allow_self_approval_is_set(default: Any, synthesize: Any) -> None:
    agent = default.stack.agent
    allowed, synth = synthesize(
        lambda stack: AsyncAgent(stack, "Agent", approval_options=ApprovalOptions(allow_self_approval=True))
    )

    assert "AGENT_APPROVAL_ALLOW_SELF_APPROVAL" not in default.environment(agent.agent_function)
    assert synth.environment(allowed.agent_function)["AGENT_APPROVAL_ALLOW_SELF_APPROVAL"] == "true"


def test_callers_that_assumed_a_role_are_the_role_unless_the_api_identifies_them_by_session(
    default: Any, synthesize: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentrail_constructs import AgentApiOptions
    from agentrail_runtime.config import RuntimeSettings

    agent, synth = synthesize(lambda stack: AsyncAgent(stack, "Agent", api_options=AgentApiOptions(iam_identity="session")))
    environment = synth.environment(agent.agent_function)
    monkeypatch.setenv("AGENT_IAM_IDENTITY", environment["AGENT_IAM_IDENTITY"])

    assert "AGENT_IAM_IDENTITY" not in default.environment(default.stack.agent.agent_function)
    assert RuntimeSettings().iam_identity == "session"


def test_an_approval_workflow_that_may_run_longer_than_its_task_records_live_fails_synth_naming_the_fix(
    stack: cdk.Stack,
) -> None:
    # The default execution_timeout (30 days) against records kept a week: a task waiting for its approver
    # would lose its record, and with it its checkpoint, before the workflow ends.
    with pytest.raises(
        ValueError,
        match=r"ApprovalOptions.execution_timeout \(30 days\) is longer than the task table's retention \(7 days\)"
        r".*raise TaskTableOptions\(retention=\.\.\.\) or lower execution_timeout",
    ):
        AsyncAgent(
            stack,
            "Agent",
            task_table_options=TaskTableOptions(retention=Duration.days(7)),
            approval_options=ApprovalOptions(),
        )


def test_an_approval_workflow_as_long_as_its_task_records_live_is_accepted(synthesize: Any) -> None:
    options = ApprovalOptions(decision_timeout=Duration.days(364), execution_timeout=Duration.days(365))

    def build(stack: cdk.Stack) -> AsyncAgent:
        return AsyncAgent(
            stack, "Agent", task_table_options=TaskTableOptions(retention=Duration.days(365)), approval_options=options
        )

    agent, _ = synthesize(build)

    assert agent.approval_workflow is not None


def test_the_apps_approval_webhook_groups_context_turns_on_webhook_decisions_and_their_route() -> None:
    context = {"patterns": "async", "approval_webhook_groups": "approvers, finance"}
    configured = AppConfig.from_context(cdk.App(context=context), ("async",)).stack_options("async")
    default = AppConfig.from_context(cdk.App(context={"patterns": "async"}), ("async",)).stack_options("async")

    assert list(configured["approval_options"].webhook_groups) == ["approvers", "finance"]
    assert list(default["approval_options"].webhook_groups) == []
