"""The call-count file: written by the benchmark, never by hand, and never older than the code that makes the calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentrail_cli.plan.calls import HASHED_PACKAGES, RAW_COUNTS, Line, code_hash, fit_line, load_call_counts
from agentrail_cli.plan.workloads import CHECK_MIX, KINDS, VARIANTS

REFRESH = "python -m benchmarks --only plan_calls"


def test_the_call_count_file_is_not_older_than_the_code_that_makes_the_calls() -> None:
    counts = load_call_counts()

    assert counts.hashed_packages == list(HASHED_PACKAGES)
    assert counts.code_hash == code_hash(), (
        "the runtime, handlers or constructs changed since the planner's call counts were measured: "
        f"run `{REFRESH}` and commit cli/agentrail_cli/plan/data/call_counts.json"
    )


def test_the_call_count_file_was_written_by_the_benchmark_for_every_variant() -> None:
    counts = load_call_counts()

    assert counts.generated_by == f"{REFRESH}"
    assert set(counts.variants) == set(VARIANTS)
    for name, variant in counts.variants.items():
        assert variant.pattern == VARIANTS[name].pattern
        assert [kind.label for kind in variant.kinds] == [kind.label for kind in KINDS[name]]
        assert set(variant.lines) <= set(RAW_COUNTS)
        assert all(kind.tasks >= 2 for kind in variant.kinds)
    patterns = {"stateless", "stateful", "async", "multiagent", "hierarchical"}
    assert set(counts.templates) == patterns | {"stateful_streaming"} | {f"{p}_hardened" for p in patterns}
    assert all(counts.templates[f"{p}_hardened"]["vpc_endpoint_azs"] > 0 for p in patterns)
    assert all(counts.templates[p]["vpc_endpoint_azs"] == 0 for p in patterns)
    assert counts.templates["stateful_streaming"]["functions"] > counts.templates["stateful"]["functions"]


def test_every_line_is_the_least_squares_fit_of_the_kinds_the_file_records() -> None:
    """The lines are what the recorded measurements give, not typed: refitting each count gives the same line."""
    counts = load_call_counts()

    for name, variant in counts.variants.items():
        for count, line in variant.lines.items():
            points = [(kind.counts[variant.regressor], kind.counts.get(count, 0.0)) for kind in variant.kinds]
            refit = fit_line(points)
            assert refit.intercept == pytest.approx(line.intercept, abs=1e-5), (name, count)
            assert refit.slope == pytest.approx(line.slope, abs=1e-5), (name, count)


def test_the_check_mix_differs_from_the_calibration_batches() -> None:
    """The accuracy check must not run the mix the lines were fitted on (one kind per batch, equal counts)."""
    for name, mix in CHECK_MIX.items():
        labels = {kind.label for kind in KINDS[name]}
        assert {label for label, _ in mix} <= labels
        assert len(mix) > 1 or len(labels) == 1, name
        if len(mix) > 1:
            assert len({count for _, count in mix}) > 1, f"{name}: the check mix must weigh its kinds unequally"


def test_a_line_is_fitted_by_least_squares_and_flat_when_model_calls_do_not_vary() -> None:
    assert fit_line([(1, 3.0), (2, 5.0), (3, 7.0)]) == Line(intercept=1.0, slope=2.0)
    assert fit_line([(2, 4.0), (2, 6.0)]) == Line(intercept=5.0, slope=0.0)
    assert Line(intercept=-1.0, slope=0.5).at(1) == 0.0  # never below zero


def test_the_code_hash_changes_with_any_module_of_the_hashed_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "agentrail_fake_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_hash(("agentrail_fake_pkg",))

    (package / "__init__.py").write_text("X = 2\n")

    assert code_hash(("agentrail_fake_pkg",)) != before
