"""Which Python runs a function here: the template's ``pythonX.Y`` when this machine has one, found on PATH or in pyenv."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: Names the interpreter of every function, instead of each runtime's ``pythonX.Y`` (a path or a command).
PYTHON_OVERRIDE_ENV = "AGENTRAIL_LOCAL_PYTHON"

_RUNTIME = re.compile(r"python(\d+)\.(\d+)")
_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
# A virtual environment's interpreter is reported by its base: the venv's packages are not the layer's.
_PROBE = """
import json, platform, sys, sysconfig
virtual = sys.prefix != sys.base_prefix
print(json.dumps({
    "executable": sys.executable,
    "base_executable": getattr(sys, "_base_executable", sys.executable) if virtual else sys.executable,
    "version": platform.python_version(),
    "implementation": sys.implementation.name,
    "platform": sysconfig.get_platform(),
}))
"""


class LocalPythonError(RuntimeError):
    """The interpreter local mode was told to use does not run, or the layer's packages cannot be built for it."""


@dataclass(frozen=True)
class Interpreter:
    """A CPython interpreter on this machine.

    Parameters
    ----------
    executable:
        The program to start.
    version:
        Its full version, e.g. ``3.13.0``.
    platform:
        ``sysconfig.get_platform()``, e.g. ``linux-x86_64``: which wheels it loads.
    """

    executable: Path
    version: str
    platform: str

    @property
    def minor(self) -> tuple[int, int]:
        major, minor, *_ = self.version.split(".")
        return int(major), int(minor)

    @property
    def is_this_process(self) -> bool:
        """Whether it is the interpreter running local mode, whose packages are the venv's."""
        return str(self.executable) == sys.executable

    @classmethod
    def current(cls) -> Interpreter:
        return cls(Path(sys.executable), ".".join(map(str, sys.version_info[:3])), sysconfig.get_platform())


def runtime_version(runtime: str) -> tuple[int, int] | None:
    """``(3, 13)`` for the Lambda runtime ``python3.13``; None for any other runtime."""
    match = _RUNTIME.fullmatch(runtime)
    return (int(match[1]), int(match[2])) if match else None


def candidates(version: tuple[int, int], *, search_path: str, pyenv_root: Path | None) -> list[Path]:
    """Programs that may be ``pythonX.Y``: each one on ``search_path``, then pyenv's ``X.Y.*`` releases, newest first."""
    name = f"python{version[0]}.{version[1]}"
    found = [Path(folder, name) for folder in search_path.split(os.pathsep) if folder]
    found = [path for path in found if path.is_file() and os.access(path, os.X_OK)]
    if pyenv_root is not None:
        releases = []
        for folder in (pyenv_root / "versions").glob(f"{version[0]}.{version[1]}.*"):
            match = _RELEASE.fullmatch(folder.name)
            program = folder / "bin" / name
            if match and program.is_file():
                releases.append((tuple(int(part) for part in match.groups()), program))
        found.extend(program for _, program in sorted(releases, reverse=True))
    return found


@lru_cache(maxsize=64)
def probe(program: str) -> dict[str, str] | None:
    """What ``program`` says about itself, or None when it does not run (a pyenv shim of another version fails)."""
    try:
        answer = subprocess.run([program, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return None
    if answer.returncode != 0:
        return None
    try:
        facts = json.loads(answer.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return facts if isinstance(facts, dict) and facts.get("implementation") == "cpython" else None


@lru_cache(maxsize=4)
def _pyenv_root_from_command() -> Path | None:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    answer = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=60, check=False)
    return Path(answer.stdout.strip()) if answer.returncode == 0 and answer.stdout.strip() else None


def pyenv_root(environ: Mapping[str, str] = os.environ) -> Path | None:
    """``$PYENV_ROOT``, else what ``pyenv root`` says, else None."""
    if environ.get("PYENV_ROOT"):
        return Path(environ["PYENV_ROOT"])
    return _pyenv_root_from_command()


def find_interpreter(version: tuple[int, int], environ: Mapping[str, str] = os.environ) -> Interpreter | None:
    """The first ``pythonX.Y`` that runs, outside any virtual environment; None when this machine has none."""
    for program in candidates(version, search_path=environ.get("PATH", ""), pyenv_root=pyenv_root(environ)):
        facts = probe(str(program))
        if facts is None:
            continue
        found = Interpreter(Path(facts["base_executable"]), facts["version"], facts["platform"])
        if found.minor == version:
            return found
    return None


def named_interpreter(name: str) -> Interpreter:
    """The interpreter a user named (a path, or a command on PATH), exactly as named.

    Raises
    ------
    LocalPythonError
        When it cannot be found or does not run as CPython.
    """
    program = shutil.which(name) or name
    facts = probe(program)
    if facts is None:
        raise LocalPythonError(f"{PYTHON_OVERRIDE_ENV}={name}: that program does not run as a CPython interpreter here")
    return Interpreter(Path(facts["executable"]), facts["version"], facts["platform"])


__all__ = [
    "PYTHON_OVERRIDE_ENV",
    "Interpreter",
    "LocalPythonError",
    "candidates",
    "find_interpreter",
    "named_interpreter",
    "probe",
    "pyenv_root",
    "runtime_version",
]
