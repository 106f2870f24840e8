"""The response cache end to end: ``agentrail local`` serving a project whose stateless agent has a response cache (its
table created by local mode's CloudFormation on moto), called over HTTP with signed requests.

The project is written to a temporary folder: an ``app.py`` with one ``StatelessAgentStack`` of the demo's cacheable
agent (calculator and unit conversion) and ``response_cache_options``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

QUESTION = "Calculate (12 + 30) * 2 and convert 10 km to mi"
_APP = """\
import aws_cdk as cdk
from agentrail_constructs import AgentFunctionOptions, ResponseCacheOptions, StatelessAgentStack

app = cdk.App()
StatelessAgentStack(
    app,
    "CachedAgent",
    function_options=AgentFunctionOptions(agent_definition="agentrail_runtime.demo:cacheable_definition"),
    response_cache_options=ResponseCacheOptions(ttl=cdk.Duration.minutes(10)),
    deployment_options=None,
)
app.synth()
"""


@pytest.fixture(scope="module")
def local(start_local_mode: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Any:
    project = tmp_path_factory.mktemp("cached-project")
    flags = {k: v for k, v in json.loads((repo_root / "cdk.json").read_text())["context"].items() if k.startswith("@")}
    (project / "app.py").write_text(_APP)
    (project / "cdk.json").write_text(json.dumps({"app": "python3 app.py", "context": flags}, indent=2))
    return start_local_mode("stateless", project=project, state_dir=tmp_path_factory.mktemp("cached-state"))


def test_a_repeated_stateless_question_is_a_cache_hit_with_zero_tokens(local: Any) -> None:
    with local.client("stateless") as api:
        first = api.invoke(QUESTION)
        second = api.invoke(f"  {QUESTION.upper()} ")

    assert (first["cache"], first["status"]) == ("miss", "completed")
    assert first["usage"]["total_tokens"] > 0 and {call["tool"] for call in first["tool_calls"]} == {
        "calculator",
        "convert_units",
    }
    assert second["cache"] == "hit"
    assert second["answer"] == first["answer"] and "84" in second["answer"]
    assert second["usage"]["total_tokens"] == 0 and second["cost_usd"] == 0.0
    assert (second["steps"], second["tool_calls"]) == (0, [])


def test_the_cache_table_from_the_template_holds_the_answer_with_its_ttl_and_not_the_question(local: Any) -> None:
    dynamodb = local.aws("dynamodb")
    table = local.ready["stacks"][local.api("stateless")["stack"]]["ResponseCacheTableName"]
    with local.client("stateless") as api:  # stored now, or served from what an earlier test stored
        assert api.invoke(QUESTION)["cache"] in ("hit", "miss")

    items = dynamodb.scan(TableName=table)["Items"]
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]

    assert items, "the answer is stored"
    assert ttl["AttributeName"] == "expires_at" and ttl["TimeToLiveStatus"] == "ENABLED"
    assert all(QUESTION.casefold() not in json.dumps(item).casefold() for item in items)


def test_a_different_question_is_a_miss(local: Any) -> None:
    with local.client("stateless") as api:
        answer = api.invoke("Calculate (12 + 31) * 2")

    assert answer["cache"] == "miss" and "86" in answer["answer"]
