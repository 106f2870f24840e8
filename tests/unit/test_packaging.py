"""Packaging: the repo's ``constructs/`` folder never shadows the ``constructs`` library,
and every package folder is found by name. (tests/infra/test_installed_wheel.py installs the wheel into a stranger's app.)"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import setuptools

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
FIND = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
#: Every top-level import name the distribution publishes: each is a folder of the same name under one root.
TOP_LEVEL = {
    "agentrail_runtime",
    "agentrail_constructs",
    "agentrail_handlers",
    "agentrail_cli",
    "agentrail_local",
    "agentrail_layers",
}
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"
_NOT_SOURCE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


def child_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CDK_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    env.update(extra)
    return env


# -- the constructs library is never shadowed ----------------------------------------


def test_repo_constructs_folder_is_not_a_package() -> None:
    assert (REPO_ROOT / "constructs").is_dir()
    assert not (REPO_ROOT / "constructs" / "__init__.py").exists()


def test_constructs_library_loads_from_site_packages_when_run_from_the_repo_root() -> None:
    # `python -c` puts the current folder first on sys.path: the repo's constructs/ folder is right there.
    code = "import aws_cdk; from constructs import Construct; import constructs; print(constructs.__file__)"

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr[-2000:]
    loaded_from = Path(result.stdout.strip().splitlines()[-1])
    assert loaded_from.is_relative_to(SITE_PACKAGES)
    assert not loaded_from.is_relative_to(REPO_ROOT / "constructs")


def test_no_module_in_the_repo_constructs_folder_collides_with_a_library_submodule() -> None:
    spec = importlib.util.find_spec("constructs")
    assert spec is not None and spec.submodule_search_locations
    library_modules = {module.name for module in pkgutil.iter_modules(spec.submodule_search_locations)}
    assert "_jsii" in library_modules

    ours = {entry.stem for entry in (REPO_ROOT / "constructs").iterdir() if entry.name != "__pycache__"}

    assert ours == {"agentrail_constructs"}
    assert not ours & library_modules


# -- folder names are import names, and packages are found, not listed ----------------


def test_package_discovery_finds_every_top_level_package_under_a_folder_of_its_own_name() -> None:
    found = {
        name: REPO_ROOT / where / name
        for where in FIND["where"]
        for name in setuptools.find_packages(REPO_ROOT / where, include=FIND["include"])
        if "." not in name
    }

    assert set(found) == TOP_LEVEL
    assert all(folder.is_dir() and folder.name == name for name, folder in found.items())


@pytest.mark.parametrize("name", sorted(TOP_LEVEL))
def test_every_folder_of_python_modules_is_a_package(name: str) -> None:
    (root,) = [REPO_ROOT / where / name for where in FIND["where"] if (REPO_ROOT / where / name).is_dir()]

    without_init = {
        path.parent.relative_to(REPO_ROOT)
        for path in root.rglob("*.py")
        if "__pycache__" not in path.parts and not (path.parent / "__init__.py").is_file()
    }

    assert without_init == set(), "a folder of modules without __init__.py is silently left out of the wheel"
