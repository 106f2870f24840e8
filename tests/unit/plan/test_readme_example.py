"""The README's example plan and chart are what the planner prints today (``make plan-calls`` regenerates both)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from agentrail_cli.plan.example import BEGIN, END, PROFILE, example, readme_block

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_the_readme_shows_the_plan_the_planner_prints_for_its_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    shown = BEGIN + readme.split(BEGIN, 1)[1].split(END, 1)[0] + END

    assert shown == readme_block(), "the README's plan example is stale: run `python -m agentrail_cli.plan.example README.md`"


def test_the_committed_chart_is_the_one_the_planner_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    _, svg, chart = example()

    assert chart == PROFILE.with_suffix(".svg")
    assert (REPO_ROOT / chart).read_text(encoding="utf-8") == svg
    root = ElementTree.fromstring(svg)
    assert root.get("role") == "img"
