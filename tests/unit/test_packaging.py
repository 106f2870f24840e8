"""Packaging: the repo's ``constructs/`` folder never shadows the ``constructs`` library, every package
folder is a package found by name, and a real (non-editable) install synthesizes from a stranger's app."""

from __future__ import annotations

import importlib.util
import json
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
TOP_LEVEL = {"agentrail_runtime", "agentrail_constructs", "agentrail_handlers", "agentrail_cli", "agentrail_local", "agentrail_layers"}
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


# -- a stranger's app installs agentrail and synthesizes -----------------------------

CONSUMER_APP = """
import json

import aws_cdk as cdk

import agentrail_constructs
from agentrail_constructs import StatelessAgent
from agentrail_constructs.sources import dependencies_lock, dependencies_requirements, runtime_package_dir

app = cdk.App()
stack = cdk.Stack(app, "Consumer")
StatelessAgent(stack, "Agent")
app.synth()
print(json.dumps({
    "constructs": agentrail_constructs.__file__,
    "runtime": str(runtime_package_dir()),
    "requirements": str(dependencies_requirements()),
    "lock": str(dependencies_lock()),
}))
"""


@pytest.mark.slow
def test_installed_package_synthesizes_a_consumer_app_with_bundled_layers(tmp_path: Path) -> None:
    # Given: a copy of the project's sources (an in-tree build must not litter the checkout)...
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    for folder in sorted({Path(where).parts[0] for where in FIND["where"]}):
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=_NOT_SOURCE)
    # ...and a fresh venv that sees the project's installed dependencies through a .pth file (no network).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    venv_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    (venv_site / "agentrail_dev_dependencies.pth").write_text(f"{SITE_PACKAGES}\n")

    # When: agentrail is pip-installed for real (not editable) and a consumer app synthesizes with bundling on.
    install = subprocess.run(
        [
            str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
            "--no-deps", "--no-build-isolation", "--ignore-installed", str(source),
        ],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    app_dir = tmp_path / "consumer"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(CONSUMER_APP)
    outdir = app_dir / "cdk.out"
    synth = subprocess.run(
        [str(python), "app.py"],
        cwd=app_dir,
        env=child_env(
            CDK_OUTDIR=str(outdir),
            CDK_CONTEXT_JSON=json.dumps({"aws:cdk:enable-asset-metadata": True}),
            CDK_DOCKER="/bin/false",
        ),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    # Then: it ran from the venv, found the runtime package and requirements there, and built both layers.
    assert synth.returncode == 0, synth.stderr[-3000:]
    locations = json.loads(synth.stdout.strip().splitlines()[-1])
    for key in ("constructs", "runtime", "requirements", "lock"):
        assert Path(locations[key]).is_relative_to(venv_site), f"{key} came from {locations[key]}"
        assert Path(locations[key]).exists(), f"the wheel left out {locations[key]}"
    template = json.loads((outdir / "Consumer.template.json").read_text())
    resources = template["Resources"].values()
    assert [r for r in resources if r["Type"] == "AWS::Lambda::Function"]
    layers = {
        r["Metadata"]["agentrail:layer"]: outdir / r["Metadata"]["aws:asset:path"]
        for r in resources
        if r["Type"] == "AWS::Lambda::LayerVersion"
    }
    assert (layers["runtime"] / "python" / "agentrail_runtime" / "__init__.py").is_file()
    host_bytecode = f"*.{sys.implementation.cache_tag}.pyc"
    assert list(Path(locations["runtime"]).rglob(host_bytecode)), "given: pip compiled the installed package for this Python"
    shipped = {path.name.split(".")[-2] for path in layers["runtime"].rglob("*.pyc")}
    assert shipped == {"cpython-313"}, "the layer ships the bytecode of the functions' python3.13, not the host's"
    assert (layers["dependencies"] / "python" / "aws_lambda_powertools").is_dir()
