"""A plain install gives a CLI that runs: --help and --version need no extra, and a command whose extra
is missing says so in one sentence instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agentrail_cli.extras import DISTRIBUTION, EXTRA_OF

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())

# Runs the CLI with every optional module unimportable, as after `pip install agentrail-aws` alone.
WITHOUT_EXTRAS = r"""
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
from agentrail_cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def run_without_extras(*args: str, blocked: set[str] = frozenset(EXTRA_OF)) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, ",".join(sorted(blocked)), *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT,
    )  # fmt: skip


def test_help_and_version_run_without_any_extra() -> None:
    helped = run_without_extras("--help")
    versioned = run_without_extras("--version")

    assert helped.returncode == 0, helped.stderr
    assert "local" in helped.stdout and "approvals" in helped.stdout
    assert versioned.returncode == 0, versioned.stderr
    assert versioned.stdout.strip() == f"agentrail {PYPROJECT['project']['version']}"


@pytest.mark.parametrize(
    "command",
    [
        ["local", "--tour"],
        ["openapi"],
        ["dlq", "list", "--stack", "Shop"],
        ["approvals", "list"],
        ["call", "https://example.com/v1", "GET", "/health"],
        ["plan", "--file", "requirements.yaml"],
    ],
    ids=lambda c: c[0],
)
def test_a_command_whose_extra_is_missing_says_which_extra_to_install_in_one_sentence(command: list[str]) -> None:
    result = run_without_extras(*command)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"agentrail {command[0]} needs the 'local' extra of {DISTRIBUTION} (")
    assert line.endswith(f"pip install '{DISTRIBUTION}[local]'")


def test_app_py_without_cdk_nag_names_the_nag_extra() -> None:
    code = (
        "import builtins, runpy, sys\n"
        "real = builtins.__import__\n"
        "def no_nag(name, *a, **k):\n"
        "    if name.partition('.')[0] == 'cdk_nag': raise ModuleNotFoundError(name, name=name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = no_nag\n"
        "runpy.run_path('app.py', run_name='__main__')\n"
    )

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False, cwd=REPO_ROOT)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"app.py checks every stack with cdk-nag: pip install '{DISTRIBUTION}[nag]'"


def test_every_extra_a_message_names_is_declared_and_cdk_nag_is_not_a_base_dependency() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    base = PYPROJECT["project"]["dependencies"]

    assert set(EXTRA_OF.values()) <= set(extras)
    assert not [d for d in base if d.startswith("cdk-nag")]
    assert [d for d in extras["nag"] if d.startswith("cdk-nag")]
    assert PYPROJECT["project"]["name"] == DISTRIBUTION


def test_no_message_of_the_cli_or_local_mode_tells_a_user_to_run_make() -> None:
    sources = [*(REPO_ROOT / "cli").rglob("*.py"), *(REPO_ROOT / "local").rglob("*.py")]

    told = [f"{p.relative_to(REPO_ROOT)}" for p in sources if "`make " in p.read_text()]

    assert told == []
