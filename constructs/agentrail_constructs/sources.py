"""Where the code assets come from, found without importing any runtime code.

``importlib.util.find_spec`` locates an installed package's folder without
executing it, so this works the same from a checkout (editable install) and
from an app that ``pip install``-ed agentrail-aws.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
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
    """The top-level pins of the runtime layer's third-party packages (the input of ``make lock``)."""
    return package_dir("agentrail_layers") / "dependencies" / "requirements.in"


def dependencies_lock() -> Path:
    """The full lock, with hashes, that the dependencies layer installs: every package and its exact version."""
    return package_dir("agentrail_layers") / "dependencies" / "requirements.lock"


def handler_dir(name: str) -> Path:
    """The code asset of one of agentrail's own handlers, e.g. ``stateless``."""
    path = package_dir("agentrail_handlers") / name
    if not (path / "app.py").is_file():
        raise RuntimeError(f"agentrail has no handler named {name!r}")
    return path


@dataclass(frozen=True)
class Interpreter:
    """A CPython interpreter of this machine."""

    path: Path
    version: str
    """Its full version, e.g. ``3.13.0``."""


def find_interpreter(version: str) -> Interpreter | None:
    """The ``python<version>`` interpreter of this machine, e.g. for ``3.13``, or None when there is none.

    Looks on ``PATH`` first, then in pyenv's versions (``$PYENV_ROOT``, default
    ``~/.pyenv``), newest patch release first, and keeps the first that runs
    and reports that version. Lambda's ``python<version>`` runtime is the same
    CPython, so this interpreter compiles the bytecode that the layers ship.
    """
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    return _find_interpreter(version, os.environ.get("PATH", os.defpath), pyenv_root)


def _patch_release(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parents[1].name))


@functools.cache
def _find_interpreter(version: str, search_path: str, pyenv_root: str) -> Interpreter | None:
    name = f"python{version}"
    on_path = shutil.which(name, path=search_path)
    in_pyenv = sorted(Path(pyenv_root).glob(f"versions/{version}.*/bin/{name}"), key=_patch_release, reverse=True)
    # A pyenv shim on PATH exits with an error unless the selected pyenv version has the command.
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    for candidate in [*([on_path] if on_path else []), *map(str, in_pyenv)]:
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])"],
                env=environment, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = probe.stdout.split()
        if probe.returncode == 0 and len(lines) == 2 and lines[1].rsplit(".", 1)[0] == version:
            return Interpreter(path=Path(lines[0]), version=lines[1])
    return None
