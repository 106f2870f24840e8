"""LazyClient: a boto3 client made on first use, or the one injected."""

from __future__ import annotations

import boto3

from agentrail_runtime.aws import LazyClient


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
