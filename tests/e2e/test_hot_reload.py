"""``agentrail local`` in a project of its own: hot reload of an edited tool, and a second start that reuses the assembly.

The project is a scaffold written to a temporary folder (an ``app.py`` with one ``StatefulAgent`` whose agent
code is the project's ``agent/`` folder), never the repository's own files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

APP = """\
import aws_cdk as cdk
from agentrail_constructs import AgentFunctionOptions, StatefulAgent

app = cdk.App()
stack = cdk.Stack(app, "Scaffold")
cdk.Tags.of(stack).add("agentrail:pattern", "stateful")
StatefulAgent(
    stack,
    "Shop",
    function_options=AgentFunctionOptions(model="local", agent_code="agent", agent_definition="shop:agent"),
)
app.synth()
"""
TOOL = """\
from agentrail_runtime import AgentDefinition, tool


@tool(local_patterns=[r"price of (?P<item>[a-z]+)"])
def price(item: str) -> dict:
    \"\"\"The price of an item.\"\"\"
    return {"item": item, "price": "PRICE"}


agent = AgentDefinition(name="shop", system_prompt="You sell things.", tools=(price,))
"""
RELOAD_BOUND_SECONDS = 30


@pytest.fixture(scope="module")
def scaffold(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    project = tmp_path_factory.mktemp("scaffold")
    (project / "agent").mkdir()
    (project / "agent" / "shop.py").write_text(TOOL.replace("PRICE", "12 EUR"))
    (project / "app.py").write_text(APP)
    feature_flags = {k: v for k, v in json.loads((repo_root / "cdk.json").read_text())["context"].items() if k.startswith("@")}
    (project / "cdk.json").write_text(json.dumps({"app": "python3 app.py", "context": feature_flags}, indent=2))
    return project


def _ask_price(local: Any, session_id: str) -> str:
    with local.client("stateful") as api:
        answer = api.request("POST", f"/sessions/{session_id}/messages", json={"message": "What is the price of tea?"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["answer"])


def test_an_edited_tool_answers_anew_while_sessions_created_before_the_edit_remain(
    start_local_mode: Callable[..., Any], scaffold: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    local = start_local_mode("stateful", project=scaffold, state_dir=tmp_path_factory.mktemp("scaffold-state"))
    with local.client("stateful") as api:
        created = api.request("POST", "/sessions", json={})
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    assert "12 EUR" in _ask_price(local, session_id)

    (scaffold / "agent" / "shop.py").write_text(TOOL.replace("PRICE", "15 EUR"))
    deadline = time.monotonic() + RELOAD_BOUND_SECONDS
    answer = _ask_price(local, session_id)
    while "15 EUR" not in answer and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = _ask_price(local, session_id)

    assert "15 EUR" in answer, local.console_output()[-3000:]
    with local.client("stateful") as api:
        history = api.request("GET", f"/sessions/{session_id}")
    assert history.status_code == 200
    turns = history.json()["history"]
    assert (turns[0]["number"], turns[0]["message"]) == (1, "What is the price of tea?") and len(turns) >= 2
    assert "reloaded " in local.console_output() and "moto's state kept" in local.console_output()
    local.stop()


def test_a_second_start_with_nothing_changed_reuses_the_assembly_and_an_edit_is_named(
    start_local_mode: Callable[..., Any], scaffold: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state_dir = tmp_path_factory.mktemp("scaffold-reuse")
    first = start_local_mode("stateful", project=scaffold, state_dir=state_dir, extra_args=("--no-reload",))
    first.stop()

    second = start_local_mode("stateful", project=scaffold, state_dir=state_dir, extra_args=("--no-reload",))
    second.stop()
    (scaffold / "app.py").write_text(APP + "# an edit\n")
    third = start_local_mode("stateful", project=scaffold, state_dir=state_dir, extra_args=("--no-reload",))
    third.stop()

    assert "Synthesizing the app with the CDK CLI (offline): no earlier synth recorded" in first.console_output()
    assert "Reusing the synthesized assembly (nothing changed since " in second.console_output()
    assert "Synthesizing the app with the CDK CLI (offline): changed app.py" in third.console_output()
