"""Which Python runs a function here: the template's ``pythonX.Y`` when this machine has one (found as the
layers' bytecode compiler finds it, :mod:`agentrail_layers.interpreters`), or the one a user names."""

from __future__ import annotations

import shutil
from pathlib import Path

from agentrail_layers.interpreters import Interpreter, find_interpreter, probe, runtime_version

#: Names the interpreter of every function, instead of each runtime's ``pythonX.Y`` (a path or a command).
PYTHON_OVERRIDE_ENV = "AGENTRAIL_LOCAL_PYTHON"


class LocalPythonError(RuntimeError):
    """The interpreter local mode was told to use does not run, or the layer's packages cannot be built for it."""


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
    "find_interpreter",
    "named_interpreter",
    "runtime_version",
]
