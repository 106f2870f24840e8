"""Turns too large for one DynamoDB item live in S3; the item keeps a pointer."""

from __future__ import annotations

from typing import Any

from agentrail_runtime.aws import S3Payloads


class S3TurnOffload(S3Payloads):
    """Stores oversized turn payloads under ``<prefix><session_id>/<turn>.json`` (bucket encryption applies).

    Parameters
    ----------
    bucket:
        Bucket name.
    client:
        An S3 client; created on first use by default.
    """

    def __init__(self, bucket: str, *, client: Any = None, prefix: str = "sessions/") -> None:
        super().__init__(bucket, client=client)
        self.prefix = prefix

    def put_turn(self, session_id: str, number: int, payload: str) -> str:
        return self.put(f"{self.prefix}{session_id}/{number:010d}.json", payload)

    def delete_session(self, session_id: str) -> int:
        return self.delete_prefix(f"{self.prefix}{session_id}/")
