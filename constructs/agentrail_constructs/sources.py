"""Where the code assets come from, found without importing any runtime code.

``importlib.util.find_spec`` locates an installed package's folder without
executing it, so this works the same from a checkout (editable install) and
from an app that ``pip install``-ed agentrail-aws.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name!r} is not installed; `pip install agentrail-aws` provides it")
    return Path(next(iter(spec.submodule_search_locations)))


def runtime_package_dir() -> Path:
    """The ``agentrail_runtime`` package, copied into the runtime layer under ``python/``."""
    return package_dir("agentrail_runtime")


def dependencies_requirements() -> Path:
    """The pinned third-party requirements of the runtime layer."""
    return package_dir("agentrail_layers") / "dependencies" / "requirements.txt"


def handler_dir(name: str) -> Path:
    """The code asset of one of agentrail's own handlers, e.g. ``stateless``."""
    path = package_dir("agentrail_handlers") / name
    if not (path / "app.py").is_file():
        raise RuntimeError(f"agentrail has no handler named {name!r}")
    return path
