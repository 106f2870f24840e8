"""A redeploy after a new synth applies what changed to the running local cloud and keeps moto's state.

Two versions of one CDK app are synthesized in process. The second changes a function's environment,
a queue's visibility timeout, a state machine's definition and a table's key schema, adds a route with
its function, and removes a topic. The local cloud runs the first, gets data, then redeploys the second.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentrail_local.cloud import LocalCloud
from agentrail_local.cloudformation.assembly import CloudAssembly
from agentrail_local.cloudformation.changes import diff_stacks
from agentrail_local.cloudformation.deployer import StackDeployment
from agentrail_local.cloudformation.redeploy import AppliedChange

pytestmark = pytest.mark.slow

STACK = "Local-Redeploy"


def _build_app(outdir: Path, handlers: Path, *, version: int, asset_hash: str | None = None) -> Path:
    import aws_cdk as cdk
    from aws_cdk import aws_apigateway as apigw
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_sns as sns
    from aws_cdk import aws_sqs as sqs
    from aws_cdk import aws_stepfunctions as sfn

    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True})
    stack = cdk.Stack(app, STACK)
    code = (
        lambda_.Code.from_asset(str(handlers), asset_hash=asset_hash, asset_hash_type=cdk.AssetHashType.CUSTOM)
        if asset_hash
        else lambda_.Code.from_asset(str(handlers))
    )
    runtime = lambda_.Runtime.PYTHON_3_12
    greeter = lambda_.Function(
        stack,
        "Greeter",
        runtime=runtime,
        handler="tasks.greeting",
        code=code,
        environment={"GREETING": "hello" if version == 1 else "bonjour"},
    )
    sqs.Queue(stack, "Work", visibility_timeout=cdk.Duration.seconds(30 if version == 1 else 90))
    key = "pk" if version == 1 else "id"
    dynamodb.Table(
        stack,
        "Items",
        partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    if version == 1:
        sns.Topic(stack, "Notices")
    sfn.StateMachine(
        stack,
        "Flow",
        definition_body=sfn.DefinitionBody.from_chainable(
            sfn.Pass(stack, "Answer", result=sfn.Result.from_object({"version": version}))
        ),
    )
    api = apigw.RestApi(stack, "Api", deploy_options=apigw.StageOptions(stage_name="v1"))
    api.root.add_resource("hello").add_method("GET", apigw.LambdaIntegration(greeter))
    if version == 2:
        farewell = lambda_.Function(
            stack, "Farewell", runtime=runtime, handler="tasks.greeting", code=code, environment={"GREETING": "goodbye"}
        )
        api.root.add_resource("bye").add_method("GET", apigw.LambdaIntegration(farewell))
    app.synth()
    return outdir


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory, handlers_dir: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("redeploy")
    moved = base / "moved-handlers"
    shutil.copytree(handlers_dir, moved)
    edited = base / "edited-handlers"
    shutil.copytree(handlers_dir, edited)
    tasks = edited / "tasks.py"
    tasks.write_text(
        tasks.read_text().replace('"greeting": os.environ.get("GREETING")', '"greeting": os.environ.get("GREETING") + "!"')
    )
    return {
        "v1": _build_app(base / "v1", handlers_dir, version=1),
        "v1-moved": _build_app(base / "v1-moved", moved, version=1, asset_hash="same-code-another-name"),
        "v2": _build_app(base / "v2", handlers_dir, version=2),
        "v3": _build_app(base / "v3", edited, version=2),
    }


def _stack(assembly: Path) -> Any:
    return CloudAssembly.load(assembly).stack(STACK)


def _deployment(cloud: LocalCloud) -> StackDeployment:
    return next(d for d in cloud.deployments if d.stack_name == STACK)


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_the_template_diff_names_each_added_updated_and_removed_resource(versions: dict[str, Path]) -> None:
    changes = {
        (c.logical_id.rstrip("0123456789ABCDEF"), c.action): c.properties
        for c in diff_stacks(_stack(versions["v1"]), _stack(versions["v2"]))
    }

    assert changes[("Greeter", "updated")] == ("Environment",)
    assert changes[("Work", "updated")] == ("VisibilityTimeout",)
    assert changes[("Items", "updated")] == ("AttributeDefinitions", "KeySchema")
    assert changes[("Flow", "updated")] == ("DefinitionString",)
    assert ("Notices", "removed") in changes
    assert ("Farewell", "added") in changes
    assert ("Apibye", "added") in changes


def test_an_asset_that_only_got_another_name_is_no_change(versions: dict[str, Path]) -> None:
    before, after = _stack(versions["v1"]), _stack(versions["v1-moved"])
    assert set(before.assets) != set(after.assets)

    assert diff_stacks(before, after) == []


@pytest.fixture(scope="module")
def redeployed(
    local_cloud: Callable[..., LocalCloud], versions: dict[str, Path]
) -> tuple[LocalCloud, list[AppliedChange], dict[str, Any]]:
    cloud = local_cloud(versions["v1"])
    deployment = _deployment(cloud)
    table = next(r for r in deployment.of_type("AWS::DynamoDB::Table"))
    cloud.clients("dynamodb").put_item(TableName=table.ref, Item={"pk": {"S": "kept"}})
    before = {
        "url": cloud.endpoints()[0].url,
        "hello": _get(cloud.endpoints()[0].url + "/hello"),
        "topic": next(r for r in deployment.of_type("AWS::SNS::Topic")).ref,
        "table": table.ref,
    }
    changes = cloud.redeploy(versions["v2"])
    return cloud, changes, before


def test_a_changed_environment_variable_reaches_the_function_through_the_same_api_url(
    redeployed: tuple[LocalCloud, list[AppliedChange], dict[str, Any]],
) -> None:
    cloud, changes, before = redeployed

    after = _get(before["url"] + "/hello")

    assert before["hello"]["greeting"] == "hello"
    assert after["greeting"] == "bonjour"
    assert cloud.endpoints()[0].url == before["url"]
    greeter = next(c for c in changes if c.logical_id.startswith("Greeter") and c.type == "AWS::Lambda::Function")
    assert (greeter.action, greeter.properties) == ("updated", ("Environment",))
    configuration = cloud.clients("lambda").get_function_configuration(
        FunctionName=_deployment(cloud).resource(greeter.logical_id).ref
    )
    assert configuration["Environment"]["Variables"]["GREETING"] == "bonjour"


def test_an_added_route_and_function_are_served(redeployed: tuple[LocalCloud, list[AppliedChange], dict[str, Any]]) -> None:
    cloud, changes, before = redeployed

    answer = _get(before["url"] + "/bye")

    assert answer["greeting"] == "goodbye"
    assert "GET /bye" in cloud.endpoints()[0].routes
    assert any(c.action == "added" and c.logical_id.startswith("Farewell") for c in changes)


def test_queue_attributes_and_state_machine_definitions_are_updated_in_place(
    redeployed: tuple[LocalCloud, list[AppliedChange], dict[str, Any]],
) -> None:
    cloud, _, _ = redeployed
    deployment = _deployment(cloud)
    queue = next(r for r in deployment.of_type("AWS::SQS::Queue"))
    machine = next(r for r in deployment.of_type("AWS::StepFunctions::StateMachine"))

    attributes = cloud.clients("sqs").get_queue_attributes(QueueUrl=queue.ref, AttributeNames=["VisibilityTimeout"])["Attributes"]
    definition = json.loads(cloud.clients("stepfunctions").describe_state_machine(stateMachineArn=machine.ref)["definition"])

    assert attributes["VisibilityTimeout"] == "90"
    assert definition["States"]["Answer"]["Result"] == {"version": 2}


def test_a_removed_topic_is_deleted(redeployed: tuple[LocalCloud, list[AppliedChange], dict[str, Any]]) -> None:
    cloud, changes, before = redeployed

    topics = [t["TopicArn"] for t in cloud.clients("sns").list_topics()["Topics"]]

    assert before["topic"] not in topics
    assert any(c.action == "removed" and c.type == "AWS::SNS::Topic" for c in changes)


def test_a_key_schema_change_is_not_applied_and_the_table_keeps_its_items(
    redeployed: tuple[LocalCloud, list[AppliedChange], dict[str, Any]],
) -> None:
    cloud, changes, before = redeployed

    item = cloud.clients("dynamodb").get_item(TableName=before["table"], Key={"pk": {"S": "kept"}}).get("Item")
    table = next(c for c in changes if c.type == "AWS::DynamoDB::Table")

    assert item == {"pk": {"S": "kept"}}
    assert table.action == "not applied"
    assert "changing KeySchema replaces it on AWS" in table.describe()
    assert "keeps the old one and its data" in table.describe()


def test_changed_function_code_in_a_new_synth_is_what_the_function_runs_next(
    redeployed: tuple[LocalCloud, list[AppliedChange], dict[str, Any]], versions: dict[str, Path]
) -> None:
    cloud, _, before = redeployed

    changes = cloud.redeploy(versions["v3"])

    assert _get(before["url"] + "/hello")["greeting"] == "bonjour!"
    assert _get(before["url"] + "/bye")["greeting"] == "goodbye!"
    functions = sorted(
        (c.logical_id.rstrip("0123456789ABCDEF"), c.action, c.properties) for c in changes if c.type == "AWS::Lambda::Function"
    )
    assert functions == [("Farewell", "updated", ("Code",)), ("Greeter", "updated", ("Code",))]


def test_a_new_synth_with_the_same_templates_changes_nothing_and_still_names_what_was_not_applied(
    redeployed: tuple[LocalCloud, list[AppliedChange], dict[str, Any]], versions: dict[str, Path]
) -> None:
    cloud, _, _ = redeployed

    changes = cloud.redeploy(versions["v3"])

    assert [(c.type, c.action, c.properties) for c in changes] == [
        ("AWS::DynamoDB::Table", "not applied", ("AttributeDefinitions", "KeySchema"))
    ]
