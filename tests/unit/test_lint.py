"""Static checks that find real defects: undefined and unused names, syntax errors, bugbear's traps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["app.py", "constructs", "handlers", "layers", "cli", "local", "benchmarks", "tests"]


def test_the_code_has_no_pyflakes_or_bugbear_findings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", *SOURCES],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:]
