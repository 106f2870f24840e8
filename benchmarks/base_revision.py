"""``--base REV``: the same figures measured on an earlier revision, from a git worktree, in the same run.

A "before" figure is only honest when it is measured on the same machine, under the same load, by the same
interpreter and dependencies as the "after". So the base revision is checked out in a worktree (never the working
copy), given an interpreter that sees the worktree's packages first and this venv's dependencies after (no
editable install pointing back at this checkout), and each figure runs there right before it runs here. Each side
uses its own revision's benchmark code, so the figure means what that revision said it means; rows are compared by
name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.report import REPO_ROOT, format_value

__all__ = ["BaseCheckout", "before_and_after"]


@dataclass
class BaseCheckout:
    """A worktree of ``revision`` with an interpreter that imports the worktree's code; remove it when done."""

    revision: str
    root: Path
    python: Path

    @classmethod
    def create(cls, revision: str, workdir: Path) -> BaseCheckout:
        commit = _git("rev-parse", "--verify", f"{revision}^{{commit}}").strip()
        root = workdir / f"base-{commit[:12]}"
        _git("worktree", "add", "--detach", str(root), commit)
        # Its own venv without packages; a .pth puts the worktree's package roots first, then this venv's site-packages
        # (whose own .pth files, the editable install among them, are not processed from a .pth line).
        venv = root / ".bench-venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
        site = Path(
            subprocess.run(
                [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        lines = [str(root / folder) for folder in _package_roots(root)]
        lines.append(sysconfig.get_paths()["purelib"])
        (site / "agentrail-base.pth").write_text("\n".join(lines) + "\n")
        if (REPO_ROOT / "node_modules").is_dir() and not (root / "node_modules").exists():
            (root / "node_modules").symlink_to(REPO_ROOT / "node_modules")
        return cls(revision=commit, root=root, python=venv / "bin" / "python")

    def run(self, key: str, *, repeat: int | None, quick: bool, output: Path) -> dict[str, Any]:
        """Run figure ``key`` of the base revision; its JSON report (figures, machine, run)."""
        command = [str(self.python), "-m", "benchmarks", "--only", key, "--output", str(output)]
        if quick:
            command.append("--quick")
        if repeat is not None:
            command += ["--repeat", str(repeat)]
        completed = subprocess.run(command, cwd=self.root, capture_output=True, text=True, check=False)
        sys.stderr.write(completed.stderr)
        if not output.exists():
            raise RuntimeError(f"the base revision's {key} wrote no report (exit {completed.returncode})")
        return dict(json.loads(output.read_text()))

    def remove(self) -> None:
        _git("worktree", "remove", "--force", str(self.root))


def before_and_after(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Markdown: for each figure, every row measured on both revisions (by name), its value before and after and the
    change; then the rows only one revision has."""
    out = ["## Before and after", ""]
    for key, rows in after.items():
        earlier = {row["name"]: row for row in before.get(key, [])}
        out += [f"### {key}", "", "| Figure | Before | After | After / before |", "|---|---|---|---|"]
        for row in rows:
            old = earlier.get(row["name"])
            if old is None:
                continue
            change = f"{row['value'] / old['value']:.2f}" if old["value"] else "-"
            out.append(
                f"| {row['name']} | {format_value(old['value'], old['unit'])} | {format_value(row['value'], row['unit'])} "
                f"| {change} |"
            )
        names = {row["name"] for row in rows}
        new = [row["name"] for row in rows if row["name"] not in earlier]
        gone = [name for name in earlier if name not in names]
        if new:
            out.append(f"\nOnly after: {'; '.join(new)}.")
        if gone:
            out.append(f"\nOnly before: {'; '.join(gone)}.")
        out.append("")
    return out


def _package_roots(root: Path) -> list[str]:
    """The folders holding the checkout's top-level packages, as its own ``pyproject.toml`` tells setuptools (what
    the editable install maps), then the checkout itself (``benchmarks``)."""
    with (root / "pyproject.toml").open("rb") as pyproject:
        where = tomllib.load(pyproject)["tool"]["setuptools"]["packages"]["find"]["where"]
    return [*where, "."]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
