"""``agentrail eval``: run eval datasets against an agent in process, local mode or a URL, and gate on the scores.

Exit codes: 0 every gate passed; 1 a case fell below a threshold, did not run, or the baseline comparison failed;
2 a usage or dataset error (nothing ran).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agentrail_cli.errors import TargetError
from agentrail_cli.synth import SynthError, default_state_dir, find_project_dir

if TYPE_CHECKING:
    from agentrail_runtime.agent.definition import AgentDefinition
    from agentrail_runtime.evals import CaseResult, Dataset, EvalReport, Judge, LoadedCase, Observation, Target

#: The agent evaluated in process when no --agent is given: the function's default (AGENT_DEFINITION).
DEFAULT_AGENT = "agentrail_runtime.demo:definition"
#: ``--workers`` of eval and shadow report: the runtime's ``evals.runner.DEFAULT_WORKERS``, copied so that starting
#: the CLI imports no runtime code (about 0.45 s); tests/unit/test_cli_defaults.py keeps them equal.
DEFAULT_WORKERS = 4
DEFAULT_MAX_REGRESSION = 0.05
#: The patterns whose API takes tasks (POST /tasks, then GET /tasks/{id} until it finishes) instead of POST /invoke.
TASK_PATTERNS = frozenset({"async", "multiagent", "hierarchical"})
#: A task stops being polled in one of these states.
SETTLED_TASK_STATES = frozenset({"succeeded", "failed", "cancelled", "budget_exceeded", "waiting_approval"})


def add_eval_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``agentrail eval`` on the ``agentrail`` parser."""
    run = commands.add_parser(
        "eval",
        help="run eval datasets (evals/<agent>/*.jsonl) and gate on their scores",
        description="Run eval datasets against an agent in process (default), local mode (--local) or a URL (--url); "
        "print a table, write reports, and exit 1 when a gate fails (2 on a usage or dataset error: nothing ran).",
    )
    run.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="dataset files or folders; default: evals/<name>/ of each --agent (required with --local or --url)",
    )
    where = run.add_argument_group("target (in process by default)")
    where.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="REF",
        help=f"in process: an agent definition, package.module:attribute, repeatable; a dataset in evals/<name>/ runs "
        f"on the agent of that name (default: $AGENT_DEFINITION, else {DEFAULT_AGENT})",
    )
    where.add_argument("--model", default="local", help="in process: the agent's model spec (default: %(default)s)")
    where.add_argument("--local", action="store_true", help="against local mode (a running `agentrail local`)")
    where.add_argument("--ready-file", type=Path, help="local mode's ready file (default: .agentrail/local.json in the project)")
    where.add_argument("--pattern", default="stateless", help="--local: the API to call, by pattern (default: %(default)s)")
    where.add_argument("--as", dest="principal", help="--local: the local user to sign as (default: the first)")
    where.add_argument("--url", help="against a stage URL (POST /invoke), signed with SigV4 by default")
    where.add_argument("--api-key", help="--url: send x-api-key instead of signing")
    where.add_argument("--token", help="--url: send a Cognito token in Authorization instead of signing")
    where.add_argument("--region", help="--url: signing Region (default: from the URL)")
    where.add_argument(
        "--api",
        choices=["invoke", "tasks"],
        help="--local, --url: POST /invoke, or POST /tasks and poll the task (default: tasks for the async, multiagent "
        "and hierarchical patterns, else invoke)",
    )
    where.add_argument("--task-type", help="--api tasks: the task_type of each task (e.g. research, long, reviewed)")
    where.add_argument(
        "--timeout", type=float, default=120.0, help="seconds a case may take over HTTP, polling included (default: %(default)s)"
    )
    gates = run.add_argument_group("scoring and gates")
    gates.add_argument(
        "--judge-model",
        default="local",
        help="the LLM judge's model spec, e.g. bedrock:amazon.nova-lite-v1:0 (default: %(default)s)",
    )
    gates.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="SCORER=VALUE",
        help="the score in [0, 1] a scorer must reach (defaults: 1 for each deterministic scorer, 0.7 for judge); repeatable",
    )
    gates.add_argument(
        "--tag", action="append", default=[], help="run only the cases with this tag (e.g. smoke); repeatable: any of them"
    )
    gates.add_argument("--baseline", type=Path, help="a saved --json report to compare with")
    gates.add_argument(
        "--max-regression",
        type=float,
        default=DEFAULT_MAX_REGRESSION,
        help="with --baseline: how far the mean score, or one scorer's mean, may drop (default: %(default)s)",
    )
    out = run.add_argument_group("output")
    out.add_argument("--json", dest="json_report", type=Path, metavar="FILE", help="write the JSON report (a later --baseline)")
    out.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML for CI")
    out.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="cases run at once (default: %(default)s)")
    progress = out.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", action="store_true", default=None, help="show the progress bar even when stderr is no terminal"
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show the progress bar")
    out.add_argument("--verbose", action="store_true", help="in process: also print the agent's JSON logs")
    run.set_defaults(run=run_eval, usage_error=run.error)


class UsageError(Exception):
    """Bad arguments or datasets: printed as one message, exit 2, nothing ran."""


def run_eval(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from agentrail_runtime.evals import DatasetError

    try:
        plan = _plan(args)
    except (UsageError, DatasetError, TargetError) as error:
        print(f"agentrail eval: {error}", file=err)
        return 2
    total = sum(len(d.cases) for d in plan.datasets)
    bar = _Progress(total, err, enabled=args.progress if args.progress is not None else err.isatty())
    from agentrail_runtime.evals import run_datasets

    try:
        report = run_datasets(
            plan.datasets,
            plan.target,
            judge=plan.judge,
            target_name=plan.target_name,
            thresholds=plan.thresholds,
            workers=args.workers,
            on_result=bar.advance,
            agent_versions=plan.agent_versions,
        )
    finally:
        bar.close()
        plan.close()
    if plan.baseline is not None:
        report = report.compare(plan.baseline, max_regression=args.max_regression, baseline_name=str(args.baseline))
    if args.json_report:
        report.write_json(args.json_report)
    if args.junit:
        args.junit.write_text(report.to_junit())
    _print_report(report, out)
    return 0 if report.gate_passed else 1


class _Plan:
    """Everything validated before the first model call: datasets, thresholds, target, judge and baseline."""

    def __init__(self) -> None:
        self.datasets: list[Dataset] = []
        self.thresholds: dict[str, float] = {}
        self.target: Target
        self.target_name = ""
        self.judge: Judge
        self.baseline: EvalReport | None = None
        self.agent_versions: dict[str, str] = {}
        self.closers: list[Any] = []

    def close(self) -> None:
        for closer in self.closers:
            closer()


def _plan(args: argparse.Namespace) -> _Plan:
    from agentrail_runtime.evals import EvalReport, load_datasets

    plan = _Plan()
    remote = bool(args.local or args.url)
    if args.local and args.url:
        raise UsageError("pass either --local or --url, not both")
    if remote and args.agent:
        raise UsageError("--agent runs an agent in process; with --local or --url the agent is the one behind the API")
    if remote and not args.paths:
        raise UsageError("name the datasets to run against the API, e.g. `agentrail eval evals/demo --local`")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    if not 0.0 <= args.max_regression <= 1.0:
        raise UsageError("--max-regression is a fraction of the score, in [0, 1]")
    plan.thresholds = _thresholds(args.threshold)
    definitions = [] if remote else _definitions(args.agent or [os.environ.get("AGENT_DEFINITION") or DEFAULT_AGENT])
    paths = args.paths or _default_paths(definitions)
    plan.datasets = load_datasets(paths, thresholds=plan.thresholds, tags=args.tag)
    plan.judge = _judge(args.judge_model)
    if args.baseline is not None:
        try:
            plan.baseline = EvalReport.read(args.baseline)
        except ValueError as error:
            raise UsageError(str(error)) from None
    if args.url:
        plan.target, plan.target_name = _api_target(plan, _url_auth(args), args.url, args), args.url
    elif args.local:
        plan.target, plan.target_name = _local_target(plan, args)
    else:
        plan.target = _in_process(plan, definitions, args)
        plan.target_name = f"in process on {args.model}"
    return plan


def _thresholds(pairs: Sequence[str]) -> dict[str, float]:
    from agentrail_runtime.evals import threshold_problems

    thresholds: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            thresholds[name.strip()] = float(value)
        except ValueError:
            raise UsageError(f"--threshold expects SCORER=VALUE with a number, got {pair!r}") from None
        if not sep:
            raise UsageError(f"--threshold expects SCORER=VALUE, got {pair!r}")
    problems = threshold_problems(thresholds)
    if problems:
        raise UsageError("; ".join(problems))
    return thresholds


def _definitions(references: Sequence[str]) -> list[AgentDefinition]:
    from agentrail_runtime.agent.definition import load_definition

    definitions = []
    for reference in references:
        try:
            definitions.append(load_definition(reference))
        except (ValueError, ImportError, AttributeError) as error:
            raise UsageError(f"--agent {reference}: {error}") from None
    return definitions


def _default_paths(definitions: Sequence[AgentDefinition]) -> list[Path]:
    try:
        root = find_project_dir() / "evals"
    except SynthError:
        root = Path.cwd() / "evals"
    paths = [root / d.name for d in definitions]
    missing = [str(p) for p in paths if not p.is_dir()]
    if missing:
        raise UsageError(f"no datasets: {', '.join(missing)} do not exist (pass dataset paths, or add evals/<agent>/*.jsonl)")
    return paths


def _judge(spec: str) -> Judge:
    from agentrail_runtime.evals import LocalJudge, ModelJudge
    from agentrail_runtime.models.base import ModelConfigError
    from agentrail_runtime.models.registry import ProviderFactory

    if spec.strip() == "local":
        return LocalJudge()
    try:
        return ModelJudge(ProviderFactory().get(spec))
    except ModelConfigError as error:
        raise UsageError(f"--judge-model: {error}") from None


def _in_process(plan: _Plan, definitions: Sequence[AgentDefinition], args: argparse.Namespace) -> Target:
    from agentrail_runtime.evals import InProcessTarget
    from agentrail_runtime.models.base import ModelConfigError
    from agentrail_runtime.models.registry import ProviderFactory
    from agentrail_runtime.observability import logger

    try:
        model = ProviderFactory().get(args.model)
    except ModelConfigError as error:
        raise UsageError(f"--model: {error}") from None
    by_name = {d.name: d for d in definitions}
    chosen: dict[str, AgentDefinition] = {}
    for dataset in plan.datasets:
        definition = by_name.get(dataset.agent) or (definitions[0] if len(definitions) == 1 else None)
        if definition is None:
            raise UsageError(
                f"{dataset.path}: no --agent named {dataset.agent!r} (agents given: {', '.join(by_name)}); "
                "a dataset in evals/<name>/ runs on the agent of that name"
            )
        chosen[dataset.agent] = definition
    try:
        targets = {agent: InProcessTarget(definition, model) for agent, definition in chosen.items()}
    except ValueError as error:  # the AGENT_* settings the agent runs with (pydantic names the variable)
        raise UsageError(f"the agent's settings (AGENT_* variables): {error}") from None
    plan.agent_versions = {agent: target.version for agent, target in targets.items()}
    if not args.verbose:
        previous = logger.log_level
        logger.setLevel("WARNING")  # the agent's JSON log lines would bury the table
        plan.closers.append(lambda: logger.setLevel(previous))

    def run(case: LoadedCase) -> Observation:
        return targets[case.agent](case)

    return run


def _url_auth(args: argparse.Namespace) -> Any:
    from agentrail_cli.client import remote_auth

    try:
        return remote_auth(url=args.url, token=args.token, api_key=args.api_key, region=args.region)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _local_target(plan: _Plan, args: argparse.Namespace) -> tuple[Target, str]:
    from agentrail_cli.client import LocalReadyFile

    ready = args.ready_file or default_state_dir() / "local.json"
    if not ready.is_file():
        raise TargetError(f"local mode is not running (no {ready}); start it with `agentrail local`")
    document = LocalReadyFile.read(ready)
    apis = document.apis(args.pattern)
    if len(apis) != 1:
        served = ", ".join(sorted({str(a.get("pattern")) for a in document.apis()})) or "none"
        raise TargetError(f"{len(apis)} local APIs of pattern {args.pattern!r} (served: {served}); pass --pattern")
    try:
        auth = document.auth(apis[0], args.principal)
    except LookupError as error:
        raise TargetError(str(error)) from None
    return _api_target(plan, auth, apis[0]["url"], args), f"local {args.pattern} at {apis[0]['url']}"


def _api_target(plan: _Plan, auth: Any, url: str, args: argparse.Namespace) -> Target:
    from agentrail_cli.client import AgentApiClient, ApiCallError, json_or_text
    from agentrail_runtime.evals import Observation

    client = AgentApiClient(url, auth=auth, timeout=args.timeout)
    plan.closers.append(client.close)
    tasks = args.api == "tasks" or (args.api is None and args.local and args.pattern in TASK_PATTERNS)

    def invoke(case: LoadedCase) -> Observation:
        started = time.perf_counter()
        body = client.invoke(case.case.input)
        return Observation.of_api(body, latency_ms=(time.perf_counter() - started) * 1000)

    def task(case: LoadedCase) -> Observation:
        started = time.perf_counter()
        request: dict[str, Any] = {"message": case.case.input}
        if args.task_type:
            request["task_type"] = args.task_type
        response = client.request("POST", "/tasks", json=request)
        if response.status_code != 202:
            raise ApiCallError(response.status_code, json_or_text(response))
        task_id = response.json()["task_id"]
        while True:
            reply = client.request("GET", f"/tasks/{task_id}")
            if reply.status_code != 200:
                raise ApiCallError(reply.status_code, json_or_text(reply))
            body = reply.json()
            elapsed = time.perf_counter() - started
            if body.get("status") in SETTLED_TASK_STATES:
                return Observation.of_task(body, latency_ms=elapsed * 1000)
            if elapsed > args.timeout:
                raise TimeoutError(f"task {task_id} is still {body.get('status')} after {args.timeout:g} s")
            time.sleep(0.2)

    return task if tasks else invoke


class _Progress:
    """A one-line progress bar on stderr, redrawn as cases finish (from the worker threads)."""

    def __init__(self, total: int, stream: TextIO, *, enabled: bool, width: int = 30) -> None:
        self.total, self.stream, self.enabled, self.width = total, stream, enabled and total > 0, width
        self.done = self.failed = 0
        self._lock = threading.Lock()
        self._draw()

    def advance(self, result: CaseResult) -> None:
        with self._lock:
            self.done += 1
            self.failed += not result.passed
            self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        filled = self.width * self.done // self.total
        failed = f", {self.failed} failed" if self.failed else ""
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\reval [{bar}] {self.done}/{self.total}{failed}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _print_report(report: EvalReport, out: TextIO) -> None:
    rows = [("CASE", "SCORE", "RESULT", "DETAIL")]
    for case in report.cases:
        skipped = [s.scorer for s in case.scores if s.skipped]
        detail = "; ".join(case.failures) or (f"skipped: {', '.join(skipped)}" if skipped else "")
        score = "-" if case.score is None else f"{case.score:.2f}"
        rows.append((case.key, score, "pass" if case.passed else "FAIL", detail[:160]))
    _table(rows, out)
    print(file=out)
    summary = [("SCORER", "CASES", "MEAN", "FAILED", "SKIPPED")]
    summary += [
        (s.scorer, str(s.cases), "-" if s.mean is None else f"{s.mean:.2f}", str(s.failed), str(s.skipped))
        for s in report.scorers
    ]
    _table(summary, out)
    failed = report.failed_cases
    mean = "-" if report.score is None else f"{report.score:.4f}"
    print(
        f"\n{len(report.cases)} cases: {len(report.cases) - len(failed)} passed, {len(failed)} failed; mean score {mean} "
        f"({report.target}, judge {report.judge}) in {report.duration_seconds:.1f} s",
        file=out,
    )
    if failed:
        print(f"Failing cases: {', '.join(c.key for c in failed)}", file=out)
    check = report.regression
    if check is not None:
        base = "-" if check.baseline_score is None else f"{check.baseline_score:.4f}"
        now = "-" if check.score is None else f"{check.score:.4f}"
        verdict = "passed" if check.passed else "FAILED: " + "; ".join(check.failures)
        print(
            f"Baseline {check.baseline}: mean {now} against {base} (max regression {check.max_regression:g}): {verdict}", file=out
        )
        if check.regressed_cases:
            listed = ", ".join(f"{c.key} ({c.baseline:g} -> {c.score:g})" for c in check.regressed_cases)
            print(f"Regressed cases: {listed}", file=out)
        if check.missing_cases:
            print(f"In the baseline only (not compared): {', '.join(check.missing_cases)}", file=out)
    print("Gate: " + ("passed" if report.gate_passed else "FAILED"), file=out)


def _table(rows: Sequence[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)


__all__ = ["DEFAULT_AGENT", "add_eval_command", "run_eval"]
