"""What runs a function on this machine: as close to what deploys as the machine allows.

A function whose template says ``pythonX.Y`` runs on a ``pythonX.Y`` found here (see
:mod:`~agentrail_local.awslambda.interpreters`), with its dependencies layer's exact pins
rebuilt for that interpreter (see :mod:`~agentrail_local.awslambda.layer_packages`). When the
machine has no such interpreter, it runs on this process's interpreter and the venv's packages,
and local mode warns once, naming what differs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agentrail_local.awslambda import bootstrap
from agentrail_local.awslambda.definitions import HOST_BUILT_LAYER_KINDS, FunctionDefinition
from agentrail_local.awslambda.interpreters import (
    PYTHON_OVERRIDE_ENV,
    Interpreter,
    find_interpreter,
    named_interpreter,
    runtime_version,
)
from agentrail_local.awslambda.layer_packages import HostCopies, installed_versions, layer_pins, version_differences
from agentrail_local.console import Console

# Run by path, not ``-m``: another interpreter must not see this package's site-packages. ``-c`` keeps the
# bootstrap's own folder off sys.path (a script's folder would shadow the function's modules).
_RUN_BOOTSTRAP = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"


@dataclass(frozen=True)
class LocalRuntime:
    """The interpreter of one function and the packages folder that takes its dependencies layer's place.

    ``packages_dir`` is None when the function imports the interpreter's own packages (this venv's),
    or has no dependencies layer.
    """

    interpreter: Interpreter
    packages_dir: Path | None = None

    def command(self) -> list[str]:
        """The command line of an execution environment (``-s``: no user site-packages, as on Lambda)."""
        return [str(self.interpreter.executable), "-s", "-c", _RUN_BOOTSTRAP, str(Path(bootstrap.__file__).resolve())]

    def python_path(self, definition: FunctionDefinition) -> list[str]:
        """The code folder, the layers' ``python/`` folders, then the packages (Lambda's ``/var/task``, then ``/opt/python``)."""
        entries = definition.python_path()
        return [*entries, str(self.packages_dir)] if self.packages_dir is not None else entries


class LocalRuntimes:
    """Chooses each function's :class:`LocalRuntime`, builds host copies of layers, and warns once per difference.

    Parameters
    ----------
    python:
        The interpreter of every function (a path or a command). Default: ``$AGENTRAIL_LOCAL_PYTHON``, else the
        runtime's ``pythonX.Y`` from PATH or pyenv, else this interpreter.
    cache_dir:
        Where host copies are kept. Default: ``$AGENTRAIL_CACHE_DIR``, else ``~/.cache/agentrail``.
    warn:
        Receives each warning once.
    note:
        Receives progress worth a line (a host copy being built).
    """

    def __init__(
        self,
        *,
        python: str | None = None,
        cache_dir: Path | None = None,
        warn: Console | None = None,
        note: Console | None = None,
    ) -> None:
        self._python = python or os.environ.get(PYTHON_OVERRIDE_ENV) or None
        self._named = python is not None
        self.host_copies = HostCopies(cache_dir)
        self._warn = warn or (lambda _: None)
        self._note = note or (lambda _: None)
        self._interpreters: dict[str, Interpreter | None] = {}
        self.warnings: list[str] = []

    def resolve(self, definition: FunctionDefinition) -> LocalRuntime:
        """The runtime of ``definition``, building its host copy first when needed.

        Raises
        ------
        LocalPythonError
            When the named interpreter does not run, or a host copy cannot be built.
        """
        wanted = runtime_version(definition.runtime)
        interpreter, why = self._interpreter(definition.runtime, wanted)
        pins = self._pins(definition)
        problems = []
        if wanted is not None and interpreter.minor != wanted:
            problems.append(
                f"run on Python {interpreter.version} ({interpreter.executable}) instead of {wanted[0]}.{wanted[1]}: {why}"
            )
        if interpreter.is_this_process:
            differences = version_differences(pins, installed_versions(list(pins)))
            if differences:
                problems.append(
                    f"import this environment's packages, which differ from the dependencies layer's: {'; '.join(differences)}"
                )
            self._warn_once(definition.runtime, problems)
            return LocalRuntime(interpreter)
        self._warn_once(definition.runtime, problems)
        if not pins:
            return LocalRuntime(interpreter)
        if not self.host_copies.path(pins, interpreter).is_dir():
            self._note(
                f"installing the dependencies layer's {len(pins)} pinned packages for Python {interpreter.version} "
                f"into {self.host_copies.root} (once)"
            )
        return LocalRuntime(interpreter, self.host_copies.ensure(pins, interpreter))

    def _interpreter(self, runtime: str, wanted: tuple[int, int] | None) -> tuple[Interpreter, str]:
        if self._python:
            source = "the python argument" if self._named else PYTHON_OVERRIDE_ENV
            return named_interpreter(self._python), f"{source} names that interpreter"
        if runtime not in self._interpreters:
            self._interpreters[runtime] = find_interpreter(wanted) if wanted is not None else None
        found = self._interpreters[runtime]
        if found is not None:
            return found, ""
        reason = f"no python{wanted[0]}.{wanted[1]} on PATH or in pyenv ({PYTHON_OVERRIDE_ENV} names another)" if wanted else ""
        return Interpreter.current(), reason

    @staticmethod
    def _pins(definition: FunctionDefinition) -> dict[str, str]:
        pins: dict[str, str] = {}
        for layer in definition.layers:
            if layer.kind in HOST_BUILT_LAYER_KINDS and layer.python_dir is not None and layer.python_dir.is_dir():
                pins.update(layer_pins(layer.python_dir))
        return pins

    def _warn_once(self, runtime: str, problems: list[str]) -> None:
        if not problems:
            return
        message = f"{runtime} functions " + "; and ".join(problems)
        if message not in self.warnings:
            self.warnings.append(message)
            self._warn(message)


__all__ = ["LocalRuntime", "LocalRuntimes"]
