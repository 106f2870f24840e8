"""``agentrail plan`` end to end on the shipped price and call-count files: the questions, the JSON, the chart,
and the token choices it prices (prompt caching, the batch lane)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from agentrail_cli.main import _parser
from agentrail_cli.plan.calls import load_call_counts
from agentrail_cli.plan.command import QUESTIONS, run_plan
from agentrail_cli.plan.plan import make_plan
from agentrail_cli.plan.prices import load_prices, model_price
from agentrail_cli.plan.requirements import requirements_from

PROFILES = Path(__file__).resolve().parents[3] / "examples" / "plans"


def plan_json(*args: str, stdin: str = "") -> dict:
    out = io.StringIO()
    status = run_plan(_parser().parse_args(["plan", "--no-chart", "--json", *args]), out=out, stdin=io.StringIO(stdin))
    assert status == 0
    return json.loads(out.getvalue())


def test_the_questions_take_each_answer_and_keep_each_default_on_enter() -> None:
    answers = {"name": "Helpdesk", "requests_per_hour": "120", "state": "session", "turns_per_session": "5", "approvals": "no"}
    lines = "".join(f"{answers.get(name, '')}\n" for name, _ in QUESTIONS)

    document = plan_json("--interactive", stdin=lines)

    assert document["requirements"]["name"] == "Helpdesk"
    assert document["requirements"]["requests_per_hour"] == 120
    assert document["requirements"]["turns_per_session"] == 5
    assert document["requirements"]["region"] == "us-east-1"  # Enter kept the default
    assert document["patterns"] == ["stateful"]


def test_a_yes_or_no_question_refuses_another_answer_in_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    lines = "".join("maybe\n" if name == "approvals" else "\n" for name, _ in QUESTIONS)

    status = run_plan(_parser().parse_args(["plan", "--no-chart", "--interactive"]), out=io.StringIO(), stdin=io.StringIO(lines))

    assert status == 2
    err = capsys.readouterr().err  # the questions, then the one sentence
    assert err.strip().splitlines()[-1].endswith("agentrail plan: approvals must be yes or no, not 'maybe'.")
    assert "Traceback" not in err


def test_the_json_plan_adds_up_line_by_line() -> None:
    document = plan_json("--file", str(PROFILES / "refunds.yaml"))
    cost = document["cost"]

    assert cost["usd_per_task"] == pytest.approx(sum(line["usd_per_task"] for line in cost["lines"]))
    assert cost["usd_per_month"] == pytest.approx(sum(line["usd_per_month"] for line in cost["lines"]))
    assert cost["usd_per_1000_tasks"] == pytest.approx(cost["usd_per_task"] * 1000)
    assert cost["tasks_per_month"] == pytest.approx(120 * 730)
    assert {line["basis"] for line in cost["lines"]} == {"counted", "estimated", "given"}
    assert document["context"] == {"patterns": "async", "approval_timeout": "172800", "security": "hardened", "webhooks": "false"}
    assert document["call_counts"]["fresh"] is True


def test_the_hardened_profile_adds_its_endpoints_and_key_from_the_hardened_templates() -> None:
    counts = load_call_counts()
    hardened = counts.templates["async_hardened"]

    document = plan_json("--file", str(PROFILES / "refunds.yaml"))
    standard = plan_json("--file", str(PROFILES / "refunds.yaml"), "--security", "standard")

    fixed = {line["key"]: line["quantity_per_month"] for line in document["cost"]["lines"] if line["kind"] == "fixed"}
    assert fixed["vpc_endpoint_hours"] == hardened["vpc_endpoint_azs"] * 730
    assert fixed["kms_keys"] == hardened["kms_keys"] >= 1
    assert "vpc_endpoint_hours" not in {line["key"] for line in standard["cost"]["lines"]}
    assert document["cost"]["fixed_usd_per_month"] > standard["cost"]["fixed_usd_per_month"] + 14  # two AZs of one endpoint


def test_the_counted_lines_are_the_call_count_files_lines_at_the_plans_model_calls() -> None:
    """Not typed: the plan's SFN transitions per task are the file's reviewed_task line at 3 model calls."""
    document = plan_json("--file", str(PROFILES / "refunds.yaml"))
    line = load_call_counts().variant("reviewed_task").lines["sfn_transitions"]

    (transitions,) = [item for item in document["cost"]["lines"] if item["key"] == "sfn_transitions"]
    assert transitions["quantity_per_task"] == pytest.approx(line.at(3.0))
    assert transitions["basis"] == "counted"


def test_the_chart_is_written_where_asked_and_marks_the_requirements_traffic(tmp_path: Path) -> None:
    chart = tmp_path / "plan.svg"
    out = io.StringIO()

    status = run_plan(_parser().parse_args(["plan", "--file", str(PROFILES / "faq-bot.yaml"), "--chart", str(chart)]), out=out)

    assert status == 0
    assert f"Chart of monthly cost against traffic: {chart}" in out.getvalue()
    svg = chart.read_text()
    ElementTree.fromstring(svg)
    assert "you are here: 50/h" in svg


def test_prompt_caching_moves_the_stable_prefix_to_cache_writes_once_and_reads_after() -> None:
    base = {"requests_per_hour": 100, "model": "bedrock:anthropic.claude-3-5-haiku", "model_calls_per_task": 4}
    prices, counts = load_prices(), load_call_counts()
    plain = make_plan(requirements_from(base), prices=prices, counts=counts)
    cached = make_plan(
        requirements_from({**base, "prompt_caching": True, "cached_prompt_share": 0.5}), prices=prices, counts=counts
    )
    price = model_price(prices, "us-east-1", base["model"])

    tokens = {line.key: line.quantity_per_task for line in cached.cost.lines_of("tokens")}
    assert tokens["tokens:cache_write"] == 1000  # half of 2,000 input tokens, written by the first call
    assert tokens["tokens:cache_read"] == 3000  # read by the 3 later calls
    assert tokens["tokens:input"] == 8000 - 4000
    saved = 3000 * (price.input_per_million - (price.cache_read_per_million or 0)) / 1e6
    extra = 1000 * ((price.cache_write_per_million or 0) - price.input_per_million) / 1e6
    assert plain.cost.token_usd_per_task - cached.cost.token_usd_per_task == pytest.approx(saved - extra)


def test_the_batch_lane_prices_tokens_at_the_models_batch_price() -> None:
    base = {
        "requests_per_hour": 100,
        "latency": "background",
        "model": "bedrock:anthropic.claude-3-5-haiku",
        "model_calls_per_task": 1,
    }
    prices, counts = load_prices(), load_call_counts()
    plain = make_plan(requirements_from(base), prices=prices, counts=counts)
    batched = make_plan(requirements_from({**base, "batch_lane": True}), prices=prices, counts=counts)

    assert batched.cost.token_usd_per_task == pytest.approx(plain.cost.token_usd_per_task * 0.5)
    assert batched.cost.aws_usd_per_task == pytest.approx(plain.cost.aws_usd_per_task)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"batch_lane": True}, "batch_lane serves background tasks"),
        (
            {"batch_lane": True, "latency": "background", "model_calls_per_task": 3},
            "batch_lane runs single-step requests without tools",
        ),
        ({"prompt_caching": True, "model": "bedrock:meta.llama3-1-8b-instruct"}, "has no prompt-caching prices in us-east-1"),
    ],
)
def test_a_token_choice_the_workload_or_model_cannot_take_is_one_sentence(
    extra: dict, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')}={v}" for k, v in extra.items()]

    status = run_plan(_parser().parse_args(["plan", "--no-chart", *flags]), out=io.StringIO())

    assert status == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert says in line and line.endswith(".")
