"""ARCHITECTURE.md stays true: every file it names exists, and every import contract it names is in pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = (REPO_ROOT / "ARCHITECTURE.md").read_text()
#: Where a path in the page may be relative to: the repository, or the package folders it walks through.
BASES = [
    REPO_ROOT,
    REPO_ROOT / "layers" / "runtime" / "python",
    REPO_ROOT / "layers" / "runtime" / "python" / "agentrail_runtime",
    REPO_ROOT / "constructs",
    REPO_ROOT / "handlers",
    REPO_ROOT / "local",
    REPO_ROOT / "cli",
]


def named_files() -> set[str]:
    quoted = re.findall(r"`([^`\s]+)`", DOC)
    return {q.rstrip("/") for q in quoted if re.fullmatch(r"[\w./<>-]+\.(py|json|md|toml|lock|in)|[\w/]+/", q) and "<" not in q}


def test_every_file_and_folder_the_architecture_page_names_exists() -> None:
    names = named_files()

    missing = {name for name in names if not any((base / name).exists() for base in BASES)}

    assert len(names) > 20, "given: the page names the files a request passes through"
    assert missing == set()


def test_every_import_contract_the_architecture_page_names_is_enforced() -> None:
    contracts = {c["id"] for c in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]}
    # "contract `a`", "Contracts `a`, `b` and `c`": every backticked name in such a list.
    lists = re.findall(r"[Cc]ontracts? ((?:`[\w-]+`(?:, | and )?)+)", DOC)
    named = {name for listed in lists for name in re.findall(r"`([\w-]+)`", listed)}

    assert len(named) >= 7, "given: the page names the contracts that hold its rules"
    assert named - contracts == set()
