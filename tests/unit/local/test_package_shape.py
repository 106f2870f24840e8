"""Local mode's package stays in shape: short modules, no import cycles, nothing from the CLI or the runtime.

Local mode emulates AWS: it must run any app's templates and handlers, so it
never imports the code it hosts (``agentrail_runtime``) or the CLI that drives it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import agentrail_local

PACKAGE = Path(agentrail_local.__file__).parent
MAX_LINES = 500
FORBIDDEN = ("agentrail_cli", "agentrail_runtime")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _imported_names(tree: ast.AST) -> list[str]:
    """Every module an import statement names, at any depth, except under ``if TYPE_CHECKING:`` (never executed)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if _is_type_checking_block(node):
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {imported for imported in _imported_names(ast.parse(path.read_text())) if imported in modules and imported != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def walk(node: str, trail: list[str]) -> list[str] | None:
        if node in trail:
            return [*trail[trail.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            found = walk(target, [*trail, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = walk(start, [])
        if found:
            return found
    return None


def test_no_module_of_local_mode_is_longer_than_500_lines() -> None:
    lengths = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}

    too_long = {name: length for name, length in lengths.items() if length > MAX_LINES}

    assert len(lengths) > 20, "the walk found local mode's modules"
    assert too_long == {}


def test_local_mode_imports_nothing_from_the_cli_or_the_runtime() -> None:
    offending = {
        name: sorted(imported for imported in _imported_names(ast.parse(path.read_text())) if imported.split(".")[0] in FORBIDDEN)
        for name, path in _modules().items()
    }

    assert {name: found for name, found in offending.items() if found} == {}


def test_local_mode_has_no_import_cycle_not_even_through_a_deferred_import() -> None:
    graph = _import_graph()

    assert graph["agentrail_local.cloud"] >= {"agentrail_local.apigateway.server", "agentrail_local.cloudformation.deployer"}
    assert _cycle(graph) is None


def test_the_cycle_check_finds_a_cycle_when_there_is_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert _cycle(graph) == ["a", "b", "c", "a"]


def test_the_package_still_exposes_cloud_assembly_local_cloud_and_api_endpoint() -> None:
    exported = {name: getattr(importlib.import_module("agentrail_local"), name) for name in agentrail_local.__all__}

    assert set(exported) == {"ApiEndpoint", "CloudAssembly", "LocalCloud"}
    assert all(value.__name__ == name for name, value in exported.items())
