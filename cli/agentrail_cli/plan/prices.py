"""The price file: AWS list prices per region, for every item of a task, the fixed monthly items, models and platforms.

The shipped file (``data/prices.json``) names its sources and the date they were read (``as_of``). Override files
have the same shape but name only what they change: any subset of regions, items, models or platform prices.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentrail_cli.plan.errors import PlanInputError
from agentrail_cli.plan.usage import FIXED_ITEMS, ITEMS

__all__ = [
    "ARCHITECTURES",
    "EXTRA_ITEM_PRICES",
    "EXTRA_ITEM_SOURCES",
    "Architecture",
    "ItemPrice",
    "ModelPrice",
    "PlatformPrices",
    "PriceFile",
    "PriceSource",
    "RegionPrices",
    "load_prices",
    "model_price",
    "region_prices",
]

Architecture = Literal["arm64", "x86_64"]
ARCHITECTURES: tuple[Architecture, ...] = ("arm64", "x86_64")
#: Cross-region inference profile prefixes ("us.amazon.nova-lite-v1:0"); a profile is priced like its model.
#: The same tuple as agentrail_runtime.contract.INFERENCE_PROFILE_PREFIXES, which a plain CLI install may not have.
INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "ca.", "jp.", "au.")

_SHIPPED = "prices.json"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PriceSource(_Strict):
    """Where prices were read, and when."""

    name: str
    url: str
    as_of: datetime.date
    confirmed: str = ""  # what was checked against this source on as_of


class ItemPrice(_Strict):
    """``usd`` buys ``per`` units (USD 0.20 per 1,000,000 requests), or one price per Lambda architecture."""

    usd: float | None = Field(default=None, ge=0)
    usd_by_architecture: dict[Architecture, float] | None = None
    per: float = Field(default=1, gt=0)
    unit: str = ""
    note: str = ""

    @model_validator(mode="after")
    def _one_price(self) -> ItemPrice:
        if (self.usd is None) == (self.usd_by_architecture is None):
            raise ValueError("give either usd or usd_by_architecture, not both nor neither")
        if self.usd_by_architecture is not None:
            missing = [arch for arch in ARCHITECTURES if arch not in self.usd_by_architecture]
            if missing:
                raise ValueError(f"usd_by_architecture has no price for {', '.join(missing)}")
            if any(value < 0 for value in self.usd_by_architecture.values()):
                raise ValueError("usd_by_architecture has a negative price")
        return self

    def price_usd(self, architecture: Architecture = "arm64") -> float:
        """USD for ``per`` units, on ``architecture`` when the price depends on it."""
        if self.usd_by_architecture is not None:
            return self.usd_by_architecture[architecture]
        assert self.usd is not None  # the validator guarantees one of the two
        return self.usd

    def unit_price_usd(self, architecture: Architecture = "arm64") -> float:
        """USD for one unit."""
        return self.price_usd(architecture) / self.per


class ModelPrice(_Strict):
    """USD per one million tokens; batch and prompt-caching prices where the model offers them."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    batch_input_per_million: float | None = Field(default=None, ge=0)
    batch_output_per_million: float | None = Field(default=None, ge=0)
    cache_read_per_million: float | None = Field(default=None, ge=0)
    cache_write_per_million: float | None = Field(default=None, ge=0)
    note: str = ""


class PlatformPrices(_Strict):
    """The compute platforms ``compare`` puts beside ours: AgentCore Runtime, Fargate and an Application Load Balancer."""

    agentcore_vcpu_hour: float = Field(ge=0)
    agentcore_gb_hour: float = Field(ge=0)
    agentcore_min_memory_gb: float = Field(default=0.125, ge=0)
    agentcore_min_billed_seconds: float = Field(default=1.0, ge=0)
    fargate_arm64_vcpu_hour: float = Field(ge=0)
    fargate_arm64_gb_hour: float = Field(ge=0)
    fargate_x86_64_vcpu_hour: float = Field(ge=0)
    fargate_x86_64_gb_hour: float = Field(ge=0)
    alb_hour: float = Field(ge=0)
    alb_lcu_hour: float = Field(ge=0)
    note: str = ""

    def fargate_vcpu_hour(self, architecture: Architecture) -> float:
        """USD per vCPU-hour of a Linux Fargate task."""
        return self.fargate_arm64_vcpu_hour if architecture == "arm64" else self.fargate_x86_64_vcpu_hour

    def fargate_gb_hour(self, architecture: Architecture) -> float:
        """USD per GB-hour of a Linux Fargate task."""
        return self.fargate_arm64_gb_hour if architecture == "arm64" else self.fargate_x86_64_gb_hour


class RegionPrices(_Strict):
    """Every price of one region. ``items`` keys are :data:`ITEMS`, ``fixed`` keys are :data:`FIXED_ITEMS`."""

    items: dict[str, ItemPrice]
    fixed: dict[str, ItemPrice]
    models: dict[str, ModelPrice] = Field(min_length=1)
    platforms: PlatformPrices

    @model_validator(mode="after")
    def _prices_every_item(self) -> RegionPrices:
        for field, expected in (("items", ITEMS), ("fixed", FIXED_ITEMS)):
            given = getattr(self, field)
            unknown = sorted(set(given) - set(expected))
            if unknown:
                raise ValueError(f"{field} has unknown key {_names(unknown)} (known: {_names(expected)})")
            missing = sorted(set(expected) - set(given))
            if missing:
                raise ValueError(f"{field} has no price for {_names(missing)}")
        return self


class PriceFile(_Strict):
    """A versioned price file: its sources, its date and its prices per region."""

    version: str = Field(min_length=1)
    as_of: datetime.date
    currency: Literal["USD"] = "USD"
    sources: list[PriceSource] = Field(min_length=1)
    notes: list[str] = Field(default_factory=list)
    regions: dict[str, RegionPrices] = Field(min_length=1)


#: us-east-1 list prices of requests the per-task items (:data:`~agentrail_cli.plan.usage.ITEMS`) do not price yet,
#: with no free tier: the batch lane's files in S3 and its schedule's ticks (``benchmarks/batch_lane.py`` prices them).
EXTRA_ITEM_PRICES: dict[str, ItemPrice] = {
    "s3_tier1_requests": ItemPrice(
        usd=0.005, per=1000, unit="PUT, COPY, POST or LIST requests (S3 Standard)", note="secondary guides quoting the page"
    ),
    "s3_tier2_requests": ItemPrice(
        usd=0.0004, per=1000, unit="GET, SELECT and other requests (S3 Standard)", note="secondary guides quoting the page"
    ),
    "scheduler_invocations": ItemPrice(
        usd=1.0,
        per=1_000_000,
        unit="EventBridge Scheduler invocations",
        note="after 14 million free a month (not applied here); secondary guides quoting the page",
    ),
}
#: Where :data:`EXTRA_ITEM_PRICES` were read.
EXTRA_ITEM_SOURCES: tuple[PriceSource, ...] = (
    PriceSource(
        name="Amazon S3 pricing",
        url="https://aws.amazon.com/s3/pricing/",
        as_of=datetime.date(2026, 12, 7),
        confirmed="S3 Standard requests: 0.005 per 1,000 PUT, COPY, POST, LIST; 0.0004 per 1,000 GET, SELECT and others "
        "(https://c3x.dev/blog/s3-request-fees-explained, quoting the page)",
    ),
    PriceSource(
        name="Amazon EventBridge pricing (Scheduler)",
        url="https://aws.amazon.com/eventbridge/pricing/",
        as_of=datetime.date(2026, 12, 7),
        confirmed="Scheduler 1.00 per million invocations, 14 million a month free "
        "(https://cloudburn.io/blog/amazon-eventbridge-pricing, March 2026, quoting the page)",
    ),
)


def load_prices(path: Path | None = None, overrides: Iterable[Path] = ()) -> PriceFile:
    """Load a price file, then apply override files in order.

    Parameters
    ----------
    path:
        A price file (``.json``, or ``.yaml``/``.yml``). Default: the file shipped with agentrail.
    overrides:
        Files of the same shape naming only what they change: an entry they name (a region's item, fixed item,
        model or platform price; the version, date, sources or notes) replaces the loaded one; a region they add
        must be complete.

    Raises
    ------
    PlanInputError
        When a file cannot be read or parsed, or the result breaks the schema; the message is one sentence.
    """
    if path is None:
        label = _SHIPPED
        data = _parse(
            resources.files("agentrail_cli.plan").joinpath("data", _SHIPPED).read_text(encoding="utf-8"), label, ".json"
        )
    else:
        label, data = path.name, _read(path)
    merged = _validated(data, label).model_dump(mode="json", exclude_none=True)
    for override in overrides:
        merged = _merge(merged, _read(override), override.name)
        label = override.name
    return _validated(merged, label)


def region_prices(prices: PriceFile, region: str) -> RegionPrices:
    """The prices of ``region``.

    Raises
    ------
    PlanInputError
        When the price file does not know the region.
    """
    try:
        return prices.regions[region]
    except KeyError:
        raise PlanInputError(f"unknown region '{region}'; the prices file knows: {', '.join(sorted(prices.regions))}.") from None


def model_price(prices: PriceFile, region: str, model: str) -> ModelPrice:
    """The price of ``model`` (``provider:model-id``) in ``region``, by longest matching prefix.

    A cross-region inference profile (``bedrock:us.anthropic.claude-sonnet-4-...``) is priced like its model, and a
    versioned id (``bedrock:amazon.nova-lite-v1:0``) like the entry its name starts with.

    Raises
    ------
    PlanInputError
        When the region or the model is unknown.
    """
    models = region_prices(prices, region).models
    provider, _, model_id = model.partition(":")
    for prefix in INFERENCE_PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            model_id = model_id[len(prefix) :]
            break
    candidate = f"{provider}:{model_id}" if model_id else provider
    for key in sorted(models, key=len, reverse=True):
        if candidate.startswith(key):
            return models[key]
    raise PlanInputError(f"unknown model '{model}' in region '{region}'; the prices file knows: {', '.join(sorted(models))}.")


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PlanInputError(f"prices file {path.name}: cannot be read ({error.strerror or error}).") from None
    return _parse(text, path.name, path.suffix.lower())


def _parse(text: str, label: str, suffix: str) -> Any:
    if suffix in (".yaml", ".yml"):
        import yaml  # only for YAML overrides; JSON needs nothing

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise PlanInputError(f"prices file {label}: is not valid YAML ({_first_line(error)}).") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PlanInputError(f"prices file {label}: is not valid JSON ({error.msg} at line {error.lineno}).") from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _validated(data: Any, label: str) -> PriceFile:
    if not isinstance(data, Mapping):
        raise PlanInputError(f"prices file {label}: must be a mapping with version, as_of, sources and regions.")
    try:
        return PriceFile.model_validate(data)
    except ValidationError as error:
        raise PlanInputError(_one_sentence(label, error)) from None


def _one_sentence(label: str, error: ValidationError) -> str:
    problems = error.errors(include_url=False)
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "is not a known key"
    elif first["type"] == "missing":
        message = "is required"
    elif first["type"] == "value_error":
        message = message.removeprefix("Value error, ")
        where = f"{where}:" if where else ""
    else:
        for said, meant in (
            ("Input should be", "must be"),
            ("Dictionary should have", "must have"),
            ("List should have", "must have"),
        ):
            message = message.replace(said, meant)
        message = message.replace(" after validation", "")
        message = f"{message[:1].lower()}{message[1:]} (got {first['input']!r})"
    more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
    subject = f"{where} " if where else ""
    return f"prices file {label}: {subject}{message.rstrip('.')}{more}."


_REPLACED_BY_KEY = ("items", "fixed", "models")


def _merge(base: dict[str, Any], override: Any, label: str) -> dict[str, Any]:
    if not isinstance(override, Mapping):
        raise PlanInputError(f"prices file {label}: must be a mapping naming the prices it overrides.")
    unknown = sorted(set(override) - set(PriceFile.model_fields))
    if unknown:
        raise PlanInputError(
            f"prices file {label}: {_names(unknown)} is not a known key (known: {_names(PriceFile.model_fields)})."
        )
    merged = {key: value for key, value in base.items() if key != "regions"}
    merged.update({key: value for key, value in override.items() if key != "regions"})
    regions = {name: dict(region) for name, region in base["regions"].items()}
    override_regions = override.get("regions") or {}
    if not isinstance(override_regions, Mapping):
        raise PlanInputError(f"prices file {label}: regions must map region names to prices.")
    for name, changes in override_regions.items():
        if name not in regions:
            regions[name] = changes  # a new region: validated whole below
            continue
        if not isinstance(changes, Mapping):
            raise PlanInputError(f"prices file {label}: regions.{name} must map items, fixed, models or platforms to prices.")
        unknown = sorted(set(changes) - set(RegionPrices.model_fields))
        if unknown:
            raise PlanInputError(
                f"prices file {label}: regions.{name}.{unknown[0]} is not a known key (known: {_names(RegionPrices.model_fields)})."
            )
        region = regions[name]
        for field in _REPLACED_BY_KEY:
            if field in changes:
                region[field] = {**region[field], **(changes[field] or {})}
        if "platforms" in changes:
            region["platforms"] = {**region["platforms"], **(changes["platforms"] or {})}
    merged["regions"] = regions
    return merged
