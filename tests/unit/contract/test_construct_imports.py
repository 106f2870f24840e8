"""The construct modules import each other in one direction: no circle, and no runtime code but its contract."""

from __future__ import annotations

import ast
from pathlib import Path

from agentrail_constructs.sources import package_dir

PACKAGE = "agentrail_constructs"


def module_imports() -> dict[str, set[str]]:
    """Module -> the agentrail modules it imports at any level (``__init__`` re-exports left out)."""
    root = package_dir(PACKAGE)
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        name = ".".join((PACKAGE, *path.relative_to(root).with_suffix("").parts))
        imported = set()
        for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agentrail_"):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names if alias.name.startswith("agentrail_")}
        graph[name] = imported
    return graph


def test_no_construct_module_imports_another_that_imports_it_back() -> None:
    graph = module_imports()
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            module, trail = stack.pop()
            for target in graph.get(module, ()):
                if target == start:
                    circles.append(" -> ".join([*trail, target]))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*trail, target]))

    assert circles == []


def test_the_constructs_import_no_runtime_module_but_the_contract() -> None:
    runtime = {target for targets in module_imports().values() for target in targets if target.startswith("agentrail_runtime")}

    assert runtime <= {"agentrail_runtime", "agentrail_runtime.contract"}
