"""``agentrail shadow report``'s logic: score each candidate answer against the live one with the eval runner (its
scorers, its judge, its worker threads, and its rule that a judge error fails the case, never the run), and decide
whether the candidate may go on."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from statistics import fmean, median

from pydantic import BaseModel, Field

from agentrail_runtime.evals.dataset import Dataset, EvalCase, Expectations, JudgeCriteria, LoadedCase
from agentrail_runtime.evals.judge import Judge
from agentrail_runtime.evals.observation import Observation
from agentrail_runtime.evals.report import CaseResult
from agentrail_runtime.evals.runner import DEFAULT_WORKERS, run_datasets
from agentrail_runtime.evals.scorers import Score
from agentrail_runtime.shadow.comparisons import Comparison
from agentrail_runtime.shadow.models import RunSummary

#: The share of the live answer's content a candidate answer must cover (judge score), by default.
DEFAULT_MIN_AGREEMENT = 0.7
#: The mean score the candidate must reach for the verdict to pass, by default.
DEFAULT_MIN_SCORE = 0.8
#: The rubric an LLM judge gets; the local judge gets the live answer itself (it scores coverage of its key terms).
MODEL_RUBRIC = (
    "A good answer gives the same facts, figures and outcome as this reference answer, which the version now serving "
    "users gave to the same request (wording may differ): {live}"
)


class ScoredComparison(BaseModel):
    """One comparison, scored: ``score`` is the mean of its scorers (status agreement and the judge's); 0, with the
    ``error``, when it could not be scored (the judge's model failed)."""

    request_id: str
    message: str
    live_answer: str | None
    candidate_answer: str | None
    live_version: str
    candidate_version: str
    score: float
    scores: list[Score] = Field(default_factory=list)
    error: str | None = None


class SideTotals(BaseModel):
    """Medians of one side over the comparisons."""

    tokens: float = 0.0
    cost_usd: float | None = None
    steps: float = 0.0
    latency_ms: float = 0.0


class ShadowReport(BaseModel):
    """The verdict on a candidate from its shadow comparisons."""

    comparisons: int
    #: Comparisons that could not be scored (each counts as 0 in ``score``).
    errors: int = 0
    score: float | None
    min_score: float
    passed: bool
    judge: str
    live: SideTotals
    candidate: SideTotals
    candidate_versions: list[str]
    live_versions: list[str]
    worst: list[ScoredComparison] = Field(default_factory=list)
    dry_run_calls: int = 0


def rubric_for(judge: Judge, live_answer: str) -> str:
    if judge.name == "local":
        return re.sub(r"[\"“”]", " ", live_answer)  # no quoted phrase: every key term counts on its own
    return MODEL_RUBRIC.format(live=live_answer)


def comparison_case(comparison: Comparison, *, judge: Judge, line: int = 1) -> LoadedCase:
    """``comparison`` as an eval case of the candidate: the ``status`` scorer (the live outcome) and the ``judge``
    scorer (the live answer as the reference); a live answer that is empty is judged on status alone."""
    live = comparison.live
    judged = bool(live.answer and live.answer.strip())
    expect = Expectations(
        status=live.status,  # type: ignore[arg-type]
        judge=JudgeCriteria(rubric=rubric_for(judge, live.answer or "")) if judged else None,
    )
    # Built, not validated: a dataset's limits (id pattern, input length) are for files people write, and a live
    # request id or message need not meet them.
    case = EvalCase.model_construct(id=comparison.request_id, input=comparison.message, expect=expect, thresholds={}, tags=[])
    return LoadedCase(agent="shadow", dataset=comparison.kind, line=line, case=case)


def candidate_observation(comparison: Comparison) -> Observation:
    """What the candidate answered, as the scorers read it."""
    candidate = comparison.candidate
    return Observation(
        answer=candidate.answer,
        status=candidate.status,
        steps=candidate.steps,
        cost_usd=candidate.cost_usd,
        model=candidate.model,
        latency_ms=candidate.latency_ms,
    )


def _scored(comparison: Comparison, result: CaseResult) -> ScoredComparison:
    return ScoredComparison(
        request_id=comparison.request_id,
        message=comparison.message,
        live_answer=comparison.live.answer,
        candidate_answer=comparison.candidate.answer,
        live_version=comparison.live.agent_version,
        candidate_version=comparison.candidate.agent_version,
        score=result.score or 0.0,
        scores=result.scores,
        error=result.error,
    )


def shadow_report(
    comparisons: Iterable[Comparison],
    *,
    judge: Judge,
    min_score: float = DEFAULT_MIN_SCORE,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    worst: int = 5,
    candidate_version: str | None = None,
    workers: int = DEFAULT_WORKERS,
) -> ShadowReport:
    """Score every comparison (of ``candidate_version`` only, when given) and decide: the mean score must reach
    ``min_score``. No comparison at all fails the verdict (nothing says the candidate is good); one the judge could
    not score counts as 0 and is named in ``worst`` with its error.

    Raises
    ------
    ValueError
        When a threshold is outside [0, 1] or ``workers`` is below 1 (before any judge call).
    """
    for name, value in (("min_score", min_score), ("min_agreement", min_agreement)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    chosen = [c for c in comparisons if candidate_version is None or c.candidate.agent_version == candidate_version]
    # The eval runner scores them on ``workers`` threads; a judge that raises makes its comparison an error (score
    # 0), never stops the others.
    cases = tuple(comparison_case(c, judge=judge, line=line) for line, c in enumerate(chosen, start=1))
    run = run_datasets(
        [Dataset(path=Path("shadow"), agent="shadow", name="comparisons", cases=cases)],
        lambda case: candidate_observation(chosen[case.line - 1]),
        judge=judge,
        target_name="shadow",
        thresholds={"status": 1.0, "judge": min_agreement},
        workers=workers,
    )
    by_line = {result.line: result for result in run.cases}
    scored = [_scored(c, by_line[line]) for line, c in enumerate(chosen, start=1)]
    score = round(fmean(s.score for s in scored), 4) if scored else None
    return ShadowReport(
        comparisons=len(scored),
        errors=sum(1 for s in scored if s.error is not None),
        score=score,
        min_score=min_score,
        passed=score is not None and score >= min_score,
        judge=judge.name,
        live=_totals([c.live for c in chosen]),
        candidate=_totals([c.candidate for c in chosen]),
        live_versions=sorted({c.live.agent_version for c in chosen}),
        candidate_versions=sorted({c.candidate.agent_version for c in chosen}),
        worst=sorted(scored, key=lambda s: (s.score, s.request_id))[: max(0, worst)],
        dry_run_calls=sum(len(c.candidate.dry_run_calls) for c in chosen),
    )


def _totals(sides: list[RunSummary]) -> SideTotals:
    if not sides:
        return SideTotals()
    costs = [s.cost_usd for s in sides if s.cost_usd is not None]
    return SideTotals(
        tokens=median(s.input_tokens + s.output_tokens for s in sides),
        cost_usd=round(median(costs), 6) if costs else None,
        steps=median(s.steps for s in sides),
        latency_ms=round(median(s.latency_ms for s in sides), 3),
    )


__all__ = [
    "DEFAULT_MIN_AGREEMENT",
    "DEFAULT_MIN_SCORE",
    "ScoredComparison",
    "ShadowReport",
    "SideTotals",
    "candidate_observation",
    "comparison_case",
    "rubric_for",
    "shadow_report",
]
