"""A stranger's CDK app, outside the repository, pip-installs the built wheel by path and synthesizes a StatelessAgent.

The wheel is built from a copy of the sources (an in-tree build would litter the checkout) and installed
with ``--no-index``; the venv sees the project's installed third-party packages through a ``.pth`` file,
so nothing comes from the network and nothing of ours comes from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"
_NOT_SOURCE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")

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


def child_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CDK_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    env.update(extra)
    return env


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=child_env(**env), capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distribution's wheel, built from a copy of the sources."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    for folder in sorted({Path(where).parts[0] for where in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["where"]}):
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=_NOT_SOURCE)
    dist = tmp_path_factory.mktemp("dist")
    built = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
            str(source),
        ],
        cwd=dist,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = dist.glob("*.whl")
    return found


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh venv with the wheel installed by path, seeing the project's third-party packages through a .pth."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).stdout.strip())
    (site / "agentrail_dev_dependencies.pth").write_text(f"{SITE_PACKAGES}\n")
    installed = run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--no-deps",
            "--ignore-installed",
            str(wheel),
        ],
        cwd=wheel.parent,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return root


def venv_site(venv: Path) -> Path:
    return Path(
        run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv
        ).stdout.strip()
    )


def test_the_wheel_is_named_for_the_distribution_and_carries_every_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()

    assert wheel.name.startswith(f"{PYPROJECT['project']['name'].replace('-', '_')}-{PYPROJECT['project']['version']}-")
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {
        "agentrail_runtime", "agentrail_constructs", "agentrail_handlers", "agentrail_cli", "agentrail_local", "agentrail_layers",
    }  # fmt: skip
    assert {"agentrail_layers/dependencies/requirements.in", "agentrail_layers/dependencies/requirements.lock"} <= set(names)


def test_the_installed_cli_reports_its_version(venv: Path) -> None:
    result = run([str(venv / "bin" / "agentrail"), "--version"], cwd=venv)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"agentrail {PYPROJECT['project']['version']}"


@pytest.mark.slow
def test_an_app_outside_the_repository_synthesizes_a_stateless_agent_from_the_installed_wheel(venv: Path, tmp_path: Path) -> None:
    # Given: a CDK app in a folder of its own, run by the venv that installed the wheel
    app_dir = tmp_path / "consumer"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(CONSUMER_APP)
    outdir = app_dir / "cdk.out"

    # When: it synthesizes with bundling on (layers built locally, Docker unavailable)
    synth = run(
        [str(venv / "bin" / "python"), "app.py"],
        cwd=app_dir,
        CDK_OUTDIR=str(outdir),
        CDK_CONTEXT_JSON=json.dumps({"aws:cdk:enable-asset-metadata": True}),
        CDK_DOCKER="/bin/false",
    )

    # Then: the constructs, the runtime and the requirements came from the venv, and both layers were built
    assert synth.returncode == 0, synth.stderr[-3000:]
    locations = json.loads(synth.stdout.strip().splitlines()[-1])
    site = venv_site(venv)
    for key in ("constructs", "runtime", "requirements", "lock"):
        assert Path(locations[key]).is_relative_to(site), f"{key} came from {locations[key]}"
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
