"""``agentrail shadow report`` against a comparison table on moto: the verdict, the worst disagreements, the JSON
report, the exit code, and the ``EvalScore`` it publishes for the canary's alarm."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from agentrail_cli import shadow as shadow_command
from agentrail_cli.main import _parser
from agentrail_runtime.evals import JudgeVerdict, LocalJudge
from agentrail_runtime.models.base import ModelThrottledError
from agentrail_runtime.shadow import RunSummary, ShadowRequest
from agentrail_runtime.shadow.comparisons import ComparisonStore
from tests.integration.conftest import create_comparison_table

TABLE = "agentrail-shadow-comparisons"
LIVE_ANSWERS = {
    "req-1": "Order A-1001 ships with UPS and arrives on 2026-12-02.",
    "req-2": "Order A-1002 ships with DHL and arrives on 2026-12-05.",
    "req-3": "12 times 7 is 84.",
}
#: A candidate whose change broke the carrier lookups.
REGRESSED = {
    "req-1": "Order A-1001 has an unknown carrier.",
    "req-2": "I cannot find order A-1002.",
    "req-3": "12 times 7 is 84.",
}


def run(*argv: str) -> tuple[int, str, str]:
    args = _parser().parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    return args.run(args, out, err), out.getvalue(), err.getvalue()


def summary(answer: str, version: str) -> RunSummary:
    return RunSummary(
        answer=answer, status="completed", model="local", agent_version=version, input_tokens=40, output_tokens=12, steps=2
    )


@pytest.fixture
def table(clock) -> Iterator[ComparisonStore]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_comparison_table(dynamodb, TABLE)
        yield ComparisonStore(TABLE, clock=clock, dynamodb=dynamodb)


def record(store: ComparisonStore, candidate_answers: dict[str, str], version: str = "cand-2") -> None:
    for request_id, live in LIVE_ANSWERS.items():
        request = ShadowRequest(request_id=request_id, message=f"question {request_id}", live=summary(live, "live-1"))
        store.put_once(request, summary(candidate_answers[request_id], version))


def test_a_candidate_that_agrees_with_live_passes_and_the_json_report_shows_both_answers(table):
    record(table, LIVE_ANSWERS)

    code, printed, _ = run("shadow", "report", "--table", TABLE, "--region", "us-east-1", "--json", "-")

    assert code == 0, printed
    report = json.loads(printed)
    assert report["passed"] is True and report["score"] == 1.0 and report["comparisons"] == 3
    assert report["live_versions"] == ["live-1"] and report["candidate_versions"] == ["cand-2"]
    worst = {w["request_id"]: (w["live_answer"], w["candidate_answer"]) for w in report["worst"]}
    assert worst["req-1"] == (LIVE_ANSWERS["req-1"], LIVE_ANSWERS["req-1"])


def test_a_regressed_candidate_fails_with_exit_1_and_names_its_worst_disagreements_first(table):
    record(table, REGRESSED)

    code, printed, _ = run("shadow", "report", "--table", TABLE, "--region", "us-east-1", "--worst", "2")

    assert code == 1, printed
    assert "FAILED" in printed
    worst = printed.split("Worst disagreements:", 1)[1]
    assert "req-1" in worst and "req-2" in worst and "req-3" not in worst
    assert "3 comparisons; live live-1, candidate cand-2" in printed


def test_publish_sends_the_mean_score_as_the_eval_score_the_canary_alarm_watches(table):
    record(table, REGRESSED)

    code, _, err = run(
        "shadow", "report", "--table", TABLE, "--region", "us-east-1", "--publish", "--service", "stateless-agent-agent"
    )

    assert code == 1
    [metric] = boto3.client("cloudwatch", region_name="us-east-1").list_metrics(Namespace="Agentrail")["Metrics"]
    assert metric["MetricName"] == "EvalScore"
    assert metric["Dimensions"] == [{"Name": "service", "Value": "stateless-agent-agent"}]
    assert "Published EvalScore" in err


def test_only_the_named_candidate_version_is_scored(table):
    record(table, REGRESSED, version="cand-2")

    code, printed, _ = run("shadow", "report", "--table", TABLE, "--region", "us-east-1", "--candidate-version", "cand-3")

    assert code == 1  # nothing compared: nothing says the candidate is good
    assert "0 comparisons" in printed


class ThrottledOnDhlJudge(LocalJudge):
    """The local judge, except that its model gives up on the answer about DHL (as a throttled Bedrock judge would)."""

    def score(self, *, prompt: str, answer: str, rubric: str) -> JudgeVerdict:
        if "DHL" in rubric:
            raise ModelThrottledError("the judge's model kept throttling", model="bedrock:judge")
        return super().score(prompt=prompt, answer=answer, rubric=rubric)


def test_a_judge_error_fails_its_comparison_in_the_report_instead_of_crashing_the_command(table, monkeypatch):
    record(table, LIVE_ANSWERS)
    monkeypatch.setattr(shadow_command, "_judge", lambda spec: ThrottledOnDhlJudge())

    code, printed, _ = run("shadow", "report", "--table", TABLE, "--region", "us-east-1", "--json", "-")

    assert code == 1, printed  # the verdict fails: one comparison could not be judged
    report = json.loads(printed)
    assert report["comparisons"] == 3 and report["errors"] == 1
    [failed] = [w for w in report["worst"] if w["error"]]
    assert failed["request_id"] == "req-2" and failed["score"] == 0.0
    assert "ModelThrottledError: the judge's model kept throttling" in failed["error"]


class ConcurrencyRecordingJudge(LocalJudge):
    """The local judge, recording how many of its calls ran at once. The first call waits (up to 2 s) for a second
    to arrive, so workers that run in parallel are seen to overlap; later calls go straight on."""

    def __init__(self) -> None:
        super().__init__()
        self.active = self.peak = 0
        self.waited = False
        self.changed = threading.Condition()

    def score(self, *, prompt: str, answer: str, rubric: str) -> JudgeVerdict:
        with self.changed:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.changed.notify_all()
            if not self.waited:
                self.waited = True
                self.changed.wait_for(lambda: self.peak > 1, timeout=2)
        try:
            return super().score(prompt=prompt, answer=answer, rubric=rubric)
        finally:
            with self.changed:
                self.active -= 1


@pytest.mark.parametrize(("workers", "parallel"), [("4", True), ("1", False)])
def test_workers_score_the_comparisons_in_parallel_as_many_at_once_as_asked_with_the_same_verdict(
    table, monkeypatch, workers, parallel
):
    # given: three comparisons, and a judge that records how many of its calls overlap
    record(table, REGRESSED)
    judge = ConcurrencyRecordingJudge()
    monkeypatch.setattr(shadow_command, "_judge", lambda spec: judge)

    # when: the report is made with 4 workers, or with 1
    argv = ("--table", TABLE, "--region", "us-east-1", "--workers", workers, "--json", "-")
    code, printed, _ = run("shadow", "report", *argv)

    # then: 4 workers judged several comparisons at once and 1 worker one at a time, with the same verdict
    assert judge.peak > 1 if parallel else judge.peak == 1
    assert code == 1, printed
    report = json.loads(printed)
    assert report["comparisons"] == 3 and report["errors"] == 0
    assert [w["request_id"] for w in report["worst"]][:2] == ["req-1", "req-2"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--min-score", "1.5"), "--min-score must be between 0 and 1"),
        (("--publish",), "--publish needs --service"),
        (("--judge-model", "gpt-4"), "--judge-model"),
        (("--workers", "0"), "--workers must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_before_reading_anything(table, argv, message):
    code, _, err = run("shadow", "report", "--table", TABLE, "--region", "us-east-1", *argv)

    assert code == 2
    assert message in err
