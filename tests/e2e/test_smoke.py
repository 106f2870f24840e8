"""``agentrail smoke`` against local mode: each pattern's scenarios pass, and a failure exits 1 naming its scenario."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from agentrail_cli.smoke import SCENARIOS
from tests.e2e.conftest import ALL_PATTERNS, LocalMode

pytestmark = pytest.mark.slow


def smoke(agentrail: Callable[..., list[str]], local: LocalMode, *args: str) -> subprocess.CompletedProcess[str]:
    command = agentrail("smoke", "--ready-file", str(local.ready_file), *args)
    return subprocess.run(command, cwd=local.state_dir, capture_output=True, text=True, timeout=300, check=False)


# The session's run serves every pattern but asgi (tests/e2e/test_asgi.py smokes that one in its own run).
@pytest.mark.parametrize("pattern", [pattern for pattern in SCENARIOS if pattern in ALL_PATTERNS.split(",")])
def test_smoke_of_a_local_api_by_its_url_runs_every_scenario_of_its_pattern_and_exits_0(
    agentrail: Callable[..., list[str]], local: LocalMode, pattern: str
) -> None:
    finished = smoke(agentrail, local, "--url", local.api(pattern)["url"])

    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-2000:]
    assert f"Smoke test of the {pattern} API at {local.api(pattern)['url']}" in finished.stdout
    for scenario in SCENARIOS[pattern]:
        assert f"Smoke: {scenario.name}" in finished.stdout
    assert "✗" not in finished.stdout and finished.stdout.rstrip().endswith("Smoke passed.")


def test_a_failing_scenario_exits_1_and_names_it(agentrail: Callable[..., list[str]], local: LocalMode) -> None:
    # The stateless API has no sessions: the stateful scenario cannot pass there.
    finished = smoke(agentrail, local, "--url", local.api("stateless")["url"], "--pattern", "stateful")

    assert finished.returncode == 1
    assert "agentrail smoke: failed: stateful: session remembers two turns" in finished.stderr
    assert "✗" in finished.stdout
