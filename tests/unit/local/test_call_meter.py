"""The call meter counts what functions and workflows use, as AWS bills it, against a real moto server.

The functions here are boto3 clients tagged the way local mode tags a function's SDK (its User-Agent app id); local
mode's own clients (:class:`MotoClients`) and the SQS pollers' are tagged otherwise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from agentrail_local.awslambda.definitions import FunctionDefinition, InvocationResult
from agentrail_local.awslambda.moto_seam import MotoClients, MotoServer
from agentrail_local.awslambda.observers import POLLER_APP_ID, function_app_id
from agentrail_local.dynamodb_capacity import item_size, stored_bytes, value_size
from agentrail_local.metering import CallMeter

FUNCTION = FunctionDefinition(
    stack_name="Stack",
    logical_id="Worker",
    name="Stack-Worker-1",
    arn="arn:aws:lambda:us-east-1:123456789012:function:Stack-Worker-1",
    handler="index.handler",
    runtime="python3.13",
    code_dir=Path("."),
    memory_size=512,
    architecture="arm64",
)
BODY_1497 = {"pk": {"S": "a"}, "body": {"S": "x" * 1490}}  # (2 + 1) + (4 + 1490) = 1497 bytes


class Moto:
    def __init__(self, meter: CallMeter, server: MotoServer) -> None:
        self.meter = meter
        self.endpoint = server.endpoint_url
        self.local = MotoClients(server.endpoint_url)

    def client(self, service: str, app_id: str = function_app_id(FUNCTION.name)) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(user_agent_appid=app_id),  # type: ignore[call-arg]
        )

    def reading(self) -> Any:
        return self.meter.reading()


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    meter = CallMeter()
    server = MotoServer(middleware=meter.middleware).start()
    try:
        meter.function_added("Worker", FUNCTION)
        meter.watch(server.endpoint_url, [])
        moto = Moto(meter, server)
        dynamodb = moto.local("dynamodb")
        dynamodb.create_table(
            TableName="Items",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-owner",
                    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.create_table(
            TableName="Pairs",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield moto
    finally:
        server.stop()
        meter.close()


@pytest.fixture
def meter(moto: Moto) -> CallMeter:
    moto.meter.reset()
    return moto.meter


# -- item sizes ------------------------------------------------------------------------------------------------------------


def test_item_sizes_follow_dynamodbs_rules_for_names_strings_numbers_lists_and_maps() -> None:
    # "12345": 5 significant digits -> ceil(5 / 2) + 1 = 4; "-0.0100": digits "1" -> 1 + 1 = 2.
    assert value_size({"N": "12345"}) == 4
    assert value_size({"N": "-0.0100"}) == 2
    # a list: 3 + per element (1 + its size): 3 + (1 + 2) + (1 + 1) = 8
    assert value_size({"L": [{"S": "ab"}, {"BOOL": True}]}) == 8
    # a map: 3 + per entry (1 + name + value): 3 + (1 + 1 + 2) = 7
    assert value_size({"M": {"k": {"S": "ab"}}}) == 7
    assert value_size({"B": "aGVsbG8="}) == 5  # base64 of "hello": its raw bytes count
    assert item_size(BODY_1497) == 1497


# -- DynamoDB request units -------------------------------------------------------------------------------------------------


def test_put_item_of_1497_bytes_costs_two_write_units(moto: Moto, meter: CallMeter) -> None:
    moto.client("dynamodb").put_item(TableName="Pairs", Item={**BODY_1497, "sk": {"S": "1"}})

    reading = meter.reading()

    # (2 + 1) + (4 + 1490) + (2 + 1) = 1500 bytes -> ceil(1500 / 1024) = 2
    assert reading.dynamodb_write_units == 2.0
    assert reading.calls == {"dynamodb:PutItem": 1}
    assert reading.calls_by_function == {"Worker": {"dynamodb:PutItem": 1}}


def test_update_item_bills_the_larger_of_the_item_before_and_after(moto: Moto, meter: CallMeter) -> None:
    moto.local("dynamodb").put_item(TableName="Pairs", Item={**BODY_1497, "sk": {"S": "2"}})
    meter.reset()
    dynamodb = moto.client("dynamodb")

    dynamodb.update_item(
        TableName="Pairs",
        Key={"pk": {"S": "a"}, "sk": {"S": "2"}},
        UpdateExpression="SET body = :b",
        ExpressionAttributeValues={":b": {"S": "x"}},
    )

    # before 1500 bytes, after 3 + 5 + 3 = 11 bytes: max 1500 -> 2 units
    assert meter.reading().dynamodb_write_units == 2.0


def test_a_failed_condition_still_costs_a_write_unit(moto: Moto, meter: CallMeter) -> None:
    dynamodb = moto.client("dynamodb")

    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(TableName="Items", Item={"pk": {"S": "absent"}}, ConditionExpression="attribute_exists(pk)")

    assert meter.reading().dynamodb_write_units == 1.0


def test_get_item_costs_half_a_unit_per_4_kb_eventually_and_a_whole_one_strongly(moto: Moto, meter: CallMeter) -> None:
    moto.local("dynamodb").put_item(TableName="Items", Item={"pk": {"S": "big"}, "body": {"S": "y" * 5000}})
    meter.reset()
    dynamodb = moto.client("dynamodb")

    dynamodb.get_item(TableName="Items", Key={"pk": {"S": "big"}}, ProjectionExpression="pk")
    eventual = meter.reading().dynamodb_read_units
    dynamodb.get_item(TableName="Items", Key={"pk": {"S": "big"}}, ConsistentRead=True)
    dynamodb.get_item(TableName="Items", Key={"pk": {"S": "missing"}})

    # (2 + 3) + (4 + 5000) = 5009 bytes -> 2 x 4 KB; the projection does not shrink what is read
    assert eventual == 1.0  # 2 x 0.5
    assert meter.reading().dynamodb_read_units == 1.0 + 2.0 + 0.5  # strong: 2 x 1; a missing item: 0.5


def test_query_bills_the_items_read_before_the_filter_per_4_kb(moto: Moto, meter: CallMeter) -> None:
    for sk in ("q1", "q2", "q3"):
        moto.local("dynamodb").put_item(TableName="Pairs", Item={"pk": {"S": "q"}, "sk": {"S": sk}, "body": {"S": "z" * 1490}})
    meter.reset()

    found = moto.client("dynamodb").query(
        TableName="Pairs",
        KeyConditionExpression="pk = :p",
        FilterExpression="body = :none",
        ExpressionAttributeValues={":p": {"S": "q"}, ":none": {"S": "no"}},
    )

    # each item (2 + 1) + (2 + 2) + (4 + 1490) = 1501 bytes; 3 read -> 4503 bytes -> 2 x 4 KB x 0.5
    assert (found["Count"], found["ScannedCount"]) == (0, 3)
    assert meter.reading().dynamodb_read_units == 1.0


def test_transact_write_items_cost_twice_per_item_a_condition_check_included(moto: Moto, meter: CallMeter) -> None:
    moto.local("dynamodb").put_item(TableName="Pairs", Item={**BODY_1497, "sk": {"S": "t"}})
    meter.reset()

    moto.client("dynamodb").transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "Items", "Item": {"pk": {"S": "new"}}}},
            {
                "ConditionCheck": {
                    "TableName": "Pairs",
                    "Key": {"pk": {"S": "a"}, "sk": {"S": "t"}},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ]
    )

    # the put: 2 x ceil(6 / 1024) = 2; the check of a 1500-byte item: 2 x 2 = 4
    assert meter.reading().dynamodb_write_units == 6.0


def test_a_write_to_an_item_in_a_global_secondary_index_also_writes_the_index(moto: Moto, meter: CallMeter) -> None:
    dynamodb = moto.client("dynamodb")

    dynamodb.put_item(TableName="Items", Item={"pk": {"S": "g"}, "owner": {"S": "ann"}})
    after_put = meter.reading().dynamodb_write_units
    dynamodb.update_item(
        TableName="Items", Key={"pk": {"S": "g"}}, UpdateExpression="SET note = :n", ExpressionAttributeValues={":n": {"S": "hi"}}
    )
    after_unprojected_update = meter.reading().dynamodb_write_units
    dynamodb.update_item(
        TableName="Items", Key={"pk": {"S": "g"}}, UpdateExpression="REMOVE #o", ExpressionAttributeNames={"#o": "owner"}
    )

    assert after_put == 2.0  # the table (12 bytes) 1 + the index's new entry 1
    assert after_unprojected_update == 2.0 + 1.0  # KEYS_ONLY: the note changes no index entry
    assert meter.reading().dynamodb_write_units == 3.0 + 2.0  # the table 1 + the index entry removed 1


def test_local_modes_own_calls_are_not_metered(moto: Moto, meter: CallMeter) -> None:
    moto.local("dynamodb").put_item(TableName="Items", Item={"pk": {"S": "mine"}})
    moto.local("dynamodb").get_item(TableName="Items", Key={"pk": {"S": "mine"}})
    moto.client("dynamodb", app_id="someone-else").get_item(TableName="Items", Key={"pk": {"S": "mine"}})

    reading = meter.reading()

    assert reading.calls == {}
    assert (reading.dynamodb_read_units, reading.dynamodb_write_units) == (0.0, 0.0)


def test_stored_bytes_are_item_sizes_plus_100_each_and_the_index_entries(moto: Moto) -> None:
    dynamodb = moto.local("dynamodb")
    dynamodb.create_table(
        TableName="Stored",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "owner", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-owner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="Stored", Item={"pk": {"S": "a"}, "owner": {"S": "ann"}, "body": {"S": "x" * 10}})
    dynamodb.put_item(TableName="Stored", Item={"pk": {"S": "b"}})

    # items: (3 + 8 + 14) + 100 and 3 + 100; the index entry (KEYS_ONLY: pk and owner) 3 + 8 + 100
    assert stored_bytes("Stored") == 125 + 103 + 111


# -- SQS, EventBridge, pollers ------------------------------------------------------------------------------------------------


def test_sqs_requests_are_counted_in_64_kb_chunks_per_queue_type(moto: Moto, meter: CallMeter) -> None:
    standard = moto.local("sqs").create_queue(QueueName="jobs")["QueueUrl"]
    fifo = moto.local("sqs").create_queue(
        QueueName="turns.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    sqs = moto.client("sqs")

    sqs.send_message_batch(QueueUrl=standard, Entries=[{"Id": str(i), "MessageBody": "small"} for i in range(3)])
    sqs.send_message(QueueUrl=standard, MessageBody="b" * 100_000)  # 100,000 bytes -> 2 chunks
    sqs.send_message(QueueUrl=fifo, MessageBody="turn", MessageGroupId="s1")

    reading = meter.reading()

    assert reading.sqs_requests == {"standard": 1 + 2, "fifo": 1}
    assert reading.calls == {"sqs:SendMessageBatch": 1, "sqs:SendMessage": 2}


def test_a_pollers_calls_are_counted_apart_from_the_functions(moto: Moto, meter: CallMeter) -> None:
    queue = moto.local("sqs").create_queue(QueueName="polled")["QueueUrl"]

    moto.client("sqs", app_id=POLLER_APP_ID).receive_message(QueueUrl=queue, WaitTimeSeconds=0)

    reading = meter.reading()
    assert reading.poller_calls == {"sqs:ReceiveMessage": 1}
    assert reading.calls == {} and reading.sqs_requests == {}


def test_put_events_counts_each_entry_in_64_kb_chunks(moto: Moto, meter: CallMeter) -> None:
    events = moto.client("events")
    small = {"Source": "app", "DetailType": "done", "Detail": json.dumps({"id": 1})}

    events.put_events(Entries=[small, small])
    events.put_events(Entries=[{**small, "Detail": json.dumps({"blob": "e" * 70_000})}])  # over 64 KB: 2 chunks

    reading = meter.reading()
    assert reading.eventbridge_events == 2 + 2
    assert reading.calls == {"events:PutEvents": 2}


# -- Step Functions -------------------------------------------------------------------------------------------------------------


def test_a_workflows_service_integration_calls_and_transitions_are_counted(moto: Moto, meter: CallMeter) -> None:
    definition = {
        "StartAt": "Save",
        "States": {
            "Save": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {"TableName": "Items", "Item": {"pk": {"S": "from-workflow"}}},
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    sfn = moto.local("stepfunctions")
    machine = sfn.create_state_machine(
        name="saver", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    meter.reset()

    execution = moto.client("stepfunctions").start_execution(stateMachineArn=machine, name="run-1")["executionArn"]
    deadline = time.monotonic() + 20
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)

    reading = meter.reading()
    assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
    assert reading.integration_calls == {"dynamodb:PutItem": 1}
    assert reading.calls == {"states:StartExecution": 1, "dynamodb:PutItem": 1}
    assert reading.dynamodb_write_units == 1.0
    assert (reading.sfn_executions, reading.sfn_transitions) == (1, 2)  # TaskStateEntered, SucceedStateEntered


# -- Lambda, gateways, reset ---------------------------------------------------------------------------------------------------


def test_invocations_are_summed_per_function_with_billed_milliseconds_rounded_up(meter: CallMeter) -> None:
    meter.invoking("Worker")
    meter.invoked("Worker", InvocationResult("r1", b"{}", handler_ms=10.2))
    meter.invoking("Worker")
    meter.invoked("Worker", InvocationResult("r2", b"{}", handler_ms=0.4))
    meter.invoking("Worker")
    meter.invoked("Worker", None)  # throttled: not an invocation
    meter.logged("Worker", 120)

    use = meter.reading().lambda_functions["Worker"]

    assert (use.invocations, use.duration_ms, use.billed_ms) == (2, 10.6, 11 + 1)
    assert (use.memory_mb, use.architecture, use.log_bytes) == (512, "arm64", 120)


def test_websocket_messages_are_counted_in_32_kb_chunks_and_api_requests_per_api(meter: CallMeter) -> None:
    meter.websocket_frames(10)
    meter.websocket_frames(40_000)  # 2 chunks
    meter.api_request("Api")
    meter.api_request("Api")

    reading = meter.reading()

    assert (reading.websocket_messages, reading.api_requests) == (3, {"Api": 2})


def test_reset_zeroes_every_count_and_the_reading_is_json(moto: Moto, meter: CallMeter) -> None:
    moto.client("dynamodb").put_item(TableName="Items", Item={"pk": {"S": "r"}})
    meter.api_request("Api")
    meter.invoking("Worker")
    meter.invoked("Worker", InvocationResult("r", b"{}", handler_ms=3.0))

    meter.reset()
    reading = meter.reading()

    assert reading.calls == {} and reading.api_requests == {} and reading.dynamodb_write_units == 0.0
    assert reading.lambda_functions["Worker"].invocations == 0
    assert json.loads(json.dumps(reading.as_dict()))["lambda_functions"]["Worker"]["memory_mb"] == 512
