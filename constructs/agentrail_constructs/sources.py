"""Where the code assets come from, found without importing any runtime code.

``importlib.util.find_spec`` locates an installed package's folder without
executing it, so this works the same from a checkout (editable install) and
from an app that ``pip install``-ed agentrail-aws.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from agentrail_layers import interpreters
from agentrail_layers.interpreters import Interpreter, runtime_version

__all__ = [
    "Interpreter",
    "asgi_lock",
    "dependencies_lock",
    "dependencies_requirements",
    "find_interpreter",
    "handler_dir",
    "package_dir",
    "runtime_package_dir",
]


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name!r} is not installed; `pip install agentrail-aws` provides it")
    return Path(next(iter(spec.submodule_search_locations)))


def runtime_package_dir() -> Path:
    """The ``agentrail_runtime`` package, copied into the runtime layer under ``python/``."""
    return package_dir("agentrail_runtime")


def dependencies_requirements() -> Path:
    """The top-level pins of the runtime layer's third-party packages (the input of ``make lock``)."""
    return package_dir("agentrail_layers") / "dependencies" / "requirements.in"


def dependencies_lock() -> Path:
    """The full lock, with hashes, that the dependencies layer installs: every package and its exact version."""
    return package_dir("agentrail_layers") / "dependencies" / "requirements.lock"


def asgi_lock() -> Path:
    """The hashed lock the optional ASGI layer installs (mangum, FastAPI and what the dependencies layer lacks)."""
    return package_dir("agentrail_layers") / "asgi" / "requirements.lock"


def handler_dir(name: str) -> Path:
    """The code asset of one of agentrail's own handlers, e.g. ``stateless``."""
    path = package_dir("agentrail_handlers") / name
    if not (path / "app.py").is_file():
        raise RuntimeError(f"agentrail has no handler named {name!r}")
    return path


def find_interpreter(version: str) -> Interpreter | None:
    """The ``python<version>`` interpreter of this machine, e.g. for ``3.13``, or None when there is none.

    Looks on ``PATH`` first, then in pyenv's versions, newest patch release first, and keeps the first
    that runs and reports that version (:mod:`agentrail_layers.interpreters`, which local mode uses too).
    Lambda's ``python<version>`` runtime is the same CPython, so this interpreter compiles the bytecode
    that the layers ship.
    """
    wanted = runtime_version(f"python{version}")
    if wanted is None:
        raise ValueError(f"not a Python version: {version!r}")
    return interpreters.find_interpreter(wanted)
