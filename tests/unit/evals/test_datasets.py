"""Datasets are validated whole before anything runs: every bad line named by file and line, and no model call."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.demo import calculator
from agentrail_runtime.evals import DatasetError, InProcessTarget, LocalJudge, load_datasets, run_datasets
from agentrail_runtime.models.base import Message, ModelResponse, ToolSpec
from agentrail_runtime.models.local import LocalModel

GOOD = {"id": "sum", "input": "what is 2 + 2", "expect": {"contains": "4"}}


class CountingModel(LocalModel):
    """The local model, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def converse(self, *, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec], max_tokens: int) -> ModelResponse:
        self.calls += 1
        return super().converse(system=system, messages=messages, tools=tools, max_tokens=max_tokens)


def write(folder: Path, name: str, *lines: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def evaluate(paths: list[Path], model: CountingModel, **thresholds: float):
    """What agentrail eval does: validate every dataset, then run them."""
    datasets = load_datasets(paths, thresholds=thresholds)
    target = InProcessTarget(AgentDefinition(name="calc", system_prompt="", tools=(calculator,)), model)
    return run_datasets(datasets, target, judge=LocalJudge(), target_name="test")


def test_a_malformed_line_names_its_file_and_line_and_no_case_runs(tmp_path: Path):
    good = write(tmp_path / "calc", "a.jsonl", GOOD)
    bad = write(tmp_path / "calc", "b.jsonl", GOOD, "", '{"input": "what is 1 + 1", "expect": ')
    model = CountingModel()

    with pytest.raises(DatasetError) as raised:
        evaluate([good, bad], model)

    assert raised.value.problems == [f"{bad}:3: not JSON: Expecting value (column 38)"]
    assert model.calls == 0


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({"input": "x", "expect": {"containz": "4"}}, "expect.containz: unknown scorer; known: exact, contains, regex"),
        (
            {"input": "x", "expect": {"contains": "4"}, "thresholds": {"contains": 1.5}},
            "thresholds.contains: Input should be less",
        ),
        ({"input": "x", "expect": {"contains": "4"}, "thresholds": {"judge": 0.5}}, "scorers this case does not use: ['judge']"),
        ({"input": "x", "expect": {"contains": "4"}, "thresholds": {"vibes": 0.5}}, "thresholds name unknown scorers ['vibes']"),
        ({"input": "x", "expect": {}}, "expect names no scorer"),
        ({"input": "x", "expect": {"regex": "("}}, "expect.regex: the pattern does not compile"),
        ({"input": "x", "expect": {"json_schema": {"type": "objekt"}}}, "expect.json_schema: not a valid JSON schema"),
        ({"input": "x", "expect": {"tool_called": {"name": "t", "arguments": {"a": {"$regex": "["}}}}}, "does not compile"),
        ({"input": "x", "expect": {"judge": {}}}, "expect.judge.rubric: Field required"),
        ({"expect": {"contains": "4"}}, "input: Field required"),
        ({"input": "x", "expect": {"contains": "4"}, "expected": 1}, "expected: unknown field"),
        ([1, 2], "a case is a JSON object, not list"),
    ],
    ids=lambda value: str(value)[:50] if isinstance(value, dict | list) else None,
)
def test_an_invalid_case_is_reported_with_file_line_and_what_is_wrong_before_any_model_call(tmp_path: Path, line, problem):
    path = write(tmp_path / "calc", "cases.jsonl", GOOD, line)
    model = CountingModel()

    with pytest.raises(DatasetError) as raised:
        evaluate([path], model)

    assert len(raised.value.problems) == 1
    assert raised.value.problems[0].startswith(f"{path}:2: ") and problem in raised.value.problems[0]
    assert model.calls == 0


@pytest.mark.parametrize(
    ("thresholds", "problem"),
    [({"judge": 1.2}, "--threshold judge=1.2: a threshold is in [0, 1]"), ({"vibes": 0.5}, "--threshold vibes: unknown scorer")],
)
def test_an_unknown_scorer_or_an_out_of_range_threshold_on_the_command_line_fails_before_any_model_call(
    tmp_path: Path, thresholds, problem
):
    path = write(tmp_path / "calc", "cases.jsonl", GOOD)
    model = CountingModel()

    with pytest.raises(DatasetError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        evaluate([path], model, **thresholds)

    assert model.calls == 0


def test_every_bad_line_of_every_file_is_reported_at_once(tmp_path: Path):
    first = write(tmp_path / "calc", "a.jsonl", "nope", GOOD)
    second = write(tmp_path / "calc", "b.jsonl", GOOD, {**GOOD, "id": "sum"})

    with pytest.raises(DatasetError) as raised:
        load_datasets([tmp_path])

    assert [p.split(": ", 1)[0] for p in raised.value.problems] == [f"{first}:1", f"{second}:2"]
    assert "id 'sum' is already used on line 1" in raised.value.problems[1]


def test_a_missing_path_and_an_empty_folder_are_errors(tmp_path: Path):
    (tmp_path / "empty").mkdir()

    with pytest.raises(DatasetError) as raised:
        load_datasets([tmp_path / "absent.jsonl", tmp_path / "empty"])

    assert raised.value.problems == [
        f"{tmp_path / 'absent.jsonl'}: no such file or folder",
        f"{tmp_path / 'empty'}: no *.jsonl dataset in this folder",
    ]


def test_a_valid_dataset_runs_each_case_once_named_by_agent_folder_file_and_id(tmp_path: Path):
    path = write(tmp_path / "calc", "arith.jsonl", GOOD, {"input": "what is 3 * 3", "expect": {"contains": "9"}})
    model = CountingModel()

    report = evaluate([path], model)

    assert [c.key for c in report.cases] == ["calc/arith:sum", "calc/arith:line-2"]
    assert report.passed and model.calls == 4  # two model calls a case: the tool call, then the answer


@pytest.mark.parametrize("agent", ["demo", "billing", "technical", "account", "worker", "router", "supervisor"])
def test_every_shipped_dataset_of_the_demo_agents_is_valid(repo_root: Path, agent: str):
    datasets = load_datasets([repo_root / "evals" / agent])

    assert datasets and all(d.agent == agent and d.cases for d in datasets)


def test_a_tag_selects_the_cases_that_carry_it_after_every_line_is_validated(tmp_path: Path):
    path = write(
        tmp_path / "calc", "cases.jsonl", {**GOOD, "tags": ["smoke"]}, {"id": "slow", "input": "x", "expect": {"contains": "x"}}
    )
    bad = write(tmp_path / "calc", "bad.jsonl", {"id": "broken", "input": "x", "expect": {"containz": "x"}})

    (dataset,) = load_datasets([path], tags=["smoke"])
    with pytest.raises(DatasetError, match=r"bad\.jsonl:1"):
        load_datasets([path, bad], tags=["smoke"])
    with pytest.raises(DatasetError, match="no case has the tag nightly"):
        load_datasets([path], tags=["nightly"])

    assert [case.id for case in dataset.cases] == ["sum"]
