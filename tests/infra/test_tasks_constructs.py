"""AsyncAgent, TaskTable and LongTaskWorkflow; and the queue rules every pattern stack must keep."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_kms as kms

from agentrail_constructs import (
    ApprovalOptions,
    AsyncAgent,
    AsyncOptions,
    LongTaskWorkflow,
    LongTaskWorkflowOptions,
    TaskTable,
    TaskTableOptions,
)

MIN_MAX_RECEIVE_COUNT = 5


@pytest.fixture(scope="module")
def tasks(pattern_stacks: dict[str, Any]) -> Any:
    """The async pattern stack: an AsyncAgent with a LongTaskWorkflow (``long``) and an ApprovalWorkflow (``reviewed``)."""
    return pattern_stacks["async"]


def agent_of(synth: Any) -> AsyncAgent:
    return synth.stack.agent


def arn_of(synth: Any, construct: Any) -> dict[str, Any]:
    return {"Fn::GetAtt": [synth.logical_id(construct), "Arn"]}


def text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def dead_letter_targets(synth: Any) -> set[str]:
    """Logical ids of queues something dead-letters into: a redrive policy, an on-failure destination or a rule's DLQ."""
    references: list[Any] = [
        props.get("RedrivePolicy", {}).get("deadLetterTargetArn") for props in synth.of_type("AWS::SQS::Queue").values()
    ]
    for resource_type in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::EventInvokeConfig"):
        references.extend(
            props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            for props in synth.of_type(resource_type).values()
        )
    for props in synth.of_type("AWS::Events::Rule").values():
        references.extend(target.get("DeadLetterConfig", {}).get("Arn") for target in props.get("Targets", []))
    return {ref["Fn::GetAtt"][0] for ref in references if isinstance(ref, dict) and "Fn::GetAtt" in ref}


def sqs_mappings(synth: Any) -> dict[str, dict[str, Any]]:
    """Event source mappings whose source is a queue of the stack."""
    queues = set(synth.of_type("AWS::SQS::Queue"))
    return {
        lid: props
        for lid, props in synth.of_type("AWS::Lambda::EventSourceMapping").items()
        if props["EventSourceArn"].get("Fn::GetAtt", [None])[0] in queues
    }


def mapped_function(synth: Any, function_name: Any) -> str:
    """The logical id of the function a mapping invokes, through its alias when it names one."""
    if "Ref" in function_name and synth.resources[function_name["Ref"]]["Type"] == "AWS::Lambda::Function":
        return function_name["Ref"]
    aliases = [lid for lid in synth.of_type("AWS::Lambda::Alias") if f'"Ref": "{lid}"' in text(function_name)]
    assert len(aliases) == 1, function_name
    return synth.resources[aliases[0]]["Properties"]["FunctionName"]["Ref"]


# -- rules every pattern stack keeps ---------------------------------------------------------


def test_every_queue_of_every_pattern_has_a_dead_letter_queue_or_is_one(pattern_stacks: dict[str, Any]) -> None:
    offenders, seen = [], 0
    for name, synth in pattern_stacks.items():
        targets = dead_letter_targets(synth)
        for lid, props in synth.of_type("AWS::SQS::Queue").items():
            seen += 1
            redrive = props.get("RedrivePolicy")
            if redrive is not None:
                if redrive["maxReceiveCount"] < MIN_MAX_RECEIVE_COUNT:
                    offenders.append(f"{name}/{lid}: maxReceiveCount {redrive['maxReceiveCount']}")
                if redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] not in synth.of_type("AWS::SQS::Queue"):
                    offenders.append(f"{name}/{lid}: dead-letters outside the stack")
            elif lid not in targets:
                offenders.append(f"{name}/{lid}: no DLQ and not a DLQ")

    assert seen >= 10, "the pattern stacks hold many queues; seeing few means the lookup broke"
    assert offenders == []


def test_every_queue_of_every_pattern_is_encrypted(pattern_stacks: dict[str, Any]) -> None:
    unencrypted = [
        f"{name}/{lid}"
        for name, synth in pattern_stacks.items()
        for lid, props in synth.of_type("AWS::SQS::Queue").items()
        if not (props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props)
    ]

    assert unencrypted == []


def test_every_queue_of_every_pattern_refuses_requests_without_tls(pattern_stacks: dict[str, Any]) -> None:
    missing = []
    for name, synth in pattern_stacks.items():
        denied = {
            queue["Ref"]
            for props in synth.of_type("AWS::SQS::QueuePolicy").values()
            if any(
                s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                for s in props["PolicyDocument"]["Statement"]
            )
            for queue in props["Queues"]
        }
        missing += [f"{name}/{lid}" for lid in synth.of_type("AWS::SQS::Queue") if lid not in denied]

    assert missing == []


def test_every_sqs_event_source_mapping_reports_batch_item_failures_and_caps_concurrency(
    pattern_stacks: dict[str, Any],
) -> None:
    offenders, seen = [], 0
    for name, synth in pattern_stacks.items():
        for lid, props in sqs_mappings(synth).items():
            seen += 1
            if props.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
                offenders.append(f"{name}/{lid}: no ReportBatchItemFailures")
            if not 2 <= props.get("ScalingConfig", {}).get("MaximumConcurrency", 0) <= 1000:
                offenders.append(f"{name}/{lid}: no MaximumConcurrency")

    assert seen >= 8, "async, multiagent (x5), hierarchical and stateful-enqueue consume queues"
    assert offenders == []


def test_every_consumed_queue_hides_a_message_for_six_times_its_consumers_timeout(pattern_stacks: dict[str, Any]) -> None:
    offenders = []
    for name, synth in pattern_stacks.items():
        for props in sqs_mappings(synth).values():
            queue = props["EventSourceArn"]["Fn::GetAtt"][0]
            function = mapped_function(synth, props["FunctionName"])
            visibility = synth.resources[queue]["Properties"]["VisibilityTimeout"]
            timeout = synth.resources[function]["Properties"]["Timeout"]
            if visibility < 6 * timeout:
                offenders.append(f"{name}/{queue}: {visibility}s visibility for a {timeout}s consumer")

    assert offenders == []


# -- TaskTable -------------------------------------------------------------------------------


def test_task_table_is_keyed_by_task_id_with_ttl_pitr_and_encryption(tasks: Any) -> None:
    props = tasks.properties(agent_of(tasks).task_table.table)

    assert props["KeySchema"] == [{"AttributeName": "task_id", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_task_table_is_retained_when_the_stack_is_deleted(tasks: Any) -> None:
    table = tasks.resources[tasks.logical_id(agent_of(tasks).task_table.table)]

    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_idempotency_table_matches_powertools_layout(tasks: Any) -> None:
    props = tasks.properties(agent_of(tasks).task_table.idempotency_table)

    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_results_bucket_is_encrypted_private_and_expires_after_the_retention(tasks: Any) -> None:
    bucket = agent_of(tasks).task_table.results_bucket

    props = tasks.properties(bucket)

    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert props["LifecycleConfiguration"]["Rules"] == [{"ExpirationInDays": 31, "Status": "Enabled"}]
    policies = [p for p in tasks.of_type("AWS::S3::BucketPolicy").values() if p["Bucket"] == {"Ref": tasks.logical_id(bucket)}]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for p in policies
        for s in p["PolicyDocument"]["Statement"]
    )


def test_customer_managed_key_encrypts_task_tables_bucket_queues_and_webhook_secret(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> AsyncAgent:
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        return AsyncAgent(stack, "Agent", task_table_options=TaskTableOptions(encryption_key=key))

    agent, synth = synthesize(build)
    key_arn = arn_of(synth, agent.task_table.encryption_key)

    for table in (agent.task_table.table, agent.task_table.idempotency_table):
        assert synth.properties(table)["SSESpecification"]["KMSMasterKeyId"] == key_arn
    bucket = synth.properties(agent.task_table.results_bucket)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert bucket["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    assert {lid for lid, p in synth.of_type("AWS::SQS::Queue").items() if p.get("KmsMasterKeyId") != key_arn} == set()
    assert synth.properties(agent.webhook_secret)["KmsKeyId"] == key_arn


def test_task_table_with_table_options_is_refused_naming_the_fix(stack: cdk.Stack) -> None:
    table = TaskTable(stack, "Tasks")

    with pytest.raises(ValueError, match="pass either existing_task_table or task_table_options, not both"):
        AsyncAgent(stack, "Agent", existing_task_table=table, task_table_options=TaskTableOptions())


# -- queue and worker ------------------------------------------------------------------------


def test_task_queue_dead_letters_after_five_receives_by_default(tasks: Any) -> None:
    agent = agent_of(tasks)

    assert tasks.properties(agent.queue)["RedrivePolicy"] == {
        "deadLetterTargetArn": arn_of(tasks, agent.dead_letter_queue),
        "maxReceiveCount": 5,
    }
    assert tasks.properties(agent.dead_letter_queue)["MessageRetentionPeriod"] == 14 * 86_400


def test_task_queue_visibility_timeout_is_six_times_the_workers_timeout(tasks: Any) -> None:
    agent = agent_of(tasks)

    worker_timeout = tasks.properties(agent.worker.function)["Timeout"]

    assert worker_timeout == 300
    assert tasks.properties(agent.queue)["VisibilityTimeout"] == 6 * worker_timeout


def test_worker_live_alias_consumes_the_task_queue(tasks: Any) -> None:
    agent = agent_of(tasks)
    queue = agent.queue

    mapping = [p for p in sqs_mappings(tasks).values() if p["EventSourceArn"] == arn_of(tasks, queue)]

    assert len(mapping) == 1
    assert f'"Ref": "{tasks.logical_id(agent.worker.alias)}"' in text(mapping[0]["FunctionName"])
    assert mapping[0]["BatchSize"] == 5
    assert mapping[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping[0]["ScalingConfig"] == {"MaximumConcurrency": 10}


def test_async_options_reach_the_queue_the_mapping_and_the_worker(synthesize: Any) -> None:
    options = AsyncOptions(max_receive_count=8, batch_size=2, worker_max_concurrency=40, allow_insecure_callbacks=True)

    agent, synth = synthesize(lambda stack: AsyncAgent(stack, "Agent", options=options))

    assert synth.properties(agent.queue)["RedrivePolicy"]["maxReceiveCount"] == 8
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"BatchSize": 2, "ScalingConfig": {"MaximumConcurrency": 40}}
    )
    assert synth.environment(agent.worker)["AGENT_TASK_MAX_RECEIVE_COUNT"] == "8"
    for agent_function in (agent.agent_function, agent.worker, agent.notifier):
        assert synth.environment(agent_function)["AGENT_TASK_ALLOW_INSECURE_CALLBACKS"] == "true"


def test_api_function_may_send_to_the_task_queue_but_not_consume_it(tasks: Any) -> None:
    agent = agent_of(tasks)
    queue = text(arn_of(tasks, agent.queue))

    actions = {action for action, resource in tasks.grants(agent.agent_function) if resource == queue}

    assert "sqs:SendMessage" in actions
    assert not actions & {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"}


# -- events and webhooks ---------------------------------------------------------------------


def test_api_and_worker_put_events_on_the_task_bus(tasks: Any) -> None:
    agent = agent_of(tasks)
    bus = text(arn_of(tasks, agent.event_bus))

    for agent_function in (agent.agent_function, agent.worker):
        assert ("events:PutEvents", bus) in tasks.grants(agent_function)
        assert tasks.environment(agent_function)["AGENT_TASK_EVENT_BUS"] == {"Ref": tasks.logical_id(agent.event_bus)}


def test_webhook_rule_matches_finished_tasks_with_a_callback_url_on_the_task_bus(tasks: Any) -> None:
    agent = agent_of(tasks)

    tasks.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventBusName": {"Ref": tasks.logical_id(agent.event_bus)},
            "EventPattern": {
                "source": ["agentrail_runtime.tasks"],
                "detail-type": ["Task Finished"],
                "detail": {"callback_url": [{"prefix": "http"}]},
            },
        },
    )


def test_webhook_rule_target_retries_then_dead_letters(tasks: Any) -> None:
    agent = agent_of(tasks)
    # The approval-metrics schedule is the stack's other rule.
    (rule,) = [r for r in tasks.of_type("AWS::Events::Rule").values() if "EventPattern" in r]

    (target,) = rule["Targets"]

    assert target["Arn"] == {"Ref": tasks.logical_id(agent.notifier.alias)}
    assert target["DeadLetterConfig"] == {"Arn": arn_of(tasks, agent.notifier_dead_letter_queue)}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0


def test_notifier_async_invocations_go_to_the_dead_letter_queue_when_they_fail(tasks: Any) -> None:
    agent = agent_of(tasks)
    (config,) = tasks.of_type("AWS::Lambda::EventInvokeConfig").values()
    notifier = tasks.resources[tasks.logical_id(agent.notifier.function)]

    assert config["FunctionName"] == {"Ref": tasks.logical_id(agent.notifier.function)}
    assert tasks.render(config["Qualifier"]) == "live"
    assert config["MaximumRetryAttempts"] == 2
    # One place for what failed every retry: the function's dead-letter queue (what checkov's CKV_AWS_116 checks).
    dead_letters = arn_of(tasks, agent.notifier_dead_letter_queue)
    assert "DestinationConfig" not in config
    assert notifier["Properties"]["DeadLetterConfig"] == {"TargetArn": dead_letters}
    assert "CKV_AWS_116" not in {s["id"] for s in notifier["Metadata"]["checkov"]["skip"]}
    # Lambda checks at creation that the role may send there, so the function waits for the policy that allows it.
    assert ("sqs:SendMessage", text(dead_letters)) in tasks.grants(agent.notifier)
    assert tasks.logical_id(agent.notifier.role.node.find_child("DefaultPolicy")) in notifier["DependsOn"]


def test_notifier_reads_the_webhook_signing_secret(tasks: Any) -> None:
    agent = agent_of(tasks)
    secret = tasks.logical_id(agent.webhook_secret)

    assert ("secretsmanager:GetSecretValue", text({"Ref": secret})) in tasks.grants(agent.notifier)
    assert tasks.environment(agent.notifier)["AGENT_TASK_WEBHOOK_SECRET"] == {"Ref": secret}


def test_the_api_serves_each_caller_its_webhook_key_behind_the_apis_auth(tasks: Any) -> None:
    agent = agent_of(tasks)
    secret = tasks.logical_id(agent.webhook_secret)

    assert ("secretsmanager:GetSecretValue", text({"Ref": secret})) in tasks.grants(agent.agent_function)
    assert tasks.environment(agent.agent_function)["AGENT_TASK_WEBHOOK_SECRET"] == {"Ref": secret}
    assert "AGENT_TASK_WEBHOOK_SECRET" not in tasks.environment(agent.worker)
    assert tasks.routes()[("GET", "/webhooks/secret")]["AuthorizationType"] == "AWS_IAM"


def test_callback_domains_reach_the_api_function_and_the_notifier_and_load_into_their_settings(
    synthesize: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentrail_runtime.tasks.settings import WebhookSettings

    options = AsyncOptions(callback_domains=["Hooks.Example.com", "partner.example.net."])

    agent, synth = synthesize(lambda stack: AsyncAgent(stack, "Agent", options=options))

    for agent_function in (agent.agent_function, agent.notifier):
        monkeypatch.setenv("AGENT_TASK_CALLBACK_DOMAINS", synth.environment(agent_function)["AGENT_TASK_CALLBACK_DOMAINS"])
        assert WebhookSettings().callback_policy().allowed_domains == ("hooks.example.com", "partner.example.net")


@pytest.mark.parametrize(
    ("domains", "problem"),
    [
        ("hooks.example.com", "must be a list"),
        (["https://hooks.example.com"], "not a domain name"),
        (["10.0.0.1"], "not a domain"),
    ],
    ids=["string", "url", "address"],
)
def test_callback_domains_must_be_a_list_of_domain_names(stack: cdk.Stack, domains: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AsyncAgent(stack, "Agent", options=AsyncOptions(callback_domains=domains))


def test_notifier_is_told_nothing_about_the_task_table(tasks: Any) -> None:
    agent = agent_of(tasks)
    table = tasks.logical_id(agent.task_table.table)

    assert "AGENT_TASK_TABLE" not in tasks.environment(agent.notifier)
    assert not [grant for grant in tasks.grants(agent.notifier) if table in grant[1]]


def test_webhooks_can_be_turned_off(synthesize: Any) -> None:
    agent, synth = synthesize(lambda stack: AsyncAgent(stack, "Agent", options=AsyncOptions(webhooks=False)))

    assert (agent.webhook_secret, agent.notifier, agent.notifier_dead_letter_queue) == (None, None, None)
    synth.template.resource_count_is("AWS::Events::Rule", 0)
    synth.template.resource_count_is("AWS::SecretsManager::Secret", 0)


# -- routes to workflows ---------------------------------------------------------------------


def test_task_routes_send_long_and_reviewed_tasks_to_their_state_machines(tasks: Any) -> None:
    agent = agent_of(tasks)

    routes = json.loads(tasks.render(tasks.environment(agent.agent_function)["AGENT_TASK_ROUTES"]))

    assert routes == {
        "default": "queue",
        "long": tasks.render({"Ref": tasks.logical_id(agent.workflow.state_machine)}),
        "reviewed": tasks.render({"Ref": tasks.logical_id(agent.approval_workflow.state_machine)}),
    }


def test_api_function_may_start_and_stop_only_its_workflows(tasks: Any) -> None:
    agent = agent_of(tasks)
    machines = [agent.workflow.state_machine, agent.approval_workflow.state_machine]

    started = {resource for action, resource in tasks.grants(agent.agent_function) if action == "states:StartExecution"}
    stopped = {resource for action, resource in tasks.grants(agent.agent_function) if action == "states:StopExecution"}

    assert started == {text({"Ref": tasks.logical_id(machine)}) for machine in machines}
    assert len(stopped) == 2
    for machine in machines:
        assert any(tasks.logical_id(machine) in resource and ":execution:" in resource for resource in stopped)


def test_synthesized_task_environment_is_accepted_by_the_runtime_settings(tasks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The construct writes AGENT_TASK_* and the runtime reads them: a rename on either side breaks here.
    from agentrail_runtime.tasks.settings import TaskSettings

    agent = agent_of(tasks)
    for name, value in tasks.render(tasks.environment(agent.agent_function)).items():
        monkeypatch.setenv(name, value)

    settings = TaskSettings()  # type: ignore[call-arg]

    assert settings.table == tasks.logical_id(agent.task_table.table)
    assert set(settings.routes) == {"default", "long", "reviewed"}
    assert settings.queue_url is not None and settings.queue_url.endswith(tasks.logical_id(agent.queue))


def test_add_workflow_route_refuses_a_task_type_that_already_has_a_route(stack: cdk.Stack) -> None:
    agent = AsyncAgent(stack, "Agent", long_task_options=LongTaskWorkflowOptions())

    with pytest.raises(ValueError, match=r"task types \['long'\] already have a route"):
        agent.add_workflow_route(agent.workflow.state_machine, ["long"])  # type: ignore[union-attr]


def test_long_tasks_and_approvals_cannot_share_a_task_type(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match=r"task types \['reviewed'\] already have a route"):
        AsyncAgent(
            stack,
            "Agent",
            long_task_options=LongTaskWorkflowOptions(task_types=("reviewed",)),
            approval_options=ApprovalOptions(task_types=("reviewed",)),
        )


def test_task_routes_are_iam_authenticated(tasks: Any) -> None:
    routes = tasks.routes()

    assert {("POST", "/tasks"), ("GET", "/tasks/{task_id}"), ("DELETE", "/tasks/{task_id}")} <= set(routes)
    assert {route for route, method in routes.items() if method["AuthorizationType"] != "AWS_IAM"} == set()


# -- LongTaskWorkflow ------------------------------------------------------------------------


def test_long_task_steps_run_with_the_step_timeout_and_slice(synthesize: Any) -> None:
    options = LongTaskWorkflowOptions(step_timeout=Duration.minutes(10), slice_steps=4)

    agent, synth = synthesize(lambda stack: AsyncAgent(stack, "Agent", long_task_options=options))

    steps = agent.workflow.step_function  # type: ignore[union-attr]
    assert synth.properties(steps.function)["Timeout"] == 600
    assert synth.environment(steps)["AGENT_TASK_SLICE_STEPS"] == "4"
    assert synth.environment(steps)["AGENT_TASK_EVENT_BUS"] == {"Ref": synth.logical_id(agent.event_bus)}


def test_long_task_workflow_keeps_its_logs_without_execution_data_for_the_retention(tasks: Any) -> None:
    workflow = agent_of(tasks).workflow

    assert tasks.properties(workflow.log_group)["RetentionInDays"] == 30


# -- options ---------------------------------------------------------------------------------


def test_max_receive_count_below_five_is_refused() -> None:
    with pytest.raises(ValueError, match="max_receive_count must be at least 5"):
        AsyncOptions(max_receive_count=4).validate()


@pytest.mark.parametrize("batch_size", [0, 11])
def test_batch_size_outside_1_to_10_is_refused(batch_size: int) -> None:
    with pytest.raises(ValueError, match="batch_size must be between 1 and 10"):
        AsyncOptions(batch_size=batch_size).validate()


@pytest.mark.parametrize("concurrency", [1, 1001])
def test_worker_max_concurrency_outside_the_mappings_limits_is_refused(concurrency: int) -> None:
    with pytest.raises(ValueError, match="worker_max_concurrency must be between 2 and 1000"):
        AsyncOptions(worker_max_concurrency=concurrency).validate()


def test_async_agent_validates_its_options(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="max_receive_count"):
        AsyncAgent(stack, "Agent", options=AsyncOptions(max_receive_count=1))


def test_long_task_workflow_without_task_types_is_refused() -> None:
    with pytest.raises(ValueError, match="task_types must name at least one task type"):
        LongTaskWorkflowOptions(task_types=()).validate()


def test_long_task_step_timeout_beyond_15_minutes_is_refused() -> None:
    with pytest.raises(ValueError, match="step_timeout cannot exceed Lambda's 15 minutes"):
        LongTaskWorkflowOptions(step_timeout=Duration.seconds(901)).validate()


@pytest.mark.parametrize("slice_steps", [0, 101])
def test_slice_steps_outside_1_to_100_is_refused(slice_steps: int) -> None:
    with pytest.raises(ValueError, match="slice_steps must be between 1 and 100"):
        LongTaskWorkflowOptions(slice_steps=slice_steps).validate()


def test_long_task_workflow_validates_its_options(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="slice_steps"):
        AsyncAgent(stack, "Agent", long_task_options=LongTaskWorkflowOptions(slice_steps=0))


# -- a workflow never outlives its task's record -----------------------------------------------


def test_a_long_task_workflow_that_may_run_longer_than_its_task_records_live_fails_synth_naming_the_fix(
    stack: cdk.Stack,
) -> None:
    records_live_a_week = TaskTableOptions(retention=Duration.days(7))

    with pytest.raises(
        ValueError,
        match=r"LongTaskWorkflowOptions.execution_timeout \(10 days\) is longer than the task table's retention \(7 days\)"
        r".*raise TaskTableOptions\(retention=\.\.\.\) or lower execution_timeout",
    ):
        AsyncAgent(
            stack,
            "Agent",
            task_table_options=records_live_a_week,
            long_task_options=LongTaskWorkflowOptions(execution_timeout=Duration.days(10)),
        )


def test_a_long_task_workflow_on_an_existing_task_table_is_held_to_that_tables_retention(stack: cdk.Stack) -> None:
    table = TaskTable(stack, "Tasks", table_options=TaskTableOptions(retention=Duration.days(1)))

    with pytest.raises(ValueError, match=r"execution_timeout \(2 days\) is longer than the task table's retention \(1 day\)"):
        LongTaskWorkflow(
            stack, "LongTasks", task_table=table, options=LongTaskWorkflowOptions(execution_timeout=Duration.days(2))
        )


def test_a_long_task_workflow_as_long_as_its_task_records_live_is_accepted(synthesize: Any) -> None:
    def build(stack: cdk.Stack) -> AsyncAgent:
        return AsyncAgent(
            stack,
            "Agent",
            task_table_options=TaskTableOptions(retention=Duration.days(7)),
            long_task_options=LongTaskWorkflowOptions(execution_timeout=Duration.days(7)),
        )

    agent, synth = synthesize(build)

    assert agent.workflow is not None
    assert json.loads(synth.render(synth.properties(agent.workflow.state_machine)["DefinitionString"]))["TimeoutSeconds"] == (
        7 * 86_400
    )
