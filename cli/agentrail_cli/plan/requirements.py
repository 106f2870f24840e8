"""A team's requirements, from flags, a YAML file or questions: what the planner maps to a pattern and a cost.

Every field has a default, so ``agentrail plan --requests-per-hour 50`` is a whole profile. A value out of range,
an unknown key or a malformed file raises :class:`PlanInputError` with one sentence.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentrail_cli.plan.errors import PlanInputError

__all__ = [
    "Complexity",
    "Latency",
    "OpsExperience",
    "Requirements",
    "State",
    "duration_seconds",
    "load_requirements",
    "requirements_from",
]

YEAR_SECONDS = 365 * 86_400
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$")


def duration_seconds(value: Any, *, name: str) -> float:
    """Seconds of ``value``: a number of seconds, or ``"90s"``, ``"15m"``, ``"2h"``, ``"3d"``, ``"1w"``.

    Raises
    ------
    PlanInputError
        When it is not a duration, is not positive, or is over a year.
    """
    if isinstance(value, bool):
        raise PlanInputError(f"{name} must be a duration such as 30s, 15m, 2h or 3d, not {value!r}.")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise PlanInputError(f"{name} must be a duration such as 30s, 15m, 2h or 3d, not {str(value)[:40]!r}.")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise PlanInputError(f"{name} must be more than zero seconds.")
    if seconds > YEAR_SECONDS:
        raise PlanInputError(f"{name} is over a year ({seconds / 86_400:,.0f} days); the longest the patterns run is one year.")
    return seconds


class State(StrEnum):
    """What an agent must remember."""

    NONE = "none"  # every request stands alone
    SESSION = "session"  # a conversation: turns remember the earlier ones
    MULTI_STEP = "multi_step"  # work that runs through steps, in the background


class Complexity(StrEnum):
    """How many agents the work needs."""

    SINGLE = "single"
    SPECIALISTS = "specialists"  # a router hands each request to one of several specialists
    SUPERVISOR = "supervisor"  # a supervisor plans, fans out to workers, reviews and synthesizes


class Latency(StrEnum):
    """When the caller needs the answer."""

    INTERACTIVE = "interactive"  # within the request (a person is waiting)
    BACKGROUND = "background"  # later: the caller polls or gets a webhook


class OpsExperience(StrEnum):
    """How much running of servers and containers the team does today."""

    NONE = "none"
    SOME = "some"
    EXPERIENCED = "experienced"


class Requirements(BaseModel):
    """One profile. Durations are seconds (flags and files also take ``30s``, ``15m``, ``2h``, ``3d``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    name: str = Field(default="requirements", max_length=120)
    region: str = "us-east-1"
    requests_per_hour: float = Field(default=100.0)
    peak_concurrency: int | None = Field(default=None)
    latency: Latency = Latency.INTERACTIVE
    state: State = State.NONE
    turns_per_session: int = Field(default=10)
    session_idle: float = Field(default=24 * 3600.0)
    task_duration: float = Field(default=10.0)
    complexity: Complexity = Complexity.SINGLE
    specialists: int = Field(default=4)
    subtasks: int = Field(default=3)
    approvals: bool = False
    approval_wait: float = Field(default=3 * 86_400.0)
    approval_share: float = Field(default=1.0)
    streaming: bool = False
    budget_usd_per_month: float | None = Field(default=None)
    ops_experience: OpsExperience = OpsExperience.NONE
    model: str = "bedrock:amazon.nova-lite"
    model_calls_per_task: float = Field(default=3.0)
    input_tokens_per_call: float = Field(default=2_000.0)
    output_tokens_per_call: float = Field(default=300.0)
    model_latency: float = Field(default=1.5)
    prompt_caching: bool = False
    cached_prompt_share: float = Field(default=0.6)
    batch_lane: bool = False
    architecture: str = "arm64"
    api: str = "auto"
    security: str = "standard"
    retention_days: int = Field(default=30)

    @field_validator("task_duration", "session_idle", "approval_wait", "model_latency", mode="before")
    @classmethod
    def _durations(cls, value: Any, info: Any) -> float:
        return duration_seconds(value, name=info.field_name)

    @field_validator(
        "requests_per_hour",
        "model_calls_per_task",
        "input_tokens_per_call",
        "output_tokens_per_call",
        "budget_usd_per_month",
        mode="before",
    )
    @classmethod
    def _positive_number(cls, value: Any, info: Any) -> Any:
        if value is None and info.field_name == "budget_usd_per_month":
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise PlanInputError(f"{info.field_name} must be a number, not {str(value)[:40]!r}.")
        try:
            number = float(value)
        except ValueError:
            raise PlanInputError(f"{info.field_name} must be a number, not {str(value)[:40]!r}.") from None
        if not math.isfinite(number) or number <= 0:
            raise PlanInputError(f"{info.field_name} must be more than zero, not {value}.")
        return number

    @field_validator("peak_concurrency", "turns_per_session", "specialists", "subtasks", "retention_days", mode="before")
    @classmethod
    def _positive_count(cls, value: Any, info: Any) -> Any:
        if value is None and info.field_name == "peak_concurrency":
            return None
        try:
            number = int(str(value))
        except ValueError:
            raise PlanInputError(f"{info.field_name} must be a whole number, not {str(value)[:40]!r}.") from None
        if number < 1:
            raise PlanInputError(f"{info.field_name} must be at least 1, not {number}.")
        return number

    @field_validator("architecture")
    @classmethod
    def _architecture(cls, value: str) -> str:
        if value not in ("arm64", "x86_64"):
            raise PlanInputError(f"architecture must be arm64 or x86_64, not {value[:40]!r}.")
        return value

    @field_validator("security")
    @classmethod
    def _security(cls, value: str) -> str:
        if value not in ("standard", "hardened"):
            raise PlanInputError(f"security must be standard or hardened, not {value[:40]!r}.")
        return value

    @field_validator("api")
    @classmethod
    def _api(cls, value: str) -> str:
        if value not in ("auto", "rest", "http"):
            raise PlanInputError(f"api must be auto, rest or http, not {value[:40]!r}.")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if value != "local" and not re.fullmatch(r"(bedrock|openai):[A-Za-z0-9._:/-]+", value):
            raise PlanInputError(f"model must be local, bedrock:<model-id> or openai:<model>, not {value[:60]!r}.")
        return value

    @field_validator("approval_share", "cached_prompt_share", mode="before")
    @classmethod
    def _share(cls, value: Any, info: Any) -> float:
        try:
            share = float(value)
        except (TypeError, ValueError):
            raise PlanInputError(f"{info.field_name} must be a number from 0 to 1, not {str(value)[:40]!r}.") from None
        if not 0 < share <= 1:
            raise PlanInputError(f"{info.field_name} must be more than 0 and at most 1, not {value}.")
        return share

    @model_validator(mode="after")
    def _consistent(self) -> Requirements:
        if self.turns_per_session > 10_000:
            raise PlanInputError("turns_per_session must be at most 10,000.")
        if self.specialists > 50 or self.subtasks > 100:
            raise PlanInputError("specialists must be at most 50 and subtasks at most 100.")
        if self.peak_concurrency is not None and self.peak_concurrency > 1_000_000:
            raise PlanInputError("peak_concurrency must be at most 1,000,000.")
        if self.retention_days > 365:
            raise PlanInputError("retention_days must be at most 365.")
        if self.batch_lane and (self.latency is not Latency.BACKGROUND or self.state is State.SESSION):
            raise PlanInputError(
                "batch_lane serves background tasks that can wait up to 24 hours: set latency: background, without sessions."
            )
        if self.batch_lane and (self.model_calls_per_task != 1 or self.complexity is not Complexity.SINGLE or self.approvals):
            raise PlanInputError(
                "batch_lane runs single-step requests without tools (Bedrock batch inference has no tool use): "
                "set model_calls_per_task to 1, one agent and no approvals."
            )
        return self

    # -- derived ------------------------------------------------------------------------------

    @property
    def tasks_per_month(self) -> float:
        """Tasks in an average month (730 hours). A stateful task is a session: its requests are its turns."""
        per_hour = self.requests_per_hour / self.turns_per_session if self.state is State.SESSION else self.requests_per_hour
        return per_hour * 730.0

    @property
    def concurrency(self) -> int:
        """Peak requests in flight: as given, else Little's law on the average rate times 3 for peaks."""
        if self.peak_concurrency is not None:
            return self.peak_concurrency
        return max(1, math.ceil(self.requests_per_hour / 3600.0 * self.task_duration * 3))


def _first_sentence(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "requirements"
    if first.get("type") == "extra_forbidden":
        known = ", ".join(Requirements.model_fields)
        return f"unknown requirement {where!r}; the known ones are: {known}."
    context = first.get("ctx") or {}
    inner = context.get("error")
    if isinstance(inner, PlanInputError):
        return str(inner)
    if first.get("type") == "enum":
        return f"{where} must be one of {context.get('expected', '?')}, not {str(first.get('input'))[:40]!r}."
    return f"{where}: {first.get('msg', 'invalid').rstrip('.')}."


def requirements_from(values: dict[str, Any]) -> Requirements:
    """Validate a mapping of requirements (a YAML file's, or the flags').

    Raises
    ------
    PlanInputError
        With one sentence, on the first bad value.
    """
    try:
        return Requirements.model_validate(values)
    except PlanInputError:
        raise
    except ValidationError as error:
        raise PlanInputError(_first_sentence(error)) from None


def load_requirements(path: Path, overrides: dict[str, Any] | None = None) -> Requirements:
    """Requirements from a YAML file, with ``overrides`` (flags) on top.

    Raises
    ------
    PlanInputError
        When the file is missing, is not YAML, is not a mapping, or holds a bad value.
    """
    import yaml  # the local extra's; loaded only when a file is given

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PlanInputError(f"cannot read requirements file {path}: {error.strerror or error}.") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PlanInputError(f"requirements file {path} is not valid YAML{where}.") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise PlanInputError(f"requirements file {path} must be a YAML mapping of requirement: value.")
    return requirements_from({**values, **(overrides or {})})
