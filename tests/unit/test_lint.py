"""Static checks: ruff's rule set (pyproject.toml [tool.ruff.lint]) finds nothing, and ruff format changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)


def test_the_code_has_no_ruff_findings() -> None:
    result = ruff("check", "--no-cache", ".")

    assert result.returncode == 0, result.stdout[-4000:]


def test_the_code_is_formatted_by_ruff_format() -> None:
    result = ruff("format", "--check", "--no-cache", ".")

    assert result.returncode == 0, f"run `ruff format .`:\n{result.stdout[-4000:]}"
