"""``agentrail shadow report``: score the candidate's shadow answers against the live ones, print the verdict and the
worst disagreements, and gate on it.

Exit codes: 0 the verdict passed; 1 it failed (or there was nothing to compare); 2 a usage error (nothing was read).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from agentrail_cli.commands import _target, _target_arguments
from agentrail_cli.errors import TargetError
from agentrail_cli.evals import DEFAULT_WORKERS, UsageError, _judge, _table

if TYPE_CHECKING:
    from agentrail_cli.operations import Target
    from agentrail_runtime.shadow.report import ShadowReport

#: The stack output naming the comparison table (the stateless stack's, with shadow on).
TABLE_OUTPUT = "ShadowTableName"


def add_shadow_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``agentrail shadow report`` on the ``agentrail`` parser."""
    shadow = commands.add_parser("shadow", help="shadow deployment: compare the candidate's answers with the live ones")
    actions = shadow.add_subparsers(dest="shadow_command", required=True, metavar="ACTION")
    report = actions.add_parser(
        "report",
        help="score the comparison table (candidate against live) with the eval scorers and a judge; exit 1 below --min-score",
        description="Read the shadow comparison table (local mode, a deployed stack, or --table), score each candidate "
        "answer against the live one (same status; the judge's agreement with the live answer), print the verdict and "
        "the worst disagreements, and exit 1 when the mean score is below --min-score (2 on a usage error).",
    )
    _target_arguments(report)
    report.add_argument(
        "--table",
        help="the comparison table's name, read with your AWS credentials (default: the ShadowTableName output of the "
        "local or deployed stack)",
    )
    report.add_argument(
        "--judge-model", default="local", help="the judge's model spec, e.g. bedrock:amazon.nova-lite-v1:0 (default: %(default)s)"
    )
    report.add_argument(
        "--min-score", type=float, default=0.8, help="the mean score in [0, 1] the verdict needs (default: %(default)s)"
    )
    report.add_argument(
        "--min-agreement",
        type=float,
        default=0.7,
        help="the judge score in [0, 1] one answer needs to agree (default: %(default)s)",
    )
    report.add_argument("--candidate-version", help="score only the comparisons of this candidate agent version")
    report.add_argument(
        "--worst", type=int, default=5, help="how many of the worst disagreements to print (default: %(default)s)"
    )
    report.add_argument("--limit", type=int, help="read at most this many comparisons (default: all)")
    report.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="comparisons scored at once (default: %(default)s)")
    report.add_argument(
        "--json", dest="json_report", metavar="FILE", help="write the JSON report to FILE ('-': stdout, instead of the table)"
    )
    report.add_argument(
        "--publish", action="store_true", help="publish the mean score as the EvalScore metric the canary's alarm watches"
    )
    report.add_argument("--service", help="--publish: the agent function's service name (its `service` metric dimension)")
    report.add_argument(
        "--namespace", default="Agentrail", help="--publish: the function's metrics namespace (default: %(default)s)"
    )
    report.set_defaults(run=run_shadow_report, usage_error=report.error)


def run_shadow_report(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from agentrail_runtime.evals.canary import EVAL_SCORE_DIMENSIONS, EVAL_SCORE_METRIC
    from agentrail_runtime.shadow.comparisons import ComparisonStore
    from agentrail_runtime.shadow.report import shadow_report

    try:
        for name in ("min_score", "min_agreement"):
            if not 0 <= getattr(args, name) <= 1:
                raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 1, got {getattr(args, name)}")
        if args.publish and not args.service:
            raise UsageError("--publish needs --service: the agent function's service name (its metric dimension)")
        if args.worst < 0 or (args.limit is not None and args.limit < 1):
            raise UsageError("--worst must be at least 0 and --limit at least 1")
        if args.workers < 1:
            raise UsageError("--workers must be at least 1")
        judge = _judge(args.judge_model)
        target = _where(args)
        table = args.table or target.output(TABLE_OUTPUT)
    except (UsageError, TargetError) as error:
        print(f"agentrail shadow report: {error}", file=err)
        return 2
    store = ComparisonStore(table, dynamodb=target.client("dynamodb"))
    report = shadow_report(
        store.scan(limit=args.limit),
        judge=judge,
        min_score=args.min_score,
        min_agreement=args.min_agreement,
        worst=args.worst,
        candidate_version=args.candidate_version,
        workers=args.workers,
    )
    if args.json_report == "-":
        print(report.model_dump_json(indent=2), file=out)
    else:
        if args.json_report:
            Path(args.json_report).write_text(report.model_dump_json(indent=2))
        _print(report, out)
    if args.publish and report.score is not None:
        dimensions = [{"Name": name, "Value": value} for name, value in zip(EVAL_SCORE_DIMENSIONS, (args.service,), strict=True)]
        target.client("cloudwatch").put_metric_data(
            Namespace=args.namespace,
            MetricData=[{"MetricName": EVAL_SCORE_METRIC, "Dimensions": dimensions, "Value": report.score, "Unit": "None"}],
        )
        print(f"Published {EVAL_SCORE_METRIC} {report.score:.4f} (namespace {args.namespace}, service {args.service})", file=err)
    return 0 if report.passed else 1


def _where(args: argparse.Namespace) -> Target:
    """``--table`` alone: your AWS account; otherwise local mode or the deployed ``--stack`` (its table output)."""
    from agentrail_cli.operations import Target

    if args.table and not args.stack:
        return Target.account(region=args.region, profile=args.profile)
    return _target(args, pattern="stateless")


def _print(report: ShadowReport, out: TextIO) -> None:
    def cost(value: float | None) -> str:
        return "-" if value is None else f"{value:.6f}"

    print(
        f"{report.comparisons} comparisons; live {', '.join(report.live_versions) or '-'}, "
        f"candidate {', '.join(report.candidate_versions) or '-'}; judge {report.judge}",
        file=out,
    )
    rows = [("MEDIAN", "TOKENS", "COST_USD", "STEPS", "LATENCY_MS")]
    for name, side in (("live", report.live), ("candidate", report.candidate)):
        rows.append((name, f"{side.tokens:g}", cost(side.cost_usd), f"{side.steps:g}", f"{side.latency_ms:.1f}"))
    _table(rows, out)
    if report.errors:
        print(f"Comparisons the judge could not score (each counts as 0): {report.errors}", file=out)
    if report.dry_run_calls:
        print(f"Tools with side effects answered by their dry-run result: {report.dry_run_calls}", file=out)
    if report.worst:
        print("\nWorst disagreements:", file=out)
        worst = [("REQUEST", "SCORE", "LIVE", "CANDIDATE")]
        worst += [
            (
                w.request_id,
                f"{w.score:.2f}",
                json.dumps(w.live_answer)[:60],
                f"error: {w.error}"[:60] if w.error else json.dumps(w.candidate_answer)[:60],
            )
            for w in report.worst
        ]
        _table(worst, out)
    score = "-" if report.score is None else f"{report.score:.4f}"
    verdict = "passed" if report.passed else "FAILED"
    print(f"\nMean score {score} against a minimum of {report.min_score:g}: {verdict}", file=out)


__all__ = ["add_shadow_command", "run_shadow_report"]
