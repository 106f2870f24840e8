"""``agentrail local`` in a project of its own: hot reload of an edited tool, a redeploy after an edit of
``app.py``, and a second start that reuses the assembly.

The project is a scaffold written to a temporary folder (:mod:`agentrail_cli.scaffold`: an ``app.py`` with one
``StatefulAgent`` whose agent code is the project's ``agent/`` folder), never the repository's own files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentrail_cli.scaffold import scaffold_app, scaffold_tool, write_scaffold

pytestmark = pytest.mark.slow

RELOAD_BOUND_SECONDS = 30
#: A re-synth runs the CDK CLI: a generous bound, not a speed target.
RESYNTH_BOUND_SECONDS = 60


@pytest.fixture(scope="module")
def scaffold(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    return write_scaffold(tmp_path_factory.mktemp("scaffold"), price="12 EUR", feature_flags=_feature_flags(repo_root))


def _feature_flags(repo_root: Path) -> dict[str, Any]:
    return {k: v for k, v in json.loads((repo_root / "cdk.json").read_text())["context"].items() if k.startswith("@")}


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

    (scaffold / "agent" / "shop.py").write_text(scaffold_tool("15 EUR"))
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
    (scaffold / "app.py").write_text(scaffold_app() + "# an edit\n")
    third = start_local_mode("stateful", project=scaffold, state_dir=state_dir, extra_args=("--no-reload",))
    third.stop()

    assert "Synthesizing the app with the CDK CLI (offline): no earlier synth recorded" in first.console_output()
    assert "Reusing the synthesized assembly (nothing changed since " in second.console_output()
    assert "Synthesizing the app with the CDK CLI (offline): changed app.py" in third.console_output()


def test_an_edit_of_app_py_is_synthesized_and_redeployed_while_sessions_created_before_it_remain(
    start_local_mode: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory, repo_root: Path
) -> None:
    project = write_scaffold(tmp_path_factory.mktemp("scaffold-app"), price="12 EUR", feature_flags=_feature_flags(repo_root))
    local = start_local_mode("stateful", project=project, state_dir=tmp_path_factory.mktemp("scaffold-app-state"))
    with local.client("stateful") as api:
        created = api.request("POST", "/sessions", json={})
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    assert "on sale" not in _ask_price(local, session_id)

    # The agent the app names is an environment setting of the function: a template change, not a code change.
    (project / "app.py").write_text(scaffold_app(agent_definition="shop:sale_agent"))
    deadline = time.monotonic() + RESYNTH_BOUND_SECONDS
    answer = _ask_price(local, session_id)
    while "on sale" not in answer and time.monotonic() < deadline:
        time.sleep(0.5)
        answer = _ask_price(local, session_id)

    console = local.console_output()
    assert "12 EUR, on sale" in answer, console[-3000:]
    assert "app.py changed: synthesizing again in the background" in console
    assert "re-synthesized after app.py: updated ShopAgentFunction" in console, console[-3000:]
    assert "(AWS::Lambda::Function) [Environment]" in console
    with local.client("stateful") as api:
        history = api.request("GET", f"/sessions/{session_id}")
    assert history.status_code == 200
    assert history.json()["history"][0]["message"] == "What is the price of tea?"
    local.stop()


def test_an_app_py_that_fails_to_synthesize_is_reported_and_the_running_deployment_keeps_serving(
    start_local_mode: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory, repo_root: Path
) -> None:
    project = write_scaffold(tmp_path_factory.mktemp("scaffold-broken"), price="12 EUR", feature_flags=_feature_flags(repo_root))
    local = start_local_mode("stateful", project=project, state_dir=tmp_path_factory.mktemp("scaffold-broken-state"))
    with local.client("stateful") as api:
        session_id = api.request("POST", "/sessions", json={}).json()["session_id"]

    (project / "app.py").write_text(scaffold_app() + "raise SystemExit('the app refuses to synthesize')\n")
    deadline = time.monotonic() + RESYNTH_BOUND_SECONDS
    while "re-synthesis after app.py failed" not in local.console_output() and time.monotonic() < deadline:
        time.sleep(0.5)

    console = local.console_output()
    assert "re-synthesis after app.py failed; still serving the previous deployment" in console, console[-3000:]
    assert "the app refuses to synthesize" in console
    assert "12 EUR" in _ask_price(local, session_id)
    local.stop()
