"""The CLI's defaults are the runtime's: the CLI keeps its own copies so that starting it imports no runtime code,
and this seam keeps them equal."""

from __future__ import annotations

import argparse

from agentrail_cli.main import _parser
from agentrail_runtime.evals.runner import DEFAULT_WORKERS
from agentrail_runtime.shadow.report import DEFAULT_MIN_AGREEMENT, DEFAULT_MIN_SCORE


def command(*names: str) -> argparse.ArgumentParser:
    parser = _parser()
    for name in names:
        parser = parser._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
    return parser


def test_agentrail_eval_and_shadow_report_default_to_the_runtimes_worker_count_and_thresholds():
    # given: the parsers of `agentrail eval` and `agentrail shadow report`
    evals, report = command("eval"), command("shadow", "report")

    # when/then: their defaults are the ones run_datasets and shadow_report take
    assert evals.get_default("workers") == report.get_default("workers") == DEFAULT_WORKERS
    assert (report.get_default("min_score"), report.get_default("min_agreement")) == (DEFAULT_MIN_SCORE, DEFAULT_MIN_AGREEMENT)
