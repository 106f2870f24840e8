"""``agentrail local --tour`` over every pattern: each step of each tour is checked, and the exit code says so."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agentrail_cli.tour import TOURS

pytestmark = pytest.mark.slow


def test_the_tour_of_every_pattern_passes_every_step_and_exits_0(
    synthesized: Callable[[str], Path], agentrail: Callable[..., list[str]], every_pattern: str, tmp_path: Path
) -> None:
    command = agentrail(
        "local", "--tour", "--assembly", str(synthesized(every_pattern)), "--port", "0", "--state-dir", str(tmp_path)
    )

    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False)

    # every pattern of the session's run has a tour (asgi's runs in its own: tests/e2e/test_asgi.py smokes it)
    served = {pattern: TOURS[pattern] for pattern in every_pattern.split(",")}
    steps = sum(len(tour) for tour in served.values())
    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-2000:]
    assert f"Tour finished: {steps}/{steps} steps passed (all passed) in " in finished.stdout
    assert "✗" not in finished.stdout and "no tour for" not in finished.stdout
    for pattern in served:
        assert f"Tour of the {pattern} agent" in finished.stdout
    timings = re.findall(r"(\d+)/(\d+) steps passed in ([\d.]+) s", finished.stdout)
    assert [(int(p), int(t)) for p, t, _ in timings] == [(len(TOURS[p]), len(TOURS[p])) for p in TOURS if p in served]
    assert dict(zip([p for p in TOURS if p in served], timings, strict=True))["stateless"][:2] == ("7", "7")
    assert not (tmp_path / "local.json").exists(), "the ready file describes a running process; it goes when the process stops"
