"""Evals: datasets of cases (``evals/<agent>/*.jsonl``), scorers, an LLM judge, and a runner that gates releases.

The CLI's ``agentrail eval``, the canary's pre-traffic hook (:mod:`agentrail_runtime.evals.canary`) and, next, the
shadow report use this package.
"""

from agentrail_runtime.evals.dataset import (
    DEFAULT_THRESHOLDS,
    SCORERS,
    Dataset,
    DatasetError,
    EvalCase,
    Expectations,
    JudgeCriteria,
    LoadedCase,
    ToolCallExpectation,
    load_datasets,
    threshold_problems,
)
from agentrail_runtime.evals.judge import Judge, JudgeVerdict, LocalJudge, ModelJudge
from agentrail_runtime.evals.observation import Observation, ObservedToolCall
from agentrail_runtime.evals.report import CaseResult, EvalReport, RegressionCheck
from agentrail_runtime.evals.runner import DEFAULT_WORKERS, InProcessTarget, Target, run_case, run_datasets
from agentrail_runtime.evals.scorers import Score, score_case

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DEFAULT_WORKERS",
    "SCORERS",
    "CaseResult",
    "Dataset",
    "DatasetError",
    "EvalCase",
    "EvalReport",
    "Expectations",
    "InProcessTarget",
    "Judge",
    "JudgeCriteria",
    "JudgeVerdict",
    "LoadedCase",
    "LocalJudge",
    "ModelJudge",
    "Observation",
    "ObservedToolCall",
    "RegressionCheck",
    "Score",
    "Target",
    "ToolCallExpectation",
    "load_datasets",
    "run_case",
    "run_datasets",
    "score_case",
    "threshold_problems",
]
