"""Daily budgets per tenant and per agent, enforced with atomic DynamoDB counters keyed by UTC day.

Around every model call a budget check costs at most one DynamoDB call before it and one after:

- **reserve** (before): one ``UpdateItem`` (one counter) or one ``TransactWriteItems`` (a tenant's and an agent's
  counter) that ADDs the call's worst case, the estimated input tokens plus its output cap (priced for USD), under
  a condition that the counter stays within its limit. Two requests racing for the last of a budget both send
  their reserve; DynamoDB applies one, and the other's condition fails: it is refused, nothing is lost.
- **settle** (after): one unconditional write that ADDs what the call really used minus what was reserved (none
  when they are equal). A call that fails gives its reservation back the same way.

A counter's item is ``pk = "<per>#<name>#<YYYY-MM-DD>"`` (``tenant#iam:arn:...#2026-12-06``) with ``tokens``,
``usd`` and ``expires_at``, the TTL attribute: a few days after its day ends (see
:data:`~agentrail_runtime.contract.BUDGET_COUNTER_RETENTION_DAYS`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from agentrail_runtime import aws
from agentrail_runtime.clock import Clock, now
from agentrail_runtime.contract import (
    BUDGET_COUNTER_RETENTION_DAYS,
    BudgetLimit,
    BudgetPer,
    BudgetUnit,
)
from agentrail_runtime.metering.pricing import PriceTable
from agentrail_runtime.models.base import Usage
from agentrail_runtime.observability import logger

__all__ = [
    "BudgetExceeded",
    "BudgetGuard",
    "BudgetRefusal",
    "BudgetSpend",
    "DailyBudgets",
    "Reservation",
    "counter_key",
    "seconds_to_next_utc_midnight",
    "utc_day",
]

_DAY = 86_400


def utc_day(at: float) -> str:
    """The UTC calendar day of ``at`` (seconds since the epoch): ``2026-12-06``."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d")


def seconds_to_next_utc_midnight(at: float) -> int:
    """Whole seconds from ``at`` to the next UTC midnight, rounded up: 1 at 23:59:59, 86,400 at 00:00:00."""
    return _DAY - int(at) % _DAY


def counter_key(per: str, name: str, day: str) -> str:
    """The counter of ``name`` (a tenant's principal or an agent's name) for one UTC ``day``."""
    return f"{per}#{name}#{day}"


class BudgetRefusal(BaseModel):
    """The daily budget that refused a model call, as the API's 429 and a task's error name it."""

    per: BudgetPer
    name: str = Field(description="The tenant (principal) or the agent the budget is for")
    unit: BudgetUnit
    limit: float
    day: str = Field(description="The UTC day (YYYY-MM-DD) whose budget is spent")
    retry_after_seconds: int = Field(description="Seconds to the next UTC midnight, when the budget starts again")
    #: Model calls the run made before it was refused: 0 means the request did not start (the API answers 429).
    calls_before: int = 0

    @property
    def sentence(self) -> str:
        limit = f"{self.limit:g} USD" if self.unit == "usd" else f"{int(self.limit):,} tokens"
        return f"The daily budget of {limit} per {self.per} is spent for {self.day} (UTC); it starts again at midnight UTC."


class BudgetExceeded(Exception):
    """A model call would cross a daily budget; ``refusal`` names it."""

    def __init__(self, refusal: BudgetRefusal) -> None:
        super().__init__(refusal.sentence)
        self.refusal = refusal


class BudgetSpend(BaseModel):
    """What one counter holds today, against its limits."""

    per: BudgetPer
    name: str
    day: str
    tokens: int
    usd: float
    limits: dict[BudgetUnit, float]


@dataclass(frozen=True)
class Reservation:
    """What a reserve added to each counter; :meth:`BudgetGuard.settle` corrects it to what was used."""

    keys: tuple[str, ...]
    model: str
    tokens: int
    usd: Decimal


def _usd(value: float | None) -> Decimal:
    return Decimal(str(round(value or 0.0, 8)))


def _number(value: Decimal | int) -> dict[str, str]:
    """A DynamoDB number in plain notation (``format(Decimal("0E-8"), "f")`` is ``0.00000000``)."""
    return {"N": format(value, "f") if isinstance(value, Decimal) else str(value)}


class DailyBudgets:
    """The daily budgets of a function, over their counters table.

    Parameters
    ----------
    table:
        The counters table (``AGENT_BUDGET_TABLE``): partition key ``pk`` (string), TTL attribute ``expires_at``.
    budgets:
        At most one per (per, unit), as :func:`~agentrail_runtime.contract.budgets_from_env` reads them.
    prices:
        Prices the USD budgets; a model without a price reserves and spends no USD (it is logged).
    """

    def __init__(
        self,
        table: str,
        budgets: Sequence[BudgetLimit],
        *,
        prices: PriceTable | None = None,
        client: Any = None,
        clock: Clock = now,
        retention_days: int = BUDGET_COUNTER_RETENTION_DAYS,
    ) -> None:
        self.table = table
        self.budgets = tuple(budgets)
        self.prices = prices or PriceTable()
        self._client = client
        self._clock = clock
        self.retention_days = retention_days

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def limits(self, per: str) -> dict[BudgetUnit, float]:
        """The limits that apply to each ``per`` (tenant or agent), by unit."""
        return {b.unit: b.limit for b in self.budgets if b.per == per}

    @property
    def per_tenant(self) -> bool:
        return bool(self.limits("tenant"))

    def guard(self, *, tenant: str | None, agent: str) -> BudgetGuard | None:
        """The checks of one run: the tenant's budgets (when a tenant is known) and the agent's; ``None`` when
        none applies."""
        owners = [(per, name) for per, name in (("tenant", tenant), ("agent", agent)) if name and self.limits(per)]
        return BudgetGuard(self, owners) if owners else None  # type: ignore[arg-type]

    def spend(self, *, tenant: str | None, agent: str) -> list[BudgetSpend]:
        """Today's counters of ``tenant`` and ``agent`` (one ``GetItem`` each), for the budgets that apply."""
        day = utc_day(self._clock())
        spent = []
        for per, name in (("tenant", tenant), ("agent", agent)):
            limits = self.limits(per)
            if not name or not limits:
                continue
            item = self.client.get_item(
                TableName=self.table, Key={"pk": {"S": counter_key(per, name, day)}}, ConsistentRead=True
            ).get("Item", {})
            spent.append(
                BudgetSpend(
                    per=per,  # type: ignore[arg-type]
                    name=name,
                    day=day,
                    tokens=int(item.get("tokens", {}).get("N", "0")),
                    usd=float(item.get("usd", {}).get("N", "0")),
                    limits=limits,
                )
            )
        return spent

    def check(self, *, tenant: str | None, agent: str) -> None:
        """Refuse a request whose tenant or agent has already spent a daily budget (``POST /tasks``).

        Raises
        ------
        BudgetExceeded
        """
        at = self._clock()
        for counter in self.spend(tenant=tenant, agent=agent):
            for unit, limit in counter.limits.items():
                if (counter.tokens if unit == "tokens" else counter.usd) >= limit:
                    raise BudgetExceeded(self.refusal(counter.per, counter.name, unit, at))

    def refusal(self, per: BudgetPer, name: str, unit: BudgetUnit, at: float, calls_before: int = 0) -> BudgetRefusal:
        return BudgetRefusal(
            per=per,
            name=name,
            unit=unit,
            limit=self.limits(per)[unit],
            day=utc_day(at),
            retry_after_seconds=seconds_to_next_utc_midnight(at),
            calls_before=calls_before,
        )

    def erase_tenant(self, tenant: str) -> int:
        """Delete ``tenant``'s daily counters (an erased principal's): today's and every day's a counter can still
        live (``retention_days`` after its day ends, and one more for the TTL's lag), one DeleteItem each. Returns how
        many existed."""
        at = self._clock()
        deleted = 0
        for back in range(self.retention_days + 2):
            response = self.client.delete_item(
                TableName=self.table,
                Key={"pk": {"S": counter_key("tenant", tenant, utc_day(at - back * _DAY))}},
                ReturnValues="ALL_OLD",
            )
            deleted += "Attributes" in response
        return deleted

    def expires_at(self, at: float) -> int:
        """The TTL of a counter written at ``at``: the end of its UTC day plus the retention days."""
        return int(at) - int(at) % _DAY + _DAY * (1 + self.retention_days)


class BudgetGuard:
    """The budget checks of one run, for its tenant and its agent: :meth:`reserve` before a model call,
    :meth:`settle` after it."""

    def __init__(self, budgets: DailyBudgets, owners: Sequence[tuple[BudgetPer, str]]) -> None:
        self.budgets = budgets
        self.owners = tuple(owners)

    def reserve(self, model: str, input_tokens: int, max_output_tokens: int, *, calls_before: int = 0) -> Reservation:
        """Add the call's worst case to every counter, only if each stays within its limits (one DynamoDB call).

        Raises
        ------
        BudgetExceeded
            Naming the budget the call would cross; nothing was added.
        """
        b = self.budgets
        at = b._clock()
        day = utc_day(at)
        tokens = input_tokens + max_output_tokens
        usd = _usd(b.prices.cost(model, Usage(input_tokens=input_tokens, output_tokens=max_output_tokens)))
        updates: list[dict[str, Any]] = []
        for per, name in self.owners:
            names = {"#per": "per", "#name": "name", "#day": "day", "#tokens": "tokens", "#usd": "usd", "#ttl": "expires_at"}
            values: dict[str, Any] = {
                ":tokens": _number(tokens),
                ":usd": _number(usd),
                ":per": {"S": per},
                ":name": {"S": name},
                ":day": {"S": day},
                ":ttl": {"N": str(b.expires_at(at))},
            }
            conditions = []
            for unit, limit in b.limits(per).items():
                room = Decimal(str(limit)) - (tokens if unit == "tokens" else usd)
                if room < 0:  # the call alone would cross the budget: refused without asking DynamoDB
                    raise BudgetExceeded(b.refusal(per, name, unit, at, calls_before))
                values[f":room_{unit}"] = _number(room)
                values[f":limit_{unit}"] = _number(Decimal(str(limit)))
                # Fits: what is spent plus this reserve stays within the limit, and the limit is not reached already
                # (a call of an unpriced model reserves no USD, yet a spent USD budget refuses it).
                conditions.append(f"(attribute_not_exists(#{unit}) OR (#{unit} <= :room_{unit} AND #{unit} < :limit_{unit}))")
            updates.append(
                {
                    "TableName": b.table,
                    "Key": {"pk": {"S": counter_key(per, name, day)}},
                    "UpdateExpression": "ADD #tokens :tokens, #usd :usd SET #per = :per, #name = :name, #day = :day, #ttl = :ttl",
                    "ConditionExpression": " AND ".join(conditions),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                    # A refused reserve returns the counter, so the refusal names the limit it would cross.
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            )
        client = b.client
        try:
            if len(updates) == 1:
                client.update_item(**updates[0])
            else:
                client.transact_write_items(TransactItems=[{"Update": update} for update in updates])
        except client.exceptions.ConditionalCheckFailedException as error:
            raise self._refused(0, dict(error.response).get("Item"), {"tokens": tokens, "usd": usd}, at, calls_before) from None
        except client.exceptions.TransactionCanceledException as error:
            response: dict[str, Any] = dict(error.response)
            reasons: list[dict[str, Any]] = list(response.get("CancellationReasons") or [])
            failed = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
            if not failed and reasons:
                raise  # a conflict with another transaction, throttling: not a budget answer
            index = failed[0] if failed else 0
            item = reasons[index].get("Item") if reasons else None
            raise self._refused(index, item, {"tokens": tokens, "usd": usd}, at, calls_before) from None
        return Reservation(keys=tuple(u["Key"]["pk"]["S"] for u in updates), model=model, tokens=tokens, usd=usd)

    def _refused(
        self, index: int, item: dict[str, Any] | None, reserved: dict[str, Decimal | int], at: float, calls_before: int
    ) -> BudgetExceeded:
        """The refusal of the ``index``-th counter: the limit that its counter (``item``, as it stood) plus the
        reserve would cross, or that it has reached."""
        per, name = self.owners[index]
        limits = self.budgets.limits(per)
        unit: BudgetUnit = next(iter(limits))
        for candidate, limit in limits.items():
            spent = Decimal((item or {}).get(candidate, {}).get("N", "0"))
            if spent + reserved[candidate] > Decimal(str(limit)) or spent >= Decimal(str(limit)):
                unit = candidate
                break
        logger.warning("budget exceeded", extra={"event": "budget_exceeded", "per": per, "unit": unit})
        return BudgetExceeded(self.budgets.refusal(per, name, unit, at, calls_before))

    def charge(self, usage: Usage, usd: float | None) -> None:
        """Add what a call already made spent (a batch job's answer: it reserved nothing) to today's counters,
        unconditionally: the counters then refuse the next request once a limit is reached."""
        b = self.budgets
        at = b._clock()
        day = utc_day(at)
        tokens, spent = usage.total_tokens, _usd(usd)
        if tokens == 0 and spent == 0:
            return
        updates = [
            {
                "TableName": b.table,
                "Key": {"pk": {"S": counter_key(per, name, day)}},
                "UpdateExpression": "ADD #tokens :tokens, #usd :usd SET #per = :per, #name = :name, #day = :day, #ttl = :ttl",
                "ExpressionAttributeNames": {
                    "#per": "per",
                    "#name": "name",
                    "#day": "day",
                    "#tokens": "tokens",
                    "#usd": "usd",
                    "#ttl": "expires_at",
                },
                "ExpressionAttributeValues": {
                    ":tokens": _number(tokens),
                    ":usd": _number(spent),
                    ":per": {"S": per},
                    ":name": {"S": name},
                    ":day": {"S": day},
                    ":ttl": {"N": str(b.expires_at(at))},
                },
            }
            for per, name in self.owners
        ]
        self._write(updates)

    def settle(self, reservation: Reservation, usage: Usage) -> None:
        """Correct every counter from the reservation to ``usage`` (unconditional; no call when they are equal)."""
        b = self.budgets
        tokens = usage.total_tokens - reservation.tokens
        usd = _usd(b.prices.cost(reservation.model, usage)) - reservation.usd
        self._add(reservation.keys, tokens, usd)

    def _add(self, keys: Sequence[str], tokens: int, usd: Decimal) -> None:
        """Add ``tokens`` and ``usd`` to each counter of ``keys`` (no call when both are zero)."""
        b = self.budgets
        if tokens == 0 and usd == 0:
            return
        self._write(
            [
                {
                    "TableName": b.table,
                    "Key": {"pk": {"S": key}},
                    "UpdateExpression": "ADD #tokens :tokens, #usd :usd",
                    "ExpressionAttributeNames": {"#tokens": "tokens", "#usd": "usd"},
                    "ExpressionAttributeValues": {":tokens": _number(tokens), ":usd": _number(usd)},
                }
                for key in keys
            ]
        )

    def _write(self, updates: list[dict[str, Any]]) -> None:
        """One counter's update, or a transaction of several."""
        client = self.budgets.client
        if len(updates) == 1:
            client.update_item(**updates[0])
        else:
            client.transact_write_items(TransactItems=[{"Update": update} for update in updates])
