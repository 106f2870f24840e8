"""The scorers: each reads a case's expectation and an observation, and gives a score in [0, 1].

Deterministic scorers give 1 or 0, except ``contains`` and ``tool_called`` with several items, which give the
fraction satisfied. A scorer that lacks its evidence (``max_cost_usd`` without a cost, tool arguments from an HTTP
API) is *skipped*: reported, never counted as a pass or a failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from agentrail_runtime.evals.dataset import SCORERS, Expectations, ToolCallExpectation
from agentrail_runtime.evals.judge import Judge
from agentrail_runtime.evals.observation import Observation, ObservedToolCall
from agentrail_runtime.evals.schema import schema_errors


class Score(BaseModel):
    """One scorer's verdict on one case."""

    scorer: str
    score: float
    threshold: float
    passed: bool
    skipped: bool = False
    detail: str = ""


_Verdict = tuple[float | None, str]


def _exact(expected: str, observation: Observation, _: str) -> _Verdict:
    answer = (observation.answer or "").strip()
    return (1.0, "") if answer == expected.strip() else (0.0, f"expected exactly {expected!r}, got {answer[:200]!r}")


def _contains(wanted: list[str], observation: Observation, _: str) -> _Verdict:
    answer = (observation.answer or "").casefold()
    missing = [text for text in wanted if text.casefold() not in answer]
    score = (len(wanted) - len(missing)) / len(wanted)
    return score, f"missing {missing}" if missing else ""


def _regex(pattern: str, observation: Observation, _: str) -> _Verdict:
    if re.search(pattern, observation.answer or ""):
        return 1.0, ""
    return 0.0, f"no match for /{pattern}/"


def _json_schema(schema: dict[str, Any], observation: Observation, _: str) -> _Verdict:
    text = (observation.answer or "").strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    try:
        document = json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        return 0.0, "the answer is not JSON"
    errors = schema_errors(document, schema)
    return (0.0, "; ".join(errors[:3])) if errors else (1.0, "")


def _tool_called(wanted: list[ToolCallExpectation], observation: Observation, _: str) -> _Verdict:
    if observation.tool_calls is None:
        return None, "the target does not report tool calls"
    met, problems, unverifiable = 0, [], False
    for item in wanted:
        calls = [c for c in observation.tool_calls if c.name == item.name]
        if not calls:
            called = sorted({c.name for c in observation.tool_calls}) or "no tool"
            problems.append(f"{item.name} was not called (called: {called})")
        elif not item.arguments:
            met += 1
        elif all(c.arguments is None for c in calls):
            unverifiable = True
        elif any(c.arguments is not None and matches(item.arguments, c.arguments) for c in calls):
            met += 1
        else:
            problems.append(f"{item.name} was called with {_arguments(calls)}, not {json.dumps(item.arguments)}")
    if unverifiable and not problems:
        return None, "the target does not report tool arguments"
    return met / len(wanted), "; ".join(problems)


def _arguments(calls: list[ObservedToolCall]) -> str:
    return " and ".join(json.dumps(c.arguments, sort_keys=True) for c in calls)


def matches(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` satisfies ``expected``: objects as subsets, lists item by item, ``{"$regex": ...}`` by
    :func:`re.search` on a string, and a number equal to its string (``12`` and ``"12"``)."""
    if isinstance(expected, dict) and set(expected) == {"$regex"}:
        return isinstance(actual, str) and re.search(expected["$regex"], actual) is not None
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected is actual
    if isinstance(expected, int | float) or isinstance(actual, int | float):
        try:
            return float(expected) == float(actual)
        except (TypeError, ValueError):
            return False
    return bool(expected == actual)


def _status(expected: str, observation: Observation, _: str) -> _Verdict:
    return (1.0, "") if observation.status == expected else (0.0, f"status {observation.status}, expected {expected}")


def _max_steps(limit: int, observation: Observation, _: str) -> _Verdict:
    return (1.0, "") if observation.steps <= limit else (0.0, f"{observation.steps} steps > {limit}")


def _max_cost(limit: float, observation: Observation, _: str) -> _Verdict:
    if observation.cost_usd is None:
        return None, "the target reported no cost (a model without a price)"
    return (1.0, "") if observation.cost_usd <= limit else (0.0, f"{observation.cost_usd:.6f} USD > {limit}")


_DETERMINISTIC: Mapping[str, Callable[[Any, Observation, str], _Verdict]] = {
    "exact": _exact,
    "contains": _contains,
    "regex": _regex,
    "json_schema": _json_schema,
    "tool_called": _tool_called,
    "status": _status,
    "max_steps": _max_steps,
    "max_cost_usd": _max_cost,
}
assert set(_DETERMINISTIC) | {"judge"} == set(SCORERS)


def score_case(
    expect: Expectations,
    observation: Observation,
    *,
    prompt: str,
    thresholds: Mapping[str, float],
    judge: Judge,
) -> list[Score]:
    """Every scorer ``expect`` names, on ``observation``, against ``thresholds`` (one per scorer).

    Raises
    ------
    ModelError
        When the judge's model fails (the runner reports the case as an error).
    """
    scores = []
    for name in expect.scorers():
        threshold = thresholds[name]
        value: float | None
        if name == "judge":
            assert expect.judge is not None
            verdict = judge.score(prompt=prompt, answer=observation.answer or "", rubric=expect.judge.rubric)
            value, detail = verdict.score, verdict.reason
        else:
            value, detail = _DETERMINISTIC[name](getattr(expect, name), observation, prompt)
        if value is None:
            scores.append(Score(scorer=name, score=0.0, threshold=threshold, passed=True, skipped=True, detail=detail))
            continue
        bounded = round(min(1.0, max(0.0, value)), 4)
        scores.append(Score(scorer=name, score=bounded, threshold=threshold, passed=bounded >= threshold, detail=detail))
    return scores


__all__ = ["Score", "matches", "score_case"]
