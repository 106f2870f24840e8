"""The runtime's layers point one way and nothing imports in a circle: import-linter's contracts (pyproject.toml) hold."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]


def lint_imports(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` in a fresh interpreter, without its cache (nothing is written into the tree)."""
    return subprocess.run(
        [*LINT_IMPORTS, "--no-cache", *arguments], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_every_import_contract_of_the_repository_is_kept():
    # given: the contracts of pyproject.toml over the runtime, the handlers and the benchmarks
    # when
    run = lint_imports("--no-logo", cwd=REPO_ROOT)

    # then
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Contracts: {len(CONTRACTS['contracts'])} kept, 0 broken." in run.stdout


def test_the_cycle_contract_breaks_on_a_package_whose_modules_import_each_other(tmp_path: Path):
    # given: a package of two modules that import each other, checked with the repository's own cycle contract
    package = tmp_path / "circular"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "orders.py").write_text("from circular import refunds\n")
    (package / "refunds.py").write_text("from circular import orders\n")
    [no_cycles] = [c for c in CONTRACTS["contracts"] if c["id"] == "no-cycles"]
    (tmp_path / ".importlinter").write_text(
        f"[importlinter]\nroot_package = circular\n\n[importlinter:contract:no-cycles]\n"
        f"name = {no_cycles['name']}\ntype = {no_cycles['type']}\nancestors = circular\n"
    )

    # when
    run = lint_imports("--no-logo", ".importlinter", cwd=tmp_path)

    # then: the gate fails and names the circle
    assert run.returncode == 1, run.stdout + run.stderr
    assert "BROKEN" in run.stdout
    assert "- .refunds -> .orders" in run.stdout


def test_no_module_reaches_itself_through_its_imports_package_inits_included():
    # given: every module of the three root packages, and every import between them (TYPE_CHECKING ones too)
    sys.path.insert(0, str(REPO_ROOT))  # benchmarks is a folder of the repository, not an installed package
    try:
        graph = grimp.build_graph(*CONTRACTS["root_packages"], cache_dir=None)
    finally:
        sys.path.remove(str(REPO_ROOT))

    # when: looking for a way back from each module to itself
    circles = {
        module: chain
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if (chain := graph.find_shortest_chain(importer=imported, imported=module))
    }

    # then
    assert not circles, "\n".join(f"{module} -> {' -> '.join(chain)}" for module, chain in sorted(circles.items()))
