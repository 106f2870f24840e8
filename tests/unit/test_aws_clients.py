"""One way to make an AWS client: ``aws.client`` with one retry configuration, and LazyClient on top of it."""

from __future__ import annotations

import boto3

from agentrail_runtime import aws
from agentrail_runtime.aws import LazyClient
from agentrail_runtime.models.bedrock import client_config


class Holder:
    sqs = LazyClient("sqs")

    def __init__(self, client: object = None) -> None:
        self.sqs = client


def test_an_injected_client_is_the_one_used():
    injected = boto3.client("sqs", region_name="us-east-1")

    assert Holder(injected).sqs is injected


def test_without_one_a_client_of_the_service_is_made_once_per_instance():
    first, second = Holder(), Holder()

    assert "_sqs_client" in first.__dict__ and first.__dict__["_sqs_client"] is None  # nothing built yet
    client = first.sqs
    assert client.meta.service_model.service_name == "sqs"
    assert first.sqs is client
    assert second.sqs is not client


def test_the_class_attribute_is_the_descriptor():
    assert isinstance(Holder.sqs, LazyClient)
    assert Holder.sqs.service == "sqs"


def test_every_client_gets_the_standard_retry_mode_with_three_retries():
    # given / when: a client of a service, made the runtime's one way
    made = aws.client("dynamodb")

    # then: botocore retries with the standard policy, three retries after the first attempt
    assert made.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert Holder().sqs.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}


def test_a_resource_gets_the_same_retry_configuration():
    table = aws.resource("dynamodb").Table("any")

    assert table.meta.client.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}


def test_a_callers_config_is_merged_over_the_default_and_its_options_win():
    # given: Bedrock's config, one attempt per call (its Retrier owns retries) and its own read timeout
    bedrock = client_config(read_timeout=17.0)

    # when
    made = aws.client("bedrock-runtime", config=bedrock)

    # then: its timeout and retries hold, and the shared default is untouched
    assert made.meta.config.read_timeout == 17.0
    assert made.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert aws.RETRIES.read_timeout == 60
