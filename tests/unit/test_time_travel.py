"""The time-travel run: ``make test-time-travel`` really moves the clock, and a run whose clock did not move stops."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_the_time_travel_target_moves_the_clock_of_pytest_and_of_the_children_it_starts(repo_root, real_clock_environment):
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "test-time-travel",
            "TRAVEL_DAYS=400",
            "TRAVEL_TIERS=tests/unit/test_pricing.py",
            "PYTEST_ARGS=",
        ],
        cwd=repo_root,
        env=real_clock_environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (
        "time travel: this pytest process is 400.00 days ahead of the real clock; "
        "a child started as the suite starts it is 400.00 days ahead of the real clock"
    ) in done.stdout


def test_a_run_asking_for_time_travel_on_the_real_clock_stops_before_any_test(repo_root, real_clock_environment):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/unit/test_pricing.py", "-q"],
        cwd=repo_root,
        env=real_clock_environment | {"AGENTRAIL_TIME_TRAVEL_DAYS": "400"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 3
    assert (
        "time travel of 400 days asked for, but the clock of this pytest process is 0.00 days ahead" in done.stdout + done.stderr
    )
    assert " passed" not in done.stdout
