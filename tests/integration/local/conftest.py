"""Fixtures of the local-mode integration tests: real cloud assemblies, synthesized once per session."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from agentrail_cli.synth import synthesize
from agentrail_local.cloud import LocalCloud

REPO_ROOT = Path(__file__).resolve().parents[3]
HANDLERS = Path(__file__).parent / "fixtures" / "handlers"


@pytest.fixture(scope="session")
def handlers_dir() -> Path:
    return HANDLERS


@pytest.fixture(scope="session")
def stateless_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real app's ``-c patterns=stateless`` assembly, synthesized by the pinned CDK CLI."""
    output = tmp_path_factory.getbasetemp() / "assembly-stateless"
    if not (output / "manifest.json").is_file():
        synthesize(REPO_ROOT, output, patterns="stateless")
    return output


def agent_function(deployment: Any) -> Any:
    """The one function of a pattern stack that serves its API: the others are its canary's pre-traffic hooks, which
    local mode deploys but never calls (it has no CodeDeploy)."""
    (function,) = [f for f in deployment.of_type("AWS::Lambda::Function") if f.metadata.get("agentrail:handler") != "canary_hook"]
    return function


def _cdk_json_context() -> dict[str, object]:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def build_services_app(outdir: Path) -> None:
    """Three stacks using the resource types the patterns need, synthesized in process.

    ``Local-Services`` holds data, messaging, workflow and security resources;
    ``Local-Edge`` holds a REST API with one route per gateway behaviour, and
    imports the user pool from ``Local-Services`` (a cross-stack reference);
    ``Local-Workflows`` holds state machines and an EventBridge rule with a Lambda target.
    """
    import aws_cdk as cdk
    from aws_cdk import aws_apigateway as apigw
    from aws_cdk import aws_cognito as cognito
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_events as events
    from aws_cdk import aws_events_targets as targets
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_lambda_event_sources as sources
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_secretsmanager as secretsmanager
    from aws_cdk import aws_sns as sns
    from aws_cdk import aws_sns_subscriptions as subscriptions
    from aws_cdk import aws_sqs as sqs
    from aws_cdk import aws_ssm as ssm
    from aws_cdk import aws_stepfunctions as sfn
    from aws_cdk import aws_stepfunctions_tasks as sfn_tasks

    # Same context as the CLI gives the real app (cdk.json), plus asset metadata, which the CLI turns on.
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True, **_cdk_json_context()})
    services_code = lambda_.Code.from_asset(str(HANDLERS))
    runtime = lambda_.Runtime.PYTHON_3_12
    removal = cdk.RemovalPolicy.DESTROY

    services = cdk.Stack(app, "Local-Services")
    key = kms.Key(services, "DataKey", enable_key_rotation=True, alias="alias/local-data", removal_policy=removal)
    table = dynamodb.Table(
        services,
        "Sessions",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute="expires_at",
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
        stream=dynamodb.StreamViewType.NEW_IMAGE,
        removal_policy=removal,
    )
    table.add_global_secondary_index(
        index_name="by-user", partition_key=dynamodb.Attribute(name="user_id", type=dynamodb.AttributeType.STRING)
    )
    dynamodb.TableV2(
        services,
        "Events",
        partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
        time_to_live_attribute="ttl",
        removal_policy=removal,
    )
    dead_letters = sqs.Queue(services, "TasksDlq", retention_period=cdk.Duration.days(14))
    queue = sqs.Queue(
        services,
        "Tasks",
        visibility_timeout=cdk.Duration.seconds(90),
        dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=3, queue=dead_letters),
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
    )
    sqs.Queue(services, "Ordered", fifo=True, content_based_deduplication=True)
    inbox = sqs.Queue(services, "Inbox")
    s3.Bucket(
        services,
        "Offload",
        encryption=s3.BucketEncryption.S3_MANAGED,
        versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(30))],
        removal_policy=removal,
    )
    topic = sns.Topic(services, "Notices")
    topic.add_subscription(subscriptions.SqsSubscription(inbox, raw_message_delivery=True))
    bus = events.EventBus(services, "Bus", event_bus_name="local-agent-bus")
    events.Rule(
        services,
        "TaskDone",
        event_bus=bus,
        event_pattern=events.EventPattern(source=["agentrail_runtime.tasks"]),
        targets=[targets.SqsQueue(inbox)],
    )
    secretsmanager.Secret(
        services,
        "ApiToken",
        generate_secret_string=secretsmanager.SecretStringGenerator(
            secret_string_template=json.dumps({"user": "agent"}),
            generate_string_key="password",
            exclude_punctuation=True,
            password_length=24,
        ),
    )
    ssm.StringParameter(services, "ModelParam", parameter_name="/agentrail/local/model", string_value="local")
    logs.LogGroup(services, "Audit", retention=logs.RetentionDays.ONE_WEEK, removal_policy=removal)
    doubler = lambda_.Function(
        services,
        "Doubler",
        runtime=runtime,
        handler="tasks.double",
        code=services_code,
        timeout=cdk.Duration.seconds(10),
        environment={"TABLE_NAME": table.table_name, "QUEUE_URL": queue.queue_url},
    )
    lambda_.Function(
        services,
        "Inline",
        runtime=runtime,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return {'inline': True}\n"),
    )
    imported_role = iam.Role.from_role_arn(
        services, "ImportedRole", "arn:aws:iam::123456789012:role/service/imported-role", mutable=False
    )
    lambda_.Function(
        services, "ImportedRoleFunction", runtime=runtime, handler="tasks.double", code=services_code, role=imported_role
    )
    alias = lambda_.Alias(services, "DoublerLive", alias_name="live", version=doubler.current_version)
    alias.add_auto_scaling(max_capacity=2).scale_on_utilization(utilization_target=0.5)
    doubler.add_event_source(sources.SqsEventSource(queue, batch_size=5, report_batch_item_failures=True))
    jobs_dead_letters = sqs.Queue(services, "JobsDlq")
    jobs = sqs.Queue(
        services,
        "Jobs",
        visibility_timeout=cdk.Duration.seconds(1),
        dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=2, queue=jobs_dead_letters),
    )
    worker = lambda_.Function(
        services, "JobWorker", runtime=runtime, handler="tasks.batch", code=services_code, timeout=cdk.Duration.seconds(1)
    )
    worker.add_event_source(sources.SqsEventSource(jobs, batch_size=10, report_batch_item_failures=True))
    double = sfn_tasks.LambdaInvoke(services, "Double", lambda_function=alias, payload_response_only=True)
    sfn.StateMachine(
        services, "Flow", definition_body=sfn.DefinitionBody.from_chainable(double.next(sfn.Succeed(services, "Done")))
    )
    pool = cognito.UserPool(services, "Users", removal_policy=removal)
    pool.add_client("WebClient", auth_flows=cognito.AuthFlow(user_password=True, admin_user_password=True))
    stage_parameter = cdk.CfnParameter(services, "Stage", default="dev")
    is_prod = cdk.CfnCondition(services, "IsProd", expression=cdk.Fn.condition_equals(stage_parameter.value_as_string, "prod"))
    prod_only = sqs.CfnQueue(services, "ProdOnly")
    prod_only.cfn_options.condition = is_prod
    mystery = cdk.CfnResource(services, "Mystery", type="AWS::Kinesis::Stream", properties={"ShardCount": 1})
    cdk.CfnOutput(services, "Mode", value=cdk.Fn.condition_if(is_prod.logical_id, "prod", "dev").to_string())
    cdk.CfnOutput(services, "MysteryArn", value=mystery.get_att("Arn").to_string())
    cdk.CfnOutput(services, "QueueUrl", value=queue.queue_url)

    edge = cdk.Stack(app, "Local-Edge")
    code = lambda_.Code.from_asset(str(HANDLERS))
    echo = lambda_.Function(edge, "Echo", runtime=runtime, handler="tasks.echo_event", code=code)
    failing = lambda_.Function(edge, "Failing", runtime=runtime, handler="tasks.fail", code=code)
    malformed = lambda_.Function(edge, "Malformed", runtime=runtime, handler="tasks.malformed_proxy", code=code)
    no_content = lambda_.Function(edge, "NoContent", runtime=runtime, handler="tasks.no_content", code=code)
    slow = lambda_.Function(
        edge, "Slow", runtime=runtime, handler="tasks.slow_proxy", code=code, timeout=cdk.Duration.seconds(10)
    )
    reserved = lambda_.Function(
        edge,
        "Reserved",
        runtime=runtime,
        handler="tasks.slow_proxy",
        code=code,
        timeout=cdk.Duration.seconds(10),
        reserved_concurrent_executions=1,
    )
    api = apigw.RestApi(
        edge,
        "EchoApi",
        cloud_watch_role=False,
        binary_media_types=["application/octet-stream"],
        deploy_options=apigw.StageOptions(
            stage_name="test",
            variables={"flavour": "local"},
            method_options={"/throttled/GET": apigw.MethodDeploymentOptions(throttling_rate_limit=1, throttling_burst_limit=1)},
        ),
    )
    to_echo = apigw.LambdaIntegration(echo)
    iam = apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM)
    api.root.add_resource("iam").add_method("GET", to_echo, authorization_type=apigw.AuthorizationType.IAM)
    api.root.add_resource("items").add_resource("{item_id}").add_method(
        "GET", to_echo, authorization_type=apigw.AuthorizationType.IAM
    )
    api.root.add_resource("files").add_proxy(default_integration=to_echo, any_method=True, default_method_options=iam)
    api.root.add_resource("keyed").add_method("GET", to_echo, api_key_required=True)
    api_key = api.add_api_key("Key")
    plan = api.add_usage_plan("Plan", api_stages=[apigw.UsagePlanPerApiStage(api=api, stage=api.deployment_stage)])
    plan.add_api_key(api_key)
    authorizer = apigw.CognitoUserPoolsAuthorizer(edge, "Authorizer", cognito_user_pools=[pool])
    api.root.add_resource("me").add_method(
        "GET", to_echo, authorizer=authorizer, authorization_type=apigw.AuthorizationType.COGNITO
    )
    api.root.add_resource("throttled").add_method("GET", to_echo)
    model = api.add_model(
        "NoteModel",
        content_type="application/json",
        schema=apigw.JsonSchema(
            schema=apigw.JsonSchemaVersion.DRAFT4,
            type=apigw.JsonSchemaType.OBJECT,
            properties={"note": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, max_length=10)},
            required=["note"],
            additional_properties=False,
        ),
    )
    api.root.add_resource("validated").add_method(
        "POST",
        to_echo,
        request_validator_options=apigw.RequestValidatorOptions(validate_request_body=True, validate_request_parameters=True),
        request_models={"application/json": model},
        request_parameters={"method.request.querystring.lang": True},
    )
    api.root.add_resource("fail").add_method("GET", apigw.LambdaIntegration(failing))
    api.root.add_resource("malformed").add_method("GET", apigw.LambdaIntegration(malformed))
    api.root.add_resource("empty").add_method("DELETE", apigw.LambdaIntegration(no_content))
    api.root.add_resource("slow").add_method("GET", apigw.LambdaIntegration(slow))
    api.root.add_resource("reserved").add_method("GET", apigw.LambdaIntegration(reserved))
    _build_workflows_stack(app, code=lambda_.Code.from_asset(str(HANDLERS)), runtime=runtime)
    app.synth()


def _build_workflows_stack(app: object, *, code: object, runtime: object) -> None:
    """``Local-Workflows``: state machines calling a function through its alias, the way the patterns' workflows do.

    ``Guarded`` retries ``FlakyError`` and catches ``OrderRejected`` (``ServiceGuarded`` catches it through the
    ``lambda:invoke`` service integration); ``Paused`` waits for a task token for at
    most 3 seconds and catches ``States.Timeout``; ``FanOut`` is a distributed Map whose tolerated failure
    percentage comes from its input. The ``Heard`` rule sends bus events to a function and to a queue.
    """
    import aws_cdk as cdk
    from aws_cdk import aws_events as events
    from aws_cdk import aws_events_targets as targets
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_sqs as sqs
    from aws_cdk import aws_stepfunctions as sfn
    from aws_cdk import aws_stepfunctions_tasks as sfn_tasks

    stack = cdk.Stack(app, "Local-Workflows")  # type: ignore[arg-type]
    steps = lambda_.Function(
        stack, "Steps", runtime=runtime, handler="tasks.workflow_step", code=code, timeout=cdk.Duration.seconds(10)
    )  # type: ignore[arg-type]
    live = lambda_.Alias(stack, "StepsLive", alias_name="live", version=steps.current_version)

    guarded_step = sfn_tasks.LambdaInvoke(
        stack, "Step", lambda_function=live, payload_response_only=True, retry_on_service_exceptions=False, result_path="$.result"
    )
    guarded_step.add_retry(errors=["FlakyError"], interval=cdk.Duration.seconds(1), max_attempts=2, backoff_rate=1)
    guarded_step.add_catch(sfn.Pass(stack, "Rejected"), errors=["OrderRejected"], result_path="$.error")
    sfn.StateMachine(stack, "Guarded", definition_body=sfn.DefinitionBody.from_chainable(guarded_step))
    # The same through the service integration (arn:aws:states:::lambda:invoke), as the async workflows call it.
    service_step = sfn_tasks.LambdaInvoke(
        stack, "ServiceStep", lambda_function=live, retry_on_service_exceptions=False, result_path="$.result"
    )
    service_step.add_catch(sfn.Pass(stack, "ServiceRejected"), errors=["OrderRejected"], result_path="$.error")
    sfn.StateMachine(stack, "ServiceGuarded", definition_body=sfn.DefinitionBody.from_chainable(service_step))

    wait = sfn_tasks.LambdaInvoke(
        stack,
        "WaitForDecision",
        lambda_function=live,
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        payload=sfn.TaskInput.from_object({"action": "remember_token", "marker.$": "$.marker", "token": sfn.JsonPath.task_token}),
        result_path="$.decision",
        task_timeout=sfn.Timeout.duration(cdk.Duration.seconds(3)),
        retry_on_service_exceptions=False,
    )
    wait.add_catch(
        sfn.Pass(stack, "TimedOut", result=sfn.Result.from_object({"timed_out": True}), result_path="$.decision"),
        errors=["States.Timeout"],
        result_path="$.timeout",
    )
    sfn.StateMachine(stack, "Paused", definition_body=sfn.DefinitionBody.from_chainable(wait))

    item = sfn_tasks.LambdaInvoke(
        stack, "Item", lambda_function=live, payload_response_only=True, retry_on_service_exceptions=False
    )
    fan_out = sfn.DistributedMap(
        stack,
        "Items",
        items_path="$.items",
        tolerated_failure_percentage_path="$.tolerance",
        max_concurrency=4,
        result_path=sfn.JsonPath.DISCARD,
        map_execution_type=sfn.StateMachineType.STANDARD,
    )
    fan_out.item_processor(item)
    sfn.StateMachine(stack, "FanOut", definition_body=sfn.DefinitionBody.from_chainable(fan_out))

    listener = lambda_.Function(stack, "Listener", runtime=runtime, handler="tasks.record_event", code=code)  # type: ignore[arg-type]
    listener_live = lambda_.Alias(stack, "ListenerLive", alias_name="live", version=listener.current_version)
    heard = sqs.Queue(stack, "Heard")
    bus = events.EventBus(stack, "Bus", event_bus_name="local-workflow-bus")
    events.Rule(
        stack,
        "HeardRule",
        event_bus=bus,
        event_pattern=events.EventPattern(source=["agentrail.tests"]),
        targets=[targets.LambdaFunction(listener_live), targets.SqsQueue(heard)],
    )


@pytest.fixture(scope="session")
def services_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.getbasetemp() / "assembly-services"
    if not (output / "manifest.json").is_file():
        build_services_app(output)
    return output


@pytest.fixture(scope="module")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalCloud]]:
    """``local_cloud(assembly, stacks=[...])``: local mode running ``assembly`` until the end of the test module.

    APIs get free ports; warnings and notices are kept in ``cloud.warnings`` and ``cloud.notices`` rather than
    printed (``options`` may pass ``notice=`` to see them as the console does). Functions start cold
    on first use unless ``prewarm=True``.
    """
    with ExitStack() as running:

        def start(assembly: Path, *, prewarm: bool = False, **options: Any) -> LocalCloud:
            quiet: dict[str, Any] = {"warn": lambda _: None, "notice": lambda _: None}
            cloud = LocalCloud(
                assembly, port=0, state_dir=tmp_path_factory.mktemp("local"), prewarm=prewarm, **{**quiet, **options}
            )
            return running.enter_context(cloud)

        yield start


def template_assembly(root: Path, stack: str, template: Mapping[str, Any]) -> Path:
    """A cloud assembly at ``root`` with one stack, ``stack``, of a hand-written ``template``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{stack}.template.json").write_text(json.dumps(template))
    artifact = {"type": "aws:cloudformation:stack", "properties": {"templateFile": f"{stack}.template.json"}}
    (root / "manifest.json").write_text(json.dumps({"version": "36.0.0", "artifacts": {stack: artifact}}))
    return root


def quiet_cloud(assembly: Path, state_dir: Path, **options: Any) -> LocalCloud:
    """Local mode (not started) on ``assembly``, free ports, cold functions on this interpreter, warnings and notices
    kept in ``cloud.warnings`` and ``cloud.notices``, and ``options`` (a meter, a schedule period)."""
    return LocalCloud(
        assembly,
        port=0,
        state_dir=state_dir,
        prewarm=False,
        python=sys.executable,
        warn=lambda _: None,
        notice=lambda _: None,
        **options,
    )
