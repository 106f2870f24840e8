"""An eval run's report: per case and per scorer, the gates, the baseline comparison, and JUnit XML for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from agentrail_runtime.evals.dataset import SCORERS
from agentrail_runtime.evals.scorers import Score

#: Bumped when a report's shape changes in a way an older baseline cannot be compared with.
REPORT_VERSION = 1


class CaseResult(BaseModel):
    """One case's run and scores. ``score`` is the mean of its scores that were not skipped (0 on an error)."""

    key: str
    agent: str
    dataset: str
    id: str
    line: int
    file: str = ""
    input: str
    passed: bool
    score: float | None
    scores: list[Score] = Field(default_factory=list)
    error: str | None = None
    answer: str | None = None
    status: str | None = None
    steps: int | None = None
    cost_usd: float | None = None
    latency_ms: float = 0.0

    @property
    def failures(self) -> list[str]:
        """Why the case failed, one phrase per failing scorer (or its error)."""
        if self.error is not None:
            return [f"error: {self.error}"]
        return [
            f"{s.scorer} {s.score:g} < {s.threshold:g}" + (f": {s.detail}" if s.detail else "")
            for s in self.scores
            if not s.passed
        ]


class ScorerSummary(BaseModel):
    scorer: str
    cases: int
    mean: float | None
    failed: int
    skipped: int


class CaseRegression(BaseModel):
    key: str
    baseline: float
    score: float


class RegressionCheck(BaseModel):
    """This run against a saved baseline report: the gate fails when the mean score, or one scorer's mean, dropped
    by more than ``max_regression``."""

    baseline: str
    max_regression: float
    baseline_score: float | None
    score: float | None
    passed: bool
    scorer_drops: dict[str, float] = Field(default_factory=dict)
    regressed_cases: list[CaseRegression] = Field(default_factory=list)
    missing_cases: list[str] = Field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        problems = []
        if self.baseline_score is not None and self.score is not None:
            drop = self.baseline_score - self.score
            if drop > self.max_regression + 1e-9:
                problems.append(f"mean score {self.score:.4f} < baseline {self.baseline_score:.4f} - {self.max_regression:g}")
        problems += [
            f"{name} mean dropped by {drop:.4f} > {self.max_regression:g}"
            for name, drop in self.scorer_drops.items()
            if drop > self.max_regression + 1e-9
        ]
        return problems


class EvalReport(BaseModel):
    """The JSON report (``--json``), also the baseline a later run compares with (``--baseline``)."""

    report_version: int = REPORT_VERSION
    target: str
    judge: str
    agent_versions: dict[str, str] = Field(default_factory=dict)
    duration_seconds: float = 0.0
    score: float | None
    passed: bool
    cases: list[CaseResult]
    scorers: list[ScorerSummary]
    regression: RegressionCheck | None = None

    @classmethod
    def build(
        cls,
        results: Sequence[CaseResult],
        *,
        target: str,
        judge: str,
        agent_versions: dict[str, str] | None = None,
        duration_seconds: float = 0.0,
    ) -> EvalReport:
        ordered = sorted(results, key=lambda r: (r.agent, r.dataset, r.line))
        return cls(
            target=target,
            judge=judge,
            agent_versions=dict(agent_versions or {}),
            duration_seconds=round(duration_seconds, 3),
            score=_mean([r.score for r in ordered]),
            passed=all(r.passed for r in ordered),
            cases=list(ordered),
            scorers=_summaries(ordered),
        )

    @property
    def failed_cases(self) -> list[CaseResult]:
        return [case for case in self.cases if not case.passed]

    @property
    def gate_passed(self) -> bool:
        """Every case passed its thresholds, and the baseline comparison (if any) passed."""
        return self.passed and (self.regression is None or self.regression.passed)

    def compare(self, baseline: EvalReport, *, max_regression: float, baseline_name: str = "") -> EvalReport:
        """This report with :attr:`regression` set against ``baseline``."""
        before = {c.key: c for c in baseline.cases}
        now = {c.key: c for c in self.cases}
        shared = [k for k in now if k in before]
        # Only the cases both runs have are compared, so adding a case to a dataset never reads as a regression.
        base_score = _mean([before[k].score for k in shared])
        score = _mean([now[k].score for k in shared])
        base_scorers = {s.scorer: s.mean for s in _summaries([before[k] for k in shared])}
        drops = {
            s.scorer: round(base_scorers[s.scorer] - s.mean, 4)  # type: ignore[operator]
            for s in _summaries([now[k] for k in shared])
            if s.mean is not None and base_scorers.get(s.scorer) is not None
        }
        regressed = [
            CaseRegression(key=k, baseline=before[k].score or 0.0, score=now[k].score or 0.0)
            for k in shared
            if (before[k].score or 0.0) - (now[k].score or 0.0) > max_regression + 1e-9
        ]
        check = RegressionCheck(
            baseline=baseline_name,
            max_regression=max_regression,
            baseline_score=base_score,
            score=score,
            passed=True,
            scorer_drops={k: v for k, v in drops.items() if v > 0},
            regressed_cases=regressed,
            missing_cases=sorted(set(before) - set(now)),
        )
        check.passed = not check.failures
        return self.model_copy(update={"regression": check})

    def to_junit(self) -> str:
        """JUnit XML: one ``testsuite`` per dataset, one ``testcase`` per case, a failure per case below a threshold,
        an error per case that did not run, and a ``baseline`` suite when a baseline was compared."""
        root = ET.Element("testsuites", name="agentrail eval")
        suites: dict[str, list[CaseResult]] = {}
        for case in self.cases:
            suites.setdefault(f"{case.agent}/{case.dataset}", []).append(case)
        totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for name, cases in suites.items():
            suite = ET.SubElement(root, "testsuite", name=name)
            counts = {"tests": len(cases), "failures": 0, "errors": 0, "skipped": 0}
            for case in cases:
                element = ET.SubElement(
                    suite,
                    "testcase",
                    classname=name.replace("/", "."),
                    name=case.id,
                    time=f"{case.latency_ms / 1000:.3f}",
                    file=case.file or f"evals/{name}.jsonl",
                    line=str(case.line),
                )
                if case.error is not None:
                    counts["errors"] += 1
                    ET.SubElement(element, "error", message=case.error[:500], type="run").text = case.error
                elif not case.passed:
                    counts["failures"] += 1
                    failures = case.failures
                    ET.SubElement(element, "failure", message=failures[0][:500], type="threshold").text = "\n".join(failures)
                elif case.scores and all(s.skipped for s in case.scores):
                    counts["skipped"] += 1
                    ET.SubElement(element, "skipped", message="; ".join(s.detail for s in case.scores))
                ET.SubElement(element, "system-out").text = f"input: {case.input}\nanswer: {case.answer}"
            for key, value in counts.items():
                suite.set(key, str(value))
                totals[key] += value
        if self.regression is not None:
            suite = ET.SubElement(root, "testsuite", name="baseline", tests="1")
            element = ET.SubElement(suite, "testcase", classname="baseline", name="max_regression")
            failures = self.regression.failures
            suite.set("failures", "1" if failures else "0")
            totals["tests"] += 1
            if failures:
                totals["failures"] += 1
                detail = failures + [f"{c.key}: {c.baseline:g} -> {c.score:g}" for c in self.regression.regressed_cases]
                ET.SubElement(element, "failure", message=failures[0], type="regression").text = "\n".join(detail)
        for key, value in totals.items():
            root.set(key, str(value))
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> EvalReport:
        """A saved report (a baseline).

        Raises
        ------
        ValueError
            When the file is not a report of this version.
        """
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: cannot read the baseline report: {error}") from None
        if not isinstance(document, dict) or document.get("report_version") != REPORT_VERSION:
            raise ValueError(f"{path}: not an agentrail eval report of version {REPORT_VERSION}")
        try:
            return cls.model_validate(document)
        except ValidationError as error:
            raise ValueError(f"{path}: not an agentrail eval report: {error.error_count()} problems") from None


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


def _summaries(results: Sequence[CaseResult]) -> list[ScorerSummary]:
    summaries = []
    for name in SCORERS:
        scores = [s for r in results for s in r.scores if s.scorer == name]
        if not scores:
            continue
        counted = [s.score for s in scores if not s.skipped]
        summaries.append(
            ScorerSummary(
                scorer=name,
                cases=len(scores),
                mean=_mean(counted),
                failed=sum(not s.passed for s in scores),
                skipped=sum(s.skipped for s in scores),
            )
        )
    return summaries


__all__ = ["REPORT_VERSION", "CaseRegression", "CaseResult", "EvalReport", "RegressionCheck", "ScorerSummary"]
