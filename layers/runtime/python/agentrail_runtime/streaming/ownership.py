"""What the streaming tables share: every item carries its ``owner``, and erasure deletes by owner."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentrail_runtime.contract import STREAM_OWNER_ATTRIBUTE


def erase_owned(dynamodb: Any, table_name: str, principal: str, keys: Iterable[dict[str, Any]]) -> int:
    """Delete each item of ``keys`` (read from a keys-only ``by_owner`` index) that ``principal`` owns; how many
    existed and were deleted. Each delete is conditional on the owner, so a key a stale index entry lists is never
    someone else's item, and one already gone counts zero: a second erasure reports 0."""
    deleted = 0
    for key in list(keys):
        try:  # the condition holds only on an item that exists: a delete that passes deleted one
            dynamodb.delete_item(
                TableName=table_name,
                Key=key,
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": STREAM_OWNER_ATTRIBUTE},
                ExpressionAttributeValues={":owner": {"S": principal}},
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            continue  # gone already (the index lags the table), or never the principal's
        deleted += 1
    return deleted


__all__ = ["erase_owned"]
