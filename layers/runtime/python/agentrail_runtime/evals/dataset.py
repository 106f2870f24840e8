"""Eval datasets: ``evals/<agent>/*.jsonl``, one case per line, every file validated before anything runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentrail_runtime.evals.schema import check_schema

#: A score or a threshold: a fraction in [0, 1].
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

#: Every scorer, in the order a report lists them.
SCORERS: tuple[str, ...] = (
    "exact",
    "contains",
    "regex",
    "json_schema",
    "tool_called",
    "status",
    "max_steps",
    "max_cost_usd",
    "judge",
)
#: The threshold a scorer's score must reach unless a case or the command line says otherwise.
DEFAULT_THRESHOLDS: Mapping[str, float] = {**dict.fromkeys(SCORERS, 1.0), "judge": 0.7}
#: The run statuses a case may expect: ``AgentStatus`` values, and a task's end over a tasks API.
RunStatus = Literal[
    "completed",
    "max_steps_exceeded",
    "token_budget_exceeded",
    "awaiting_approval",
    "handed_off",
    "budget_exceeded",
    # A task's, over a tasks API.
    "failed",
    "cancelled",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCallExpectation(_Strict):
    """A tool the agent must call, with arguments that contain ``arguments``.

    Every key of ``arguments`` must be among the call's arguments with an equal value: nested objects match as
    subsets too, a number matches its string (``12`` and ``"12"``), and ``{"$regex": "..."}`` matches a string
    value by :func:`re.search`. Keys the call has and ``arguments`` does not name are ignored.
    """

    name: Annotated[str, Field(min_length=1)]
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("arguments")
    @classmethod
    def _regexes_compile(cls, value: dict[str, Any]) -> dict[str, Any]:
        for pattern in _regexes(value):
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"$regex {pattern!r} does not compile: {error}") from None
        return value


def _regexes(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        if set(value) == {"$regex"}:
            if not isinstance(value["$regex"], str):
                raise ValueError("$regex takes a string")
            yield value["$regex"]
            return
        for item in value.values():
            yield from _regexes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _regexes(item)


class JudgeCriteria(_Strict):
    """An LLM judge's rubric: what a good answer does. The judge scores the answer against it in [0, 1]."""

    rubric: Annotated[str, Field(min_length=1, max_length=4000)]


class Expectations(_Strict):
    """What a case's answer and run must satisfy: one scorer per key (see the README's scorers table)."""

    exact: str | None = None
    #: One string or several; each must appear in the answer (case aside).
    contains: list[Annotated[str, Field(min_length=1)]] | None = None
    regex: str | None = None
    json_schema: dict[str, Any] | None = None
    #: One expected call or several.
    tool_called: list[ToolCallExpectation] | None = None
    status: RunStatus | None = None
    max_steps: Annotated[int, Field(ge=0)] | None = None
    max_cost_usd: Annotated[float, Field(ge=0)] | None = None
    judge: JudgeCriteria | None = None

    @field_validator("contains", "tool_called", mode="before")
    @classmethod
    def _one_or_several(cls, value: object) -> object:
        return [value] if isinstance(value, str | dict) else value

    @field_validator("contains", "tool_called")
    @classmethod
    def _not_empty(cls, value: list[Any] | None) -> list[Any] | None:
        if value == []:
            raise ValueError("give one item or a non-empty list")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"the pattern does not compile: {error}") from None
        return value

    @field_validator("json_schema")
    @classmethod
    def _is_a_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_schema(value)
        return value

    def scorers(self) -> list[str]:
        """The scorers this case uses, in :data:`SCORERS` order."""
        return [name for name in SCORERS if getattr(self, name) is not None]


class EvalCase(_Strict):
    """One line of a dataset.

    Attributes
    ----------
    id:
        Names the case in reports and baselines. Default: ``line-<n>``.
    input:
        The message sent to the agent.
    expect:
        The scorers and what each expects; at least one.
    thresholds:
        Per scorer, the score this case must reach (overrides the defaults and ``--threshold``).
    tags:
        Labels that select a subset of cases (``--tag smoke``: the canary's pre-traffic smoke subset).
    """

    id: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/-]+$")] | None = None
    input: Annotated[str, Field(min_length=1, max_length=8000)]
    expect: Expectations
    thresholds: dict[str, Fraction] = Field(default_factory=dict)
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _scorers_known_and_used(self) -> EvalCase:
        if not self.expect.scorers():
            raise ValueError(f"expect names no scorer; known: {', '.join(SCORERS)}")
        unknown = sorted(set(self.thresholds) - set(SCORERS))
        if unknown:
            raise ValueError(f"thresholds name unknown scorers {unknown}; known: {', '.join(SCORERS)}")
        unused = sorted(set(self.thresholds) - set(self.expect.scorers()))
        if unused:
            raise ValueError(f"thresholds name scorers this case does not use: {unused}")
        return self


@dataclass(frozen=True)
class LoadedCase:
    """A validated case and where it came from."""

    agent: str
    dataset: str
    line: int
    case: EvalCase
    #: The dataset file, as it was given.
    path: str = ""

    @property
    def id(self) -> str:
        return self.case.id or f"line-{self.line}"

    @property
    def key(self) -> str:
        """Unique across a run, and stable across runs: ``<agent>/<dataset>:<id>`` (a baseline matches cases by it)."""
        return f"{self.agent}/{self.dataset}:{self.id}"


@dataclass(frozen=True)
class Dataset:
    """The cases of one file; ``agent`` is its folder's name (``evals/<agent>/<name>.jsonl``)."""

    path: Path
    agent: str
    name: str
    cases: tuple[LoadedCase, ...]


class DatasetError(ValueError):
    """One or more dataset lines are invalid; ``problems`` holds one ``file:line: message`` each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("invalid eval datasets (nothing ran):\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = list(problems)


def dataset_files(paths: Iterable[Path]) -> list[Path]:
    """The ``.jsonl`` files of ``paths`` (files, or folders searched recursively), sorted, without duplicates.

    Raises
    ------
    DatasetError
        When a path does not exist or a folder holds no dataset.
    """
    files: dict[Path, None] = {}
    problems = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.rglob("*.jsonl"))
            if not found:
                problems.append(f"{path}: no *.jsonl dataset in this folder")
            files.update(dict.fromkeys(found))
        elif path.is_file():
            files[path] = None
        else:
            problems.append(f"{path}: no such file or folder")
    if problems:
        raise DatasetError(problems)
    return list(files)


def load_datasets(
    paths: Iterable[Path], *, thresholds: Mapping[str, float] | None = None, tags: Iterable[str] = ()
) -> list[Dataset]:
    """Read and validate every dataset file before any case runs.

    Parameters
    ----------
    paths:
        Dataset files or folders (see :func:`dataset_files`).
    thresholds:
        Overrides of :data:`DEFAULT_THRESHOLDS` (``--threshold``), validated here too.
    tags:
        Keep only the cases with at least one of these tags (every line is still validated). Default: every case.

    Raises
    ------
    DatasetError
        Naming every bad line as ``file:line: problem`` (malformed JSON, an unknown scorer, a threshold out of
        [0, 1], a regex or a JSON schema that does not compile, a repeated id), and every bad threshold.
    """
    problems = threshold_problems(thresholds or {})
    datasets = []
    for path in dataset_files(paths):
        cases: list[LoadedCase] = []
        seen: dict[str, int] = {}
        agent = path.parent.name
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"{path}: cannot read: {error}")
            continue
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            where = f"{path}:{number}"
            try:
                document = json.loads(text)
            except json.JSONDecodeError as error:
                problems.append(f"{where}: not JSON: {error.msg} (column {error.colno})")
                continue
            if not isinstance(document, dict):
                problems.append(f"{where}: a case is a JSON object, not {type(document).__name__}")
                continue
            try:
                case = EvalCase.model_validate(document)
            except ValidationError as error:
                problems.extend(f"{where}: {message}" for message in _messages(error))
                continue
            loaded = LoadedCase(agent=agent, dataset=path.stem, line=number, case=case, path=str(path))
            if loaded.id in seen:
                problems.append(f"{where}: id {loaded.id!r} is already used on line {seen[loaded.id]}")
                continue
            seen[loaded.id] = number
            cases.append(loaded)
        if not cases and not any(p.startswith(str(path)) for p in problems):
            problems.append(f"{path}: no cases")
        datasets.append(Dataset(path=path, agent=agent, name=path.stem, cases=tuple(cases)))
    if problems:
        raise DatasetError(problems)
    wanted = set(tags)
    if not wanted:
        return datasets
    selected = [
        Dataset(path=d.path, agent=d.agent, name=d.name, cases=tuple(c for c in d.cases if wanted & set(c.case.tags)))
        for d in datasets
    ]
    if not any(d.cases for d in selected):
        raise DatasetError([f"no case has the tag {' or '.join(sorted(wanted))}"])
    return [d for d in selected if d.cases]


def threshold_problems(thresholds: Mapping[str, float]) -> list[str]:
    """What is wrong with ``--threshold`` overrides: unknown scorers and values outside [0, 1]."""
    problems = []
    for name, value in thresholds.items():
        if name not in SCORERS:
            problems.append(f"--threshold {name}: unknown scorer; known: {', '.join(SCORERS)}")
        elif not 0.0 <= value <= 1.0:
            problems.append(f"--threshold {name}={value}: a threshold is in [0, 1]")
    return problems


def _messages(error: ValidationError) -> list[str]:
    messages = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden" and len(item["loc"]) == 2 and item["loc"][0] == "expect":
            message = f"unknown scorer; known: {', '.join(SCORERS)}"
        elif item["type"] == "extra_forbidden" and len(item["loc"]) == 1:
            message = "unknown field; a case has id, input, expect, thresholds and tags"
        messages.append(f"{location}: {message}" if location else message)
    return messages


__all__ = [
    "DEFAULT_THRESHOLDS",
    "SCORERS",
    "Dataset",
    "DatasetError",
    "EvalCase",
    "Expectations",
    "JudgeCriteria",
    "LoadedCase",
    "ToolCallExpectation",
    "dataset_files",
    "load_datasets",
    "threshold_problems",
]
