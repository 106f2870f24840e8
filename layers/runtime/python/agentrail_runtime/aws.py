"""AWS clients made on first use, so a cold start builds only the clients its invocation needs."""

from __future__ import annotations

from typing import Any


class LazyClient:
    """A class attribute holding a boto3 client: ``sqs = LazyClient("sqs")``.

    The client is created on first read. Assigning one (a moto-backed client in tests) injects it;
    assigning ``None`` keeps the default.
    """

    def __init__(self, service: str) -> None:
        self.service = service

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = f"_{name}_client"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        client = instance.__dict__.get(self.attribute)
        if client is None:
            import boto3

            client = instance.__dict__[self.attribute] = boto3.client(self.service)
        return client

    def __set__(self, instance: Any, client: Any) -> None:
        instance.__dict__[self.attribute] = client


class S3Payloads:
    """JSON payloads too large for a DynamoDB item, kept in S3 (bucket encryption applies); the item keeps the key."""

    client = LazyClient("s3")

    def __init__(self, bucket: str, *, client: Any = None) -> None:
        self.bucket = bucket
        self.client = client

    def put(self, key: str, payload: str) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=payload.encode(), ContentType="application/json")
        return key

    def get(self, key: str) -> str:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()

    def delete_prefix(self, prefix: str) -> int:
        """Delete every payload under ``prefix``; the number deleted."""
        deleted = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted
