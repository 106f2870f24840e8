"""A local cloud with a call meter: a function's calls are its own, whatever invoked it, and local mode's are nobody's.

The assembly is written by hand (no CDK synth): a table, a queue whose event source mapping invokes ``Writer``, and
``Writer`` itself, inline code that puts one item and logs one line; it runs on this interpreter, which has boto3.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentrail_local.cloud import LocalCloud
from agentrail_local.metering import CallMeter, MeterReading
from tests.integration.local.conftest import quiet_cloud, template_assembly

pytestmark = pytest.mark.slow

WRITER = """
import os
import boto3

def handler(event, context):
    boto3.client("dynamodb").put_item(TableName=os.environ["TABLE"], Item={"pk": {"S": context.aws_request_id}})
    print("wrote one item")
    return {"ok": True}
"""
ROLE_ARN = {"Fn::GetAtt": ["WriterRole", "Arn"]}
TEMPLATE = {
    "Resources": {
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": "metered",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            },
        },
        "Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "metered-jobs"}},
        "WriterRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                }
            },
        },
        "Writer": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "index.handler",
                "Code": {"ZipFile": WRITER},
                "Role": ROLE_ARN,
                "MemorySize": 256,
                "Architectures": ["arm64"],
                "Timeout": 10,
                "Environment": {"Variables": {"TABLE": {"Ref": "Table"}}},
            },
        },
        "WriterJobs": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Jobs", "Arn"]}, "FunctionName": {"Ref": "Writer"}, "BatchSize": 1},
        },
    }
}


def _assembly(root: Path) -> Path:
    return template_assembly(root, "Metered", TEMPLATE)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    root = tmp_path_factory.mktemp("metered")
    with quiet_cloud(_assembly(root / "cdk.out"), root / "state", meter=CallMeter()) as running:
        yield running


def _settled(cloud: LocalCloud, invocations: int, seconds: float = 30, *, deleted: bool = False) -> MeterReading:
    """The reading once Writer ran ``invocations`` times (and, with ``deleted``, the poller deleted what it handed over)."""
    assert cloud.meter is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reading = cloud.meter.reading()
        use = reading.lambda_functions.get("Writer")
        removed = any(call.startswith("sqs:DeleteMessage") for call in reading.poller_calls)
        if use is not None and use.invocations >= invocations and reading.in_flight == 0 and (removed or not deleted):
            return reading
        time.sleep(0.1)
    raise AssertionError(f"Writer was not invoked {invocations} times: {cloud.meter.reading()}")


def test_a_functions_calls_are_attributed_to_it_and_local_modes_are_not_counted(cloud: LocalCloud) -> None:
    assert cloud.meter is not None and cloud.clients is not None
    cloud.meter.reset()
    function_name = next(f.physical_id for d in cloud.deployments for f in d.of_type("AWS::Lambda::Function"))

    cloud.clients("lambda").invoke(FunctionName=function_name, Payload=b"{}")  # local mode's call: not counted
    queue = cloud.clients("sqs").get_queue_url(QueueName="metered-jobs")["QueueUrl"]
    cloud.clients("sqs").send_message(QueueUrl=queue, MessageBody="job")  # the poller invokes Writer
    reading = _settled(cloud, 2, deleted=True)

    assert reading.calls == {"dynamodb:PutItem": 2}
    assert reading.calls_by_function == {"Writer": {"dynamodb:PutItem": 2}}
    assert reading.dynamodb_write_units == 2.0
    assert reading.sqs_requests == {}  # the poller's receive and delete are its own
    # The poller's delete of the message it handed over; its long poll may have begun before the reset, so its
    # ReceiveMessage is counted when that poll started, not necessarily in this reading.
    assert reading.poller_calls.get("sqs:DeleteMessageBatch", 0) + reading.poller_calls.get("sqs:DeleteMessage", 0) >= 1
    assert set(reading.poller_calls) <= {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:DeleteMessageBatch",
        "sqs:ChangeMessageVisibility",
        "sqs:ChangeMessageVisibilityBatch",
    }
    use = reading.lambda_functions["Writer"]
    assert (use.invocations, use.memory_mb, use.architecture) == (2, 256, "arm64")
    assert use.billed_ms >= use.duration_ms > 0
    assert use.log_bytes >= 2 * len("wrote one item\n")


def test_stored_bytes_cover_the_deployed_tables(cloud: LocalCloud) -> None:
    assert cloud.meter is not None

    stored = cloud.meter.reading().dynamodb_stored_bytes

    # the items written by the test above: "pk" (2) + a request id (36) + 100 each
    assert set(stored) == {"metered"} and stored["metered"] % (2 + 36 + 100) == 0
