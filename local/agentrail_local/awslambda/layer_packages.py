"""The dependencies layer's packages: its exact pins, read from the asset, and a copy of them built for this machine.

The layer in ``cdk.out`` holds wheels for the Lambda platform (manylinux, arm64 by
default), which an interpreter on another machine cannot load. Its ``*.dist-info``
folders still say exactly what deploys, so local mode installs those versions again,
as wheels for the local interpreter, once, into a cache keyed by what it installs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from email.parser import HeaderParser
from pathlib import Path

from agentrail_local.awslambda.interpreters import Interpreter, LocalPythonError
from agentrail_local.awslambda.workers import moved_clock_environment


def canonical_name(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): ``Typing_Extensions`` is ``typing-extensions``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def layer_pins(python_dir: Path) -> dict[str, str]:
    """Canonical name → version of every distribution in a layer's ``python/`` folder, from its ``*.dist-info/METADATA``."""
    pins: dict[str, str] = {}
    parser = HeaderParser()
    for metadata in sorted(python_dir.glob("*.dist-info/METADATA")):
        headers = parser.parsestr(metadata.read_text(encoding="utf-8", errors="replace"))
        if headers["Name"] and headers["Version"]:
            pins[canonical_name(headers["Name"])] = headers["Version"].strip()
    return pins


def installed_versions(names: list[str] | tuple[str, ...] | Mapping[str, str]) -> dict[str, str | None]:
    """The version of each distribution in this process's environment (the venv), None when it is not installed."""
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def version_differences(pins: Mapping[str, str], installed: Mapping[str, str | None]) -> list[str]:
    """``"httpx: 0.29.0 here vs 0.28.1 in the layer"`` for each pinned distribution installed in another version, or not at all."""
    differences = []
    for name, pinned in sorted(pins.items()):
        here = installed.get(name)
        if here != pinned:
            differences.append(f"{name}: {here or 'not installed'} here vs {pinned} in the layer")
    return differences


def cache_root(environ: Mapping[str, str] = os.environ) -> Path:
    """agentrail's cache: ``$AGENTRAIL_CACHE_DIR``, else ``$XDG_CACHE_HOME/agentrail`` or ``~/.cache/agentrail``."""
    if environ.get("AGENTRAIL_CACHE_DIR"):
        return Path(environ["AGENTRAIL_CACHE_DIR"])
    return Path(environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "agentrail")


def host_copy_key(pins: Mapping[str, str], interpreter: Interpreter) -> str:
    """What a host copy is built from: the pins, the interpreter's version and its platform."""
    text = "\n".join(
        [*(f"{name}=={version}" for name, version in sorted(pins.items())), interpreter.version, interpreter.platform]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class HostCopies:
    """Copies of layers' pinned packages built for local interpreters, under ``<cache>/local-packages/<key>/python``.

    Parameters
    ----------
    cache_dir:
        Default: :func:`cache_root`.
    """

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.root = (cache_dir or cache_root()) / "local-packages"
        #: The copies this instance had to build (the others were in the cache already).
        self.built: list[Path] = []

    def path(self, pins: Mapping[str, str], interpreter: Interpreter) -> Path:
        return self.root / host_copy_key(pins, interpreter) / "python"

    def ensure(self, pins: Mapping[str, str], interpreter: Interpreter) -> Path:
        """The ``python/`` folder of the copy, built first when the cache lacks it.

        Raises
        ------
        LocalPythonError
            When pip cannot install the pinned wheels for this interpreter (offline, or no wheel for its platform).
        """
        target = self.path(pins, interpreter)
        if target.is_dir():
            return target
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=self.root))
        command = [
            str(interpreter.executable), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
            "--only-binary=:all:", "--no-deps", "--target", str(staging / "python"),
            *(f"{name}=={version}" for name, version in sorted(pins.items())),
        ]  # fmt: skip
        # pip reaches PyPI on the real clock: under a moved one, TLS certificates look expired.
        moved = moved_clock_environment(os.environ)
        environment = {name: value for name, value in os.environ.items() if name not in moved}
        environment["PIP_ROOT_USER_ACTION"] = "ignore"
        result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise LocalPythonError(
                f"could not install the dependencies layer's {len(pins)} pinned packages for Python {interpreter.version} "
                f"({interpreter.executable}, {interpreter.platform}): pip exited {result.returncode}; is PyPI reachable, "
                f"and does each pin have a wheel for this platform? {result.stderr.strip()[-800:]}"
            )
        shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
        try:
            staging.rename(target.parent)  # atomic: a half-built copy is never visible
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.is_dir():
                raise
        else:
            self.built.append(target)
        return target


__all__ = [
    "HostCopies",
    "cache_root",
    "canonical_name",
    "host_copy_key",
    "installed_versions",
    "layer_pins",
    "version_differences",
]
