"""DynamoDB's on-demand request units of one request and a table's billed storage, read from moto's tables in this process.

Item sizes follow DynamoDB's rules (``CapacityUnitCalculations`` in the developer guide): attribute names and values in
UTF-8 bytes, a number 1 byte per two significant digits plus 1, binary its raw bytes, null and Boolean 1 byte, a list or
map 3 bytes plus 1 per element. moto's ``Item.size()`` does not follow them (it counts a number's characters, no list or
map overhead), so it is not used.

Writes: ``ceil(max(size before, size after) / 1 KB)``, at least 1 (a failed condition too), doubled in
``TransactWriteItems`` (a ``ConditionCheck`` included); each global secondary index the item is in, before or after,
adds its projected item's units: none when the projection did not change, ``ceil(projected / 1 KB)`` when the item moves
in or out or changes in place, both sides when the index key changed (a delete and a put). Reads: ``ceil(size / 4 KB)``,
at least 1, halved when eventually consistent (the default), doubled in ``TransactGetItems``; ``Query`` and ``Scan`` sum
the sizes of the items read before any ``FilterExpression`` or projection (an index query reads projected items), per page.

Sizes before a write are read from moto's table just before moto handles the request and after it just after, in the
same thread: two concurrent writes to the same item may see each other's result (a rare overcount).
"""

from __future__ import annotations

import base64
import json
import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from agentrail_local.account import ACCOUNT_ID, REGION

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024
#: DynamoDB bills 100 bytes of storage per item (and per index entry) for its indexing.
ITEM_OVERHEAD_BYTES = 100
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_READS = {"GetItem", "BatchGetItem", "TransactGetItems"}
_SCANS = {"Query", "Scan"}
_collecting = threading.local()
_original_query = Table.query
_original_scan = Table.scan


def _number_size(text: str) -> int:
    digits = "".join(c for c in text.lower().split("e")[0] if c.isdigit()).strip("0")
    return math.ceil(len(digits) / 2) + 1


def _binary_size(raw: Any) -> int:
    if isinstance(raw, bytes):
        return len(raw)
    try:
        return len(base64.b64decode(str(raw), validate=True))
    except ValueError:
        return len(str(raw).encode())


def value_size(value: DynamoType | Mapping[str, Any]) -> int:
    """Bytes of one attribute value (moto's ``DynamoType`` or the wire's ``{"S": "..."}``), its name not included."""
    if isinstance(value, DynamoType):
        kind, raw = value.type, value.value
    else:
        ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        return _number_size(str(raw))
    if kind == "B":
        return _binary_size(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in raw)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in raw)
    if kind == "BS":
        return sum(_binary_size(v) for v in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(str(k).encode()) + value_size(v) for k, v in raw.items())
    return len(json.dumps(raw, default=str).encode())


def item_size(attributes: Mapping[str, Any]) -> int:
    """Bytes of an item: each attribute's name and value."""
    return sum(len(name.encode()) + value_size(value) for name, value in attributes.items())


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


@dataclass(frozen=True)
class _Footprint:
    """An item as a write sees it: its size, and per global secondary index it is in: projected size, content, key."""

    size: int
    indexes: Mapping[str, tuple[int, str, str]]


def _backend() -> Any:
    return dynamodb_backends[ACCOUNT_ID][REGION]


def _table(name: str) -> Table | None:
    try:
        return _backend().get_table(name.rsplit("/", 1)[-1] if name.startswith("arn:") else name)
    except Exception:  # no such table: the request fails, and bills as an item of size 0
        return None


def _lookup(table: Table, attributes: Mapping[str, Any]) -> Item | None:
    hash_value = attributes.get(table.hash_key_attr)
    range_value = attributes.get(table.range_key_attr) if table.range_key_attr else None
    if hash_value is None or (table.range_key_attr and range_value is None):
        return None
    try:
        return table.get_item(DynamoType(hash_value), DynamoType(range_value) if range_value is not None else None)
    except Exception:  # a key of the wrong type: moto answers the validation error
        return None


def _json(item: Item, names: Iterable[str] | None = None) -> str:
    chosen = item.attrs if names is None else {n: item.attrs[n] for n in names if n in item.attrs}
    return json.dumps({k: v.to_json() for k, v in chosen.items()}, sort_keys=True, default=str)


def _footprint(table: Table | None, attributes: Mapping[str, Any]) -> _Footprint | None:
    item = _lookup(table, attributes) if table is not None else None
    if item is None or table is None:
        return None
    indexes = {}
    for index in table.global_indexes:
        if all(key in item.attrs for key in index.schema_key_attrs):
            projected = index.project(item)
            indexes[index.name] = (item_size(projected.attrs), _json(projected), _json(item, index.schema_key_attrs))
    return _Footprint(item_size(item.attrs), indexes)


def _index_units(before: _Footprint | None, after: _Footprint | None) -> int:
    was = before.indexes if before else {}
    now = after.indexes if after else {}
    units = 0
    for name in set(was) | set(now):
        old, new = was.get(name), now.get(name)
        if old is not None and new is not None:
            if old[1] == new[1]:
                continue
            units += (
                _units(max(old[0], new[0]), WRITE_UNIT_BYTES)
                if old[2] == new[2]
                else _units(old[0], WRITE_UNIT_BYTES) + _units(new[0], WRITE_UNIT_BYTES)
            )
        else:
            units += _units((old or new)[0], WRITE_UNIT_BYTES)  # type: ignore[index]
    return units


def _written(operation: str, params: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], int]]:
    """(table, key or item, multiplier) of each item a write request touches."""
    if operation == "PutItem":
        yield str(params.get("TableName", "")), params.get("Item") or {}, 1
    elif operation in ("UpdateItem", "DeleteItem"):
        yield str(params.get("TableName", "")), params.get("Key") or {}, 1
    elif operation == "BatchWriteItem":
        for table, requests in (params.get("RequestItems") or {}).items():
            for request in requests:
                put, delete = request.get("PutRequest"), request.get("DeleteRequest")
                yield table, (put or {}).get("Item") or (delete or {}).get("Key") or {}, 1
    elif operation == "TransactWriteItems":
        for entry in params.get("TransactItems") or []:
            for spec in entry.values():
                yield str(spec.get("TableName", "")), spec.get("Item") or spec.get("Key") or {}, 2


def _read(operation: str, params: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], float]]:
    """(table, key, units per 4 KB) of each item a read request reads."""
    if operation == "GetItem":
        yield str(params.get("TableName", "")), params.get("Key") or {}, 1.0 if params.get("ConsistentRead") else 0.5
    elif operation == "BatchGetItem":
        for table, spec in (params.get("RequestItems") or {}).items():
            for key in spec.get("Keys") or []:
                yield table, key, 1.0 if spec.get("ConsistentRead") else 0.5
    elif operation == "TransactGetItems":
        for entry in params.get("TransactItems") or []:
            spec = entry.get("Get") or {}
            yield str(spec.get("TableName", "")), spec.get("Key") or {}, 2.0


class RequestCapacity:
    """The read and write units of one DynamoDB request: :meth:`before` moto handles it, :meth:`after` it did."""

    def __init__(self, operation: str, params: Mapping[str, Any]) -> None:
        self.operation = operation
        self.params = params
        self._before: list[tuple[Table | None, Mapping[str, Any], int, _Footprint | None]] = []

    def before(self) -> None:
        if self.operation in _WRITES:
            for name, attributes, factor in _written(self.operation, self.params):
                table = _table(name)
                self._before.append((table, attributes, factor, _footprint(table, attributes)))
        elif self.operation in _SCANS:
            _collecting.sizes = []

    def after(self) -> tuple[float, float]:
        """(read units, write units)."""
        if self.operation in _WRITES:
            write = 0
            for table, attributes, factor, was in self._before:
                now = _footprint(table, attributes)
                size = max(was.size if was else 0, now.size if now else 0)
                write += factor * (_units(size, WRITE_UNIT_BYTES) + _index_units(was, now))
            return 0.0, float(write)
        if self.operation in _READS:
            read = 0.0
            for name, key, per_unit in _read(self.operation, self.params):
                table = _table(name)
                item = _lookup(table, key) if table is not None else None
                read += per_unit * _units(item_size(item.attrs) if item else 0, READ_UNIT_BYTES)
            return read, 0.0
        if self.operation in _SCANS:
            sizes: list[int] = getattr(_collecting, "sizes", None) or []
            _collecting.sizes = None
            per_unit = 1.0 if self.params.get("ConsistentRead") else 0.5
            return per_unit * _units(sum(sizes), READ_UNIT_BYTES), 0.0
        return 0.0, 0.0


def _query(table: Table, *args: Any, **kwargs: Any) -> Any:
    """moto's ``Table.query``, with the items read before the filter and projection counted for the request."""
    sizes = getattr(_collecting, "sizes", None)
    if sizes is None:
        return _original_query(table, *args, **kwargs)
    names = ("projection_expressions", "index_name", "consistent_read", "filter_expression")
    options = dict(zip(names, args[6:10], strict=False)) | kwargs
    projection, condition = options.pop("projection_expressions", None), options.pop("filter_expression", None)
    query: Any = _original_query
    results, scanned, last_key = query(table, *args[:6], projection_expressions=None, filter_expression=None, **options)
    return _filtered(sizes, results, condition, projection), scanned, last_key


def _scan(table: Table, *args: Any, **kwargs: Any) -> Any:
    """moto's ``Table.scan``, counted as :func:`_query` is."""
    sizes = getattr(_collecting, "sizes", None)
    if sizes is None:
        return _original_scan(table, *args, **kwargs)
    names = ("filter_expression", "index_name", "consistent_read", "projection_expression", "segments")
    options = dict(zip(names, args[3:8], strict=False)) | kwargs
    projection, condition = options.pop("projection_expression", None), options.pop("filter_expression", None)
    scan: Any = _original_scan
    results, scanned, last_key = scan(table, *args[:3], **options)
    return _filtered(sizes, results, condition, projection), scanned, last_key


def _filtered(sizes: list[int], results: list[Item], condition: Any, projection: Any) -> list[Item]:
    """What moto's query and scan end with: the filter expression, then the projection (after the sizes are taken)."""
    sizes.extend(item_size(item.attrs) for item in results)
    if condition is not None:
        results = [item for item in results if condition.expr(item)]
    if projection:
        results = [item.project(projection) for item in results]
    return results


def install_scan_seam(enabled: bool) -> None:
    """Count the items ``Query`` and ``Scan`` read (a pass-through outside a metered request)."""
    Table.query = _query if enabled else _original_query  # type: ignore[method-assign,assignment]
    Table.scan = _scan if enabled else _original_scan  # type: ignore[method-assign,assignment]


def stored_bytes(table_name: str) -> int | None:
    """Billed storage of a table now: each item's size plus 100 bytes, and each global secondary index entry's; None
    when moto has no such table."""
    table = _table(table_name)
    if table is None:
        return None
    for _ in range(5):
        try:
            items = list(table.all_items())
            break
        except RuntimeError:  # a write changed the table's dict while it was read: read again
            continue
    else:
        return None
    total = sum(item_size(item.attrs) + ITEM_OVERHEAD_BYTES for item in items)
    for index in table.global_indexes:
        for item in items:
            if all(key in item.attrs for key in index.schema_key_attrs):
                total += item_size(index.project(item).attrs) + ITEM_OVERHEAD_BYTES
    return total


def is_metered(operation: str) -> bool:
    return operation in _WRITES or operation in _READS or operation in _SCANS


__all__ = [
    "ITEM_OVERHEAD_BYTES",
    "READ_UNIT_BYTES",
    "WRITE_UNIT_BYTES",
    "RequestCapacity",
    "install_scan_seam",
    "is_metered",
    "item_size",
    "stored_bytes",
    "value_size",
]
