"""Lambda layers built without Docker: the agentrail runtime and its third-party dependencies.

Both bundle locally. The runtime layer is a copy of the ``agentrail`` package
under ``python/``. The dependencies layer runs
``pip install --platform manylinux2014_<arch> --only-binary=:all:`` for the
function's architecture and Python version, into a cache keyed by the
requirements, so later synths (and ``cdk synth`` offline) reuse it. If the
local toolchain is missing, CDK falls back to the SAM build image in Docker.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    DockerImage,
    ILocalBundling,
    Stack,
)
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from agentrail_constructs.sources import dependencies_requirements, runtime_package_dir

#: Local mode reads this metadata to tell the layers apart.
LAYER_KIND_METADATA = "agentrail:layer"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def _cache_root() -> Path:
    base = os.environ.get("AGENTRAIL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "agentrail"
    )
    return Path(base) / "layers"


def _python_version(runtime: lambda_.Runtime) -> str:
    name = runtime.name  # e.g. python3.13
    if not name.startswith("python"):
        raise ValueError(f"agentrail layers need a Python runtime, not {name}")
    return name.removeprefix("python")


def _platform(architecture: lambda_.Architecture) -> str:
    return "manylinux2014_aarch64" if architecture.name == lambda_.Architecture.ARM_64.name else "manylinux2014_x86_64"


@jsii.implements(ILocalBundling)
class _CopyPackage:
    def __init__(self, source: Path, package: str) -> None:
        self._source = source
        self._package = package

    def try_bundle(self, output_dir: str, options: object = None, **_: object) -> bool:
        shutil.copytree(self._source, Path(output_dir) / "python" / self._package, ignore=_IGNORED, dirs_exist_ok=True)
        return True


@jsii.implements(ILocalBundling)
class _PipPlatformInstall:
    """pip-installs wheels for the Lambda platform into a shared cache, then copies them into the asset."""

    def __init__(self, requirements: Path, platform: str, python_version: str, key: str) -> None:
        self._requirements = requirements
        self._platform = platform
        self._python_version = python_version
        self._key = key

    def _build(self, target: Path) -> None:
        staging = Path(tempfile.mkdtemp(prefix="agentrail-layer-", dir=target.parent))
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--target", str(staging / "python"),
            "--platform", self._platform,
            "--implementation", "cp",
            "--python-version", self._python_version,
            "--only-binary=:all:",
            "-r", str(self._requirements),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                "could not build the dependencies layer without Docker "
                f"(pip exited {result.returncode}); is PyPI reachable? {result.stderr.strip()[-800:]}"
            )
        shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
        try:
            staging.rename(target)  # atomic: a half-built cache entry is never visible
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.is_dir():
                raise

    def try_bundle(self, output_dir: str, options: object = None, **_: object) -> bool:
        cached = _cache_root() / self._key
        if not cached.is_dir():
            cached.parent.mkdir(parents=True, exist_ok=True)
            self._build(cached)
        shutil.copytree(cached, output_dir, ignore=_IGNORED, dirs_exist_ok=True)
        return True


def _singleton(scope: Construct, construct_id: str) -> Construct | None:
    return Stack.of(scope).node.try_find_child(construct_id)


class RuntimeLayer(lambda_.LayerVersion):
    """The ``agentrail`` runtime package as a layer (pure Python, any architecture)."""

    def __init__(self, scope: Construct, construct_id: str, *, runtime: lambda_.Runtime) -> None:
        source = runtime_package_dir()
        super().__init__(
            scope,
            construct_id,
            description="agentrail runtime: agent loop, model providers, tools and metering",
            compatible_runtimes=[runtime],
            code=lambda_.Code.from_asset(
                str(source),
                asset_hash_type=AssetHashType.SOURCE,
                exclude=["__pycache__", "*.pyc"],
                bundling=BundlingOptions(
                    image=DockerImage.from_registry(f"public.ecr.aws/sam/build-{runtime.name}"),
                    command=["bash", "-c", "mkdir -p /asset-output/python/agentrail_runtime && cp -r /asset-input/. /asset-output/python/agentrail_runtime/"],
                    local=_CopyPackage(source, "agentrail_runtime"),
                ),
            ),
        )
        self.node.default_child.add_metadata(LAYER_KIND_METADATA, "runtime")  # type: ignore[union-attr]

    @classmethod
    def of(cls, scope: Construct, *, runtime: lambda_.Runtime) -> RuntimeLayer:
        """One runtime layer per stack and Python runtime, shared by every function."""
        construct_id = f"AgentrailRuntimeLayer{runtime.name.replace('.', '')}"
        return _singleton(scope, construct_id) or cls(Stack.of(scope), construct_id, runtime=runtime)  # type: ignore[return-value]


class DependenciesLayer(lambda_.LayerVersion):
    """Third-party packages of the runtime (Powertools, pydantic, httpx, boto3) for one architecture."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
    ) -> None:
        requirements = dependencies_requirements()
        platform, version = _platform(architecture), _python_version(runtime)
        key = hashlib.sha256(f"{requirements.read_text()}|{platform}|{version}".encode()).hexdigest()[:32]
        super().__init__(
            scope,
            construct_id,
            description=f"agentrail dependencies for {runtime.name} on {architecture.name}",
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            code=lambda_.Code.from_asset(
                str(requirements.parent),
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=key,
                bundling=BundlingOptions(
                    image=DockerImage.from_registry(f"public.ecr.aws/sam/build-{runtime.name}"),
                    platform=f"linux/{'arm64' if platform.endswith('aarch64') else 'amd64'}",
                    command=["bash", "-c", "pip install --no-compile -r requirements.txt -t /asset-output/python"],
                    local=_PipPlatformInstall(requirements, platform, version, key),
                ),
            ),
        )
        self.node.default_child.add_metadata(LAYER_KIND_METADATA, "dependencies")  # type: ignore[union-attr]

    @classmethod
    def of(cls, scope: Construct, *, runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> DependenciesLayer:
        """One dependencies layer per stack, runtime and architecture."""
        construct_id = f"AgentrailDependenciesLayer{runtime.name.replace('.', '')}{architecture.name.replace('_', '')}"
        found = _singleton(scope, construct_id)
        return found or cls(Stack.of(scope), construct_id, runtime=runtime, architecture=architecture)  # type: ignore[return-value]
