"""The report: a run's cases and scorers, errors as failed cases, the baseline gate, and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from agentrail_runtime.evals import EvalCase, EvalReport, LoadedCase, LocalJudge, Observation, run_datasets
from agentrail_runtime.evals.dataset import Dataset


def dataset(agent: str, name: str, *cases: tuple[str, dict]) -> Dataset:
    loaded = tuple(
        LoadedCase(agent=agent, dataset=name, line=n, case=EvalCase(id=case_id, input=case_id, expect=expect))
        for n, (case_id, expect) in enumerate(cases, start=1)
    )
    return Dataset(path=Path(f"{agent}/{name}.jsonl"), agent=agent, name=name, cases=loaded)


def answering(answers: dict[str, str]):
    """A target that answers each case's input from ``answers``; an input it does not know raises."""

    def target(case: LoadedCase) -> Observation:
        return Observation(answer=answers[case.case.input], status="completed", steps=1, cost_usd=0.0)

    return target


CASES = dataset(
    "demo",
    "basics",
    ("carrier", {"contains": "UPS"}),
    ("eta", {"contains": ["UPS", "2026-12-02"]}),
    ("judged", {"judge": {"rubric": 'It names the carrier "UPS".'}}),
)
GOOD = {"carrier": "Shipped with UPS", "eta": "UPS, 2026-12-02", "judged": "The carrier is UPS"}


def run(answers: dict[str, str], *datasets: Dataset, workers: int = 3) -> EvalReport:
    return run_datasets(datasets or (CASES,), answering(answers), judge=LocalJudge(), target_name="test", workers=workers)


def test_a_run_reports_every_case_in_dataset_order_with_means_per_scorer_whatever_the_order_they_finish():
    report = run({**GOOD, "eta": "UPS soon"})

    assert [c.id for c in report.cases] == ["carrier", "eta", "judged"]
    assert [c.key for c in report.failed_cases] == ["demo/basics:eta"]
    assert {s.scorer: (s.mean, s.failed) for s in report.scorers} == {"contains": (0.75, 1), "judge": (1.0, 0)}
    assert report.score == round((1 + 0.5 + 1) / 3, 4) and not report.gate_passed


def test_a_case_whose_run_raises_is_an_error_and_the_others_still_run():
    report = run({"carrier": "UPS", "judged": "carrier UPS"})

    (failed,) = report.failed_cases
    assert failed.id == "eta" and failed.error == "KeyError: 'eta'" and failed.score == 0.0
    assert [c.passed for c in report.cases] == [True, False, True]


def test_a_run_that_keeps_its_scores_passes_the_baseline_gate_and_one_that_drops_names_the_regressed_cases():
    baseline = run(GOOD)

    same = run(GOOD).compare(baseline, max_regression=0.05, baseline_name="baseline.json")
    worse = run({**GOOD, "eta": "UPS soon"}).compare(baseline, max_regression=0.05, baseline_name="baseline.json")

    assert same.regression is not None and same.regression.passed and same.gate_passed
    assert worse.regression is not None and not worse.regression.passed
    assert [c.key for c in worse.regression.regressed_cases] == ["demo/basics:eta"]
    assert any("mean score" in f for f in worse.regression.failures)
    assert worse.regression.scorer_drops == {"contains": 0.25}


def test_a_drop_within_the_allowed_regression_passes_the_baseline_gate():
    baseline = run(GOOD)

    report = run({**GOOD, "eta": "UPS soon"}).compare(baseline, max_regression=0.5)

    assert report.regression is not None and report.regression.passed


def test_cases_added_since_the_baseline_are_not_compared_and_removed_ones_are_listed(tmp_path: Path):
    baseline = run(GOOD)
    extra = dataset("demo", "more", ("new", {"contains": "nothing like this"}))

    report = run({**GOOD, "new": "x"}, CASES, extra).compare(baseline, max_regression=0.0)
    fewer = run(GOOD, dataset("demo", "basics", ("carrier", {"contains": "UPS"}))).compare(baseline, max_regression=0.0)

    assert report.regression is not None and report.regression.passed
    assert fewer.regression is not None and fewer.regression.missing_cases == ["demo/basics:eta", "demo/basics:judged"]


def test_a_report_written_as_json_reads_back_as_a_baseline(tmp_path: Path):
    report = run(GOOD)
    path = tmp_path / "report.json"

    report.write_json(path)

    assert EvalReport.read(path) == report


def test_junit_xml_has_a_suite_per_dataset_a_failure_per_failing_case_an_error_per_broken_one_and_the_baseline():
    baseline = run(GOOD)
    report = run({"carrier": "DHL", "judged": "carrier UPS"}).compare(baseline, max_regression=0.05)

    root = ET.fromstring(report.to_junit())

    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "2", "1")
    suite = root.find("testsuite[@name='demo/basics']")
    assert suite is not None
    failure = suite.find("testcase[@name='carrier']/failure")
    assert failure is not None and failure.get("message", "").startswith("contains 0 < 1: missing ['UPS']")
    assert suite.find("testcase[@name='eta']/error") is not None
    assert suite.find("testcase[@name='judged']/failure") is None
    assert root.find("testsuite[@name='baseline']/testcase/failure") is not None
