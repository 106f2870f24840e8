"""This machine's ``pythonX.Y`` for a Lambda runtime, found on PATH or in pyenv (standard library only).

The constructs compile the layers' bytecode with it, and local mode runs functions on it: both need the
same answer to "which CPython of this machine is Lambda's ``pythonX.Y``?".
"""

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
    # PYTHONPATH or PYTHONHOME of this process (a 3.11 venv) must not reach another version's start-up.
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    try:
        answer = subprocess.run([program, "-c", _PROBE], env=environment, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
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
    """``$PYENV_ROOT``, else what ``pyenv root`` says, else ``~/.pyenv`` when it exists, else None."""
    if environ.get("PYENV_ROOT"):
        return Path(environ["PYENV_ROOT"])
    default = Path.home() / ".pyenv"
    return _pyenv_root_from_command() or (default if default.is_dir() else None)


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


__all__ = [
    "Interpreter",
    "candidates",
    "find_interpreter",
    "probe",
    "pyenv_root",
    "runtime_version",
]
