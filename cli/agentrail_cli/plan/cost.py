"""The cost of a task, item by item: what one task uses (:mod:`usage`) times the region's list prices (:mod:`prices`).

Every line keeps full precision; round only to display. No free tier is applied.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentrail_cli.plan.errors import PlanInputError
from agentrail_cli.plan.prices import Architecture, ItemPrice, PriceFile, model_price, region_prices
from agentrail_cli.plan.usage import FIXED_ITEMS, ITEMS, Basis, FixedMonthly, Quantity, TaskUsage, TokenUse

__all__ = ["NO_FREE_TIER_NOTE", "TOKENS_PRICED_PER", "CostEstimate", "CostLine", "LineKind", "estimate"]

#: Said on every estimate: the free tiers are left out on purpose.
NO_FREE_TIER_NOTE = (
    "No free tier is applied (Lambda's 1M requests and 400,000 GB-seconds, API Gateway's first 12 months, "
    "DynamoDB's 25 GB, ...): these are list prices for an account that has used its free tiers."
)
#: Model prices are quoted per this many tokens.
TOKENS_PRICED_PER = 1_000_000

LineKind = Literal["per_task", "fixed", "tokens"]

#: How each item reads on a bill: (service, item). An item missing here reads as its key.
_ITEM_LABELS: dict[str, tuple[str, str]] = {
    "lambda_requests": ("Lambda", "requests"),
    "lambda_gb_seconds": ("Lambda", "GB-seconds ({arch})"),
    "rest_api_requests": ("API Gateway", "REST API requests"),
    "http_api_requests": ("API Gateway", "HTTP API requests (512 KB increments)"),
    "websocket_messages": ("API Gateway", "WebSocket messages (32 KB increments)"),
    "websocket_connection_minutes": ("API Gateway", "WebSocket connection minutes"),
    "dynamodb_read_units": ("DynamoDB", "on-demand read request units"),
    "dynamodb_write_units": ("DynamoDB", "on-demand write request units"),
    "dynamodb_gb_months": ("DynamoDB", "storage (GB-months)"),
    "sqs_requests": ("SQS", "standard requests"),
    "sqs_fifo_requests": ("SQS", "FIFO requests"),
    "sfn_transitions": ("Step Functions", "Standard state transitions"),
    "eventbridge_events": ("EventBridge", "custom events"),
    "log_gb": ("CloudWatch Logs", "GB ingested"),
    "xray_traces": ("X-Ray", "traces recorded"),
    "kms_requests": ("KMS", "requests"),
    "secrets_api_calls": ("Secrets Manager", "API calls"),
    "kms_keys": ("KMS", "customer managed keys"),
    "secrets": ("Secrets Manager", "secrets"),
    "custom_metrics": ("CloudWatch", "custom metrics"),
    "alarms": ("CloudWatch", "standard alarms"),
    "dashboards": ("CloudWatch", "dashboards"),
    "vpc_endpoint_hours": ("VPC", "interface endpoint AZ-hours"),
    "provisioned_gb_seconds": ("Lambda", "provisioned concurrency GB-seconds ({arch})"),
}


class CostLine(BaseModel):
    """One priced quantity: per task, fixed per month, or one kind of token on one model.

    ``usd_per_task`` of a fixed line is its monthly cost spread over the month's tasks.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: LineKind
    key: str  # the ITEMS or FIXED_ITEMS key; for tokens "tokens:<input|output|cache_read|cache_write>"
    service: str
    item: str
    quantity_per_task: float = Field(ge=0)
    quantity_per_month: float = Field(ge=0)
    unit: str
    price_usd: float = Field(ge=0)  # as the price file quotes it: USD per ``price_per`` units
    price_per: float = Field(gt=0)
    unit_price_usd: float = Field(ge=0)
    usd_per_task: float = Field(ge=0)
    usd_per_1000_tasks: float = Field(ge=0)
    usd_per_month: float = Field(ge=0)
    basis: Basis
    model: str = ""
    note: str = ""


class CostEstimate(BaseModel):
    """What a pattern costs in a region at a traffic: itemized lines and their totals (full precision)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    pattern: str
    unit: str
    region: str
    architecture: Architecture
    tasks_per_month: float = Field(gt=0)
    prices_version: str
    prices_as_of: str
    lines: list[CostLine]
    usd_per_task: float
    usd_per_1000_tasks: float
    usd_per_month: float
    aws_usd_per_task: float  # everything but model tokens
    token_usd_per_task: float
    fixed_usd_per_month: float  # the part that does not scale with traffic
    notes: list[str]

    def lines_of(self, kind: LineKind) -> list[CostLine]:
        """The lines of one kind, in the order they were priced."""
        return [line for line in self.lines if line.kind == kind]


def estimate(usage: TaskUsage, fixed: FixedMonthly, prices: PriceFile, region: str, tasks_per_month: float) -> CostEstimate:
    """Price one task's usage and a deployment's fixed monthly items in ``region``.

    Parameters
    ----------
    usage:
        Per-task quantities (keys of :data:`ITEMS`) and model tokens.
    fixed:
        Monthly quantities whatever the traffic (keys of :data:`FIXED_ITEMS`), spread over the month's tasks.
    prices:
        A loaded price file (:func:`prices.load_prices`).
    region:
        The region whose prices apply.
    tasks_per_month:
        The traffic; must be positive.

    Returns
    -------
    CostEstimate
        Lines per item, fixed item and model token kind, with USD per task, per 1,000 tasks and per month.

    Raises
    ------
    PlanInputError
        On an unknown region, item, architecture or model, a non-positive traffic, or batch or cached tokens on a
        model that has no batch or caching price.
    """
    if not tasks_per_month > 0:
        raise PlanInputError(f"tasks per month must be a positive number, not {tasks_per_month!r}.")
    if usage.architecture not in ("arm64", "x86_64"):
        raise PlanInputError(f"unknown architecture '{usage.architecture}'; use arm64 or x86_64.")
    architecture: Architecture = "arm64" if usage.architecture == "arm64" else "x86_64"
    regional = region_prices(prices, region)
    lines: list[CostLine] = []
    for key, quantity in usage.quantities.items():
        price = _item_price(regional.items, key, ITEMS, "per-task item")
        lines.append(
            _item_line(
                "per_task", key, quantity, quantity.value, quantity.value * tasks_per_month, price, architecture, tasks_per_month
            )
        )
    for key, quantity in fixed.quantities.items():
        price = _item_price(regional.fixed, key, FIXED_ITEMS, "fixed monthly item")
        lines.append(
            _item_line(
                "fixed", key, quantity, quantity.value / tasks_per_month, quantity.value, price, architecture, tasks_per_month
            )
        )
    for tokens in usage.tokens:
        lines.extend(_token_lines(tokens, prices, region, tasks_per_month))

    usd_per_task = sum(line.usd_per_task for line in lines)
    token_usd_per_task = sum(line.usd_per_task for line in lines if line.kind == "tokens")
    return CostEstimate(
        pattern=usage.pattern,
        unit=usage.unit,
        region=region,
        architecture=architecture,
        tasks_per_month=tasks_per_month,
        prices_version=prices.version,
        prices_as_of=prices.as_of.isoformat(),
        lines=lines,
        usd_per_task=usd_per_task,
        usd_per_1000_tasks=usd_per_task * 1000,
        usd_per_month=sum(line.usd_per_month for line in lines),
        aws_usd_per_task=usd_per_task - token_usd_per_task,
        token_usd_per_task=token_usd_per_task,
        fixed_usd_per_month=sum(line.usd_per_month for line in lines if line.kind == "fixed"),
        notes=[
            NO_FREE_TIER_NOTE,
            f"Prices: version {prices.version}, as of {prices.as_of.isoformat()}, region {region}, on-demand list prices.",
        ],
    )


def _item_price(priced: dict[str, ItemPrice], key: str, known: dict[str, str], what: str) -> ItemPrice:
    if key not in known:
        raise PlanInputError(f"unknown {what} '{key}'; known items: {', '.join(sorted(known))}.")
    return priced[key]  # a validated price file prices every known item


def _item_line(
    kind: LineKind,
    key: str,
    quantity: Quantity,
    per_task: float,
    per_month: float,
    price: ItemPrice,
    architecture: Architecture,
    tasks_per_month: float,
) -> CostLine:
    service, item = _ITEM_LABELS.get(key, (key, key))
    unit_price = price.unit_price_usd(architecture)
    usd_per_month = per_month * unit_price
    usd_per_task = usd_per_month / tasks_per_month if kind == "fixed" else per_task * unit_price
    note = "; ".join(part for part in (quantity.note, price.note) if part)
    return CostLine(
        kind=kind,
        key=key,
        service=service,
        item=item.format(arch=architecture),
        quantity_per_task=per_task,
        quantity_per_month=per_month,
        unit=price.unit or FIXED_ITEMS.get(key) or ITEMS.get(key, ""),
        price_usd=price.price_usd(architecture),
        price_per=price.per,
        unit_price_usd=unit_price,
        usd_per_task=usd_per_task,
        usd_per_1000_tasks=usd_per_task * 1000,
        usd_per_month=usd_per_month,
        basis=quantity.basis,
        note=note,
    )


def _token_lines(tokens: TokenUse, prices: PriceFile, region: str, tasks_per_month: float) -> list[CostLine]:
    price = model_price(prices, region, tokens.model)
    lane = "batch" if tokens.batch else "on-demand"
    if tokens.batch and (price.batch_input_per_million is None or price.batch_output_per_million is None):
        raise PlanInputError(
            f"model '{tokens.model}' has no batch price in region '{region}'; run it on demand or price it in an override file."
        )
    input_price = price.batch_input_per_million if tokens.batch else price.input_per_million
    output_price = price.batch_output_per_million if tokens.batch else price.output_per_million
    assert input_price is not None and output_price is not None  # checked above for the batch lane
    kinds: list[tuple[str, str, float, float | None]] = [
        ("input", f"input tokens ({lane})", tokens.input_tokens, input_price),
        ("output", f"output tokens ({lane})", tokens.output_tokens, output_price),
    ]
    if tokens.cache_read_tokens:
        kinds.append(("cache_read", "cache read tokens", tokens.cache_read_tokens, price.cache_read_per_million))
    if tokens.cache_write_tokens:
        kinds.append(("cache_write", "cache write tokens", tokens.cache_write_tokens, price.cache_write_per_million))
    lines = []
    for kind, item, count, per_million in kinds:
        if per_million is None:
            raise PlanInputError(
                f"model '{tokens.model}' has no prompt-caching price in region '{region}'; drop its cached tokens or price them in an override file."
            )
        unit_price = per_million / TOKENS_PRICED_PER
        usd_per_task = count * unit_price
        lines.append(
            CostLine(
                kind="tokens",
                key=f"tokens:{kind}",
                service="Bedrock" if tokens.model.startswith("bedrock:") else tokens.model.partition(":")[0],
                item=item,
                quantity_per_task=count,
                quantity_per_month=count * tasks_per_month,
                unit="tokens",
                price_usd=per_million,
                price_per=TOKENS_PRICED_PER,
                unit_price_usd=unit_price,
                usd_per_task=usd_per_task,
                usd_per_1000_tasks=usd_per_task * 1000,
                usd_per_month=usd_per_task * tasks_per_month,
                basis=tokens.basis,
                model=tokens.model,
                note=f"{tokens.calls:g} model calls per task" + (f"; {price.note}" if price.note else ""),
            )
        )
    return lines
