"""Turns too large for one DynamoDB item live in S3; the item keeps a pointer."""

from __future__ import annotations

from typing import Any


class S3TurnOffload:
    """Stores oversized turn payloads under ``<prefix><session_id>/<turn>.json`` (bucket encryption applies).

    Parameters
    ----------
    bucket:
        Bucket name.
    client:
        An S3 client; created on first use by default.
    """

    def __init__(self, bucket: str, *, client: Any = None, prefix: str = "sessions/") -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def key(self, session_id: str, number: int) -> str:
        return f"{self.prefix}{session_id}/{number:010d}.json"

    def put(self, session_id: str, number: int, payload: str) -> str:
        key = self.key(session_id, number)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=payload.encode(), ContentType="application/json")
        return key

    def get(self, key: str) -> str:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()

    def delete_session(self, session_id: str) -> int:
        deleted = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{session_id}/"):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted
