"""Run validated datasets against a target, in parallel, and score every case."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from agentrail_runtime.agent.build import build_agent, system_prompt_of
from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.version import agent_version
from agentrail_runtime.config import RuntimeSettings
from agentrail_runtime.evals.dataset import DEFAULT_THRESHOLDS, Dataset, LoadedCase
from agentrail_runtime.evals.judge import Judge
from agentrail_runtime.evals.observation import Observation
from agentrail_runtime.evals.report import CaseResult, EvalReport
from agentrail_runtime.evals.scorers import score_case
from agentrail_runtime.metering.pricing import PriceTable
from agentrail_runtime.models.base import ModelProvider

#: Cases (or shadow comparisons) run at once, by default: each may wait on a model or a judge. The CLI's ``--workers``
#: defaults to the same (a test keeps them equal; the CLI does not import the runtime to start).
DEFAULT_WORKERS = 4
#: Runs one case and reports what happened; raises when the run itself failed (the case is then an error).
Target = Callable[[LoadedCase], Observation]
#: Called once per finished case, from the worker threads, in completion order (a progress bar).
ResultSink = Callable[[CaseResult], None]


class InProcessTarget:
    """An agent run in this process, as its function would run it: the definition's prompt, tools and guards, the
    settings' limits and prices (``AGENT_*``, defaults otherwise), on ``model``.

    Parameters
    ----------
    definition:
        The agent (``load_definition("package.module:attribute")``).
    model:
        The provider the agent runs on (``ProviderFactory().get("local")``).
    settings:
        Limits, system prompt override and prices. Default: ``RuntimeSettings()`` with ``model``'s spec.
    """

    def __init__(self, definition: AgentDefinition, model: ModelProvider, settings: RuntimeSettings | None = None) -> None:
        s = settings or RuntimeSettings(model=model.name)
        self.definition = definition
        self.version = agent_version(definition, s)
        self.agent = build_agent(
            definition,
            model=model,
            system_prompt=system_prompt_of(definition, s.system_prompt),
            max_steps=s.max_steps,
            token_budget=s.token_budget,
            max_output_tokens=s.max_output_tokens,
            max_tool_result_bytes=s.max_tool_result_bytes,
            prices=PriceTable(s.price_table),
            version=self.version,
        )

    def __call__(self, case: LoadedCase) -> Observation:
        started = time.perf_counter()
        result = self.agent.run(case.case.input)
        return Observation.of_result(result, latency_ms=(time.perf_counter() - started) * 1000)


def run_case(case: LoadedCase, target: Target, *, judge: Judge, thresholds: Mapping[str, float]) -> CaseResult:
    """Run and score one case; a target or judge that raises makes the case an error, never stops the run."""
    common: dict[str, Any] = {
        "key": case.key,
        "agent": case.agent,
        "dataset": case.dataset,
        "id": case.id,
        "line": case.line,
        "file": case.path,
        "input": case.case.input,
    }
    limits = {**thresholds, **case.case.thresholds}
    try:
        observation = target(case)
        scores = score_case(case.case.expect, observation, prompt=case.case.input, thresholds=limits, judge=judge)
    except Exception as error:  # the case failed to run or to be judged: reported as the case's error
        return CaseResult(**common, passed=False, score=0.0, error=f"{type(error).__name__}: {error}")
    counted = [s.score for s in scores if not s.skipped]
    return CaseResult(
        **common,
        passed=all(s.passed for s in scores),
        score=round(sum(counted) / len(counted), 4) if counted else None,
        scores=scores,
        answer=observation.answer,
        status=observation.status,
        steps=observation.steps,
        cost_usd=observation.cost_usd,
        latency_ms=round(observation.latency_ms, 3),
    )


def run_datasets(
    datasets: Sequence[Dataset],
    target: Target,
    *,
    judge: Judge,
    target_name: str,
    thresholds: Mapping[str, float] | None = None,
    workers: int = DEFAULT_WORKERS,
    on_result: ResultSink | None = None,
    agent_versions: Mapping[str, str] | None = None,
) -> EvalReport:
    """Run every case of ``datasets`` (already validated: :func:`~agentrail_runtime.evals.dataset.load_datasets`)
    on ``workers`` threads, and report.

    Parameters
    ----------
    thresholds:
        Overrides of the default thresholds, per scorer (a case's own ``thresholds`` win over them).

    Raises
    ------
    ValueError
        When ``workers`` is below 1 (before any case runs).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    cases = [case for dataset in datasets for case in dataset.cases]
    started = time.perf_counter()
    results: list[CaseResult] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eval") as pool:
        futures = [pool.submit(run_case, case, target, judge=judge, thresholds=limits) for case in cases]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            if on_result is not None:
                on_result(result)
    return EvalReport.build(
        results,
        target=target_name,
        judge=judge.name,
        agent_versions=dict(agent_versions or {}),
        duration_seconds=time.perf_counter() - started,
    )


__all__ = ["DEFAULT_WORKERS", "InProcessTarget", "ResultSink", "Target", "run_case", "run_datasets"]
