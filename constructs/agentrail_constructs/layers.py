"""Lambda layers built without Docker: the agentrail runtime, its third-party dependencies, the optional ASGI adapter
and the eval datasets.

Both bundle locally. The runtime layer is a copy of the ``agentrail_runtime``
package under ``python/``. The dependencies layer installs the hashed lock
(``requirements.lock``) with ``pip install --require-hashes --no-deps
--only-binary=:all: --platform manylinux_2_28_<arch>`` for the function's
architecture and Python version, into a cache keyed by the lock, so later
synths (and ``cdk synth`` offline) reuse it.

Both layers ship bytecode compiled by the runtime's own CPython
(``python3.13`` from ``PATH`` or pyenv), as unchecked-hash pycs: no
timestamps, so two builds of the same sources are byte-identical. Without
that interpreter they ship source only, with a synth warning, and their asset
hash says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar, Self, TypeVar

import jsii
from aws_cdk import (
    Annotations,
    AssetHashType,
    BundlingOptions,
    DockerImage,
    ILocalBundling,
    Stack,
)
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from agentrail_constructs.nag import default_resource
from agentrail_constructs.sources import Interpreter, asgi_lock, dependencies_lock, find_interpreter, runtime_package_dir

#: Local mode reads this metadata to tell the layers apart.
LAYER_KIND_METADATA = "agentrail:layer"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
#: Part of every layer's asset hash: bump it when the way layers are built changes, so none is reused.
#: 2: the dependencies layer installs the hashed lock; both layers ship unchecked-hash bytecode.
_BUILD_FORMAT = "2"
#: Where Lambda extracts a layer's ``python/`` folder; compiled modules name their source there.
_LAMBDA_PYTHON_DIR = "/opt/python"
#: The oldest glibc (manylinux2014) a locked wheel may need and the newest (manylinux_2_28) it may use.
_MANYLINUX_GLIBC_MINORS = range(28, 16, -1)
NO_BYTECODE_WARNING_ID = "agentrail:layers:no-bytecode"


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


def _machine(architecture: lambda_.Architecture) -> str:
    return "aarch64" if architecture.name == lambda_.Architecture.ARM_64.name else "x86_64"


def _platforms(machine: str) -> list[str]:
    """pip's ``--platform`` tags for a manylinux_2_28 target: pip takes ``manylinux_2_28`` literally (it widens
    only ``manylinux2014`` and older), so every older glibc that the locked wheels may be built for is listed."""
    return [f"manylinux_2_{minor}_{machine}" for minor in _MANYLINUX_GLIBC_MINORS] + [f"manylinux2014_{machine}"]


def _warn_unless_compiled(layer: Construct, bytecode: Interpreter | None, python_version: str) -> None:
    if bytecode is None:
        Annotations.of(layer).add_warning_v2(
            NO_BYTECODE_WARNING_ID,
            f"no python{python_version} interpreter on PATH or in pyenv, so this layer ships without bytecode and "
            f"every cold start compiles its modules; install Python {python_version} (e.g. `pyenv install "
            f"{python_version}`) and synthesize again",
        )


def _bytecode_label(interpreter: Interpreter | None) -> str:
    return f"bytecode-cpython-{interpreter.version}" if interpreter else "no-bytecode"


def _compile_bytecode(interpreter: Interpreter, python_dir: Path) -> None:
    """Byte-compile a layer's ``python/`` folder with ``interpreter``, reproducibly.

    The pycs are unchecked-hash (PEP 552): no source timestamp, never re-validated against the read-only
    layer. Each names its source under ``/opt/python`` (where Lambda puts it), and ``PYTHONHASHSEED=0``
    fixes the order of set constants, so the same sources always give the same bytes. A module that
    ``interpreter`` cannot compile ships as source only, as pip treats it.

    Raises
    ------
    RuntimeError
        If the interpreter itself fails.
    """
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    environment["PYTHONHASHSEED"] = "0"
    command = [
        str(interpreter.executable), "-m", "compileall", "-q", "-d", _LAMBDA_PYTHON_DIR,
        "--invalidation-mode", "unchecked-hash", str(python_dir),
    ]  # fmt: skip
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):  # 1: some module did not compile
        raise RuntimeError(f"python{interpreter.version} could not byte-compile {python_dir}: {result.stderr.strip()[-800:]}")


def _source_digest(folder: Path) -> str:
    """A hash of every file's relative path and bytes under ``folder``, bytecode left out."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            digest.update(f"{path.relative_to(folder).as_posix()}\0{path.stat().st_size}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class _CopyFolder:
    """Copies a folder under ``<name>/`` in the asset (a layer's ``/opt/<name>``), without Docker."""

    def __init__(self, source: Path, name: str) -> None:
        self._source = source
        self._name = name

    def try_bundle(self, output_dir: str, options: object = None, **_: object) -> bool:
        shutil.copytree(self._source, Path(output_dir) / self._name, dirs_exist_ok=True)
        return True


@jsii.implements(ILocalBundling)
class _CopyPackage:
    """Copies a package under ``python/`` (bytecode left out), then compiles it with ``bytecode``, if given."""

    def __init__(self, source: Path, package: str, bytecode: Interpreter | None = None) -> None:
        self._source = source
        self._package = package
        self._bytecode = bytecode

    def try_bundle(self, output_dir: str, options: object = None, **_: object) -> bool:
        target = Path(output_dir) / "python" / self._package
        shutil.copytree(self._source, target, ignore=_IGNORED, dirs_exist_ok=True)
        if self._bytecode is not None:
            _compile_bytecode(self._bytecode, Path(output_dir) / "python")
        return True


def _drop_console_scripts(python_dir: Path) -> None:
    """Remove ``bin/`` and its lines in each RECORD: a layer runs no scripts, and theirs name this machine's Python."""
    shutil.rmtree(python_dir / "bin", ignore_errors=True)
    for record in python_dir.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        record.write_text("".join(line for line in lines if not line.startswith("../")))


@jsii.implements(ILocalBundling)
class _PipPlatformInstall:
    """pip-installs the locked wheels for the Lambda platform into a shared cache, then copies them into the asset.

    The cache entry is named by the asset hash, so a later synth with the same lock, platform and
    interpreter reuses it without network.
    """

    def __init__(self, lock: Path, machine: str, python_version: str, bytecode: Interpreter | None, key: str) -> None:
        self._lock = lock
        self._machine = machine
        self._python_version = python_version
        self._bytecode = bytecode
        self._key = key

    def _build(self, target: Path) -> None:
        staging = Path(tempfile.mkdtemp(prefix="agentrail-layer-", dir=target.parent))
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--require-hashes", "--no-deps", "--only-binary=:all:",
            "--target", str(staging / "python"),
            *[argument for platform in _platforms(self._machine) for argument in ("--platform", platform)],
            "--implementation", "cp",
            "--python-version", self._python_version,
            "-r", str(self._lock),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                "could not build the dependencies layer without Docker "
                f"(pip exited {result.returncode}); is PyPI reachable? {result.stderr.strip()[-800:]}"
            )
        _drop_console_scripts(staging / "python")
        if self._bytecode is not None:
            _compile_bytecode(self._bytecode, staging / "python")
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
        shutil.copytree(cached, output_dir, dirs_exist_ok=True)
        return True


_Layer = TypeVar("_Layer", bound=lambda_.LayerVersion)


def _singleton(scope: Construct, construct_id: str, kind: type[_Layer]) -> _Layer | None:
    found = Stack.of(scope).node.try_find_child(construct_id)
    if found is not None and not isinstance(found, kind):
        raise TypeError(f"{found.node.path} is not a {kind.__name__}; the id {construct_id} is agentrail's")
    return found


def _compile_in_container(interpreter: Interpreter | None) -> str:
    """The Docker fallback's compile step: the SAM build image runs the function's own Python."""
    if interpreter is None:
        return ""
    return f" && PYTHONHASHSEED=0 python -m compileall -q -d {_LAMBDA_PYTHON_DIR} --invalidation-mode unchecked-hash /asset-output/python"


class RuntimeLayer(lambda_.LayerVersion):
    """The ``agentrail_runtime`` package as a layer (pure Python, any architecture), with its bytecode.

    The asset hash covers the package's sources, the compiling interpreter's version (or the lack of
    one) and the build format.
    """

    def __init__(self, scope: Construct, construct_id: str, *, runtime: lambda_.Runtime) -> None:
        source = runtime_package_dir()
        version = _python_version(runtime)
        bytecode = find_interpreter(version)
        key = hashlib.sha256(f"{_BUILD_FORMAT}|{_source_digest(source)}|{_bytecode_label(bytecode)}".encode()).hexdigest()
        copy = "mkdir -p /asset-output/python/agentrail_runtime && cp -r /asset-input/. /asset-output/python/agentrail_runtime/"
        super().__init__(
            scope,
            construct_id,
            description="agentrail runtime: agent loop, model providers, tools and metering",
            compatible_runtimes=[runtime],
            code=lambda_.Code.from_asset(
                str(source),
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=key,
                exclude=["__pycache__", "*.pyc"],
                bundling=BundlingOptions(
                    image=DockerImage.from_registry(f"public.ecr.aws/sam/build-{runtime.name}"),
                    command=["bash", "-c", copy + _compile_in_container(bytecode)],
                    local=_CopyPackage(source, "agentrail_runtime", bytecode),
                ),
            ),
        )
        _warn_unless_compiled(self, bytecode, version)
        default_resource(self).add_metadata(LAYER_KIND_METADATA, "runtime")

    @classmethod
    def of(cls, scope: Construct, *, runtime: lambda_.Runtime) -> RuntimeLayer:
        """One runtime layer per stack and Python runtime, shared by every function."""
        construct_id = f"AgentrailRuntimeLayer{runtime.name.replace('.', '')}"
        return _singleton(scope, construct_id, cls) or cls(Stack.of(scope), construct_id, runtime=runtime)


def _locked_code(lock: Path, runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> tuple[lambda_.Code, str]:
    """The asset of a layer installed from a hashed ``lock`` for the Lambda platform, and its Python version.

    The asset hash covers the lock's text, the platform, the Python version, the compiling interpreter's version (or
    the lack of one) and the build format, so different bytes never deploy under one hash.
    """
    machine, version = _machine(architecture), _python_version(runtime)
    bytecode = find_interpreter(version)
    key = hashlib.sha256(
        f"{_BUILD_FORMAT}|{lock.read_text()}|{machine}|{version}|{_bytecode_label(bytecode)}".encode()
    ).hexdigest()
    pip = f"pip install --no-compile --require-hashes --no-deps --only-binary=:all: -r {lock.name} -t /asset-output/python"
    code = lambda_.Code.from_asset(
        str(lock.parent),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=key,
        bundling=BundlingOptions(
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-{runtime.name}"),
            platform=f"linux/{'arm64' if machine == 'aarch64' else 'amd64'}",
            command=["bash", "-c", pip + _compile_in_container(bytecode)],
            local=_PipPlatformInstall(lock, machine, version, bytecode, key),
        ),
    )
    return code, version


class _LockedLayer(lambda_.LayerVersion):
    """A layer installed from a hashed lock for one runtime and architecture, with its bytecode (see the subclasses)."""

    #: The layer's kind (its ``LAYER_KIND_METADATA``), the id prefix of :meth:`of`, and what its description names.
    kind: ClassVar[str]
    id_prefix: ClassVar[str]
    contents: ClassVar[str]

    @staticmethod
    def default_lock() -> Path:
        raise NotImplementedError

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
        lock_file: Path | None = None,
    ) -> None:
        code, version = _locked_code(Path(lock_file) if lock_file is not None else self.default_lock(), runtime, architecture)
        super().__init__(
            scope,
            construct_id,
            description=f"agentrail {self.contents} for {runtime.name} on {architecture.name}",
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
            code=code,
        )
        _warn_unless_compiled(self, find_interpreter(version), version)
        default_resource(self).add_metadata(LAYER_KIND_METADATA, self.kind)

    @classmethod
    def of(cls, scope: Construct, *, runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> Self:
        """One layer of this kind per stack, runtime and architecture."""
        construct_id = f"{cls.id_prefix}{runtime.name.replace('.', '')}{architecture.name.replace('_', '')}"
        found = _singleton(scope, construct_id, cls)
        return found or cls(Stack.of(scope), construct_id, runtime=runtime, architecture=architecture)


class DependenciesLayer(_LockedLayer):
    """Third-party packages of the runtime (Powertools, pydantic, httpx, boto3) for one architecture, with their bytecode.

    Installed from a lock that pins every package with its hashes; the asset hash covers the lock's
    text, the platform, the Python version, the compiling interpreter's version (or the lack of one)
    and the build format, so different bytes never deploy under one hash.

    Parameters
    ----------
    lock_file:
        A ``uv pip compile --generate-hashes`` lock to install. Default: the lock agentrail ships
        (``agentrail_layers/dependencies/requirements.lock``).
    """

    kind = "dependencies"
    id_prefix = "AgentrailDependenciesLayer"
    contents = "dependencies"

    @staticmethod
    def default_lock() -> Path:
        return dependencies_lock()


class AsgiLayer(_LockedLayer):
    """The optional ASGI layer: mangum and FastAPI (with Starlette), for functions that serve an ASGI app
    (:class:`~agentrail_constructs.asgi.AsgiAgent`), with their bytecode.

    Installed like the dependencies layer, from its own hashed lock (``agentrail_layers/asgi/requirements.lock``,
    ``make lock``), which is resolved against the dependencies layer's versions and leaves out every package that
    layer ships already (pydantic, anyio, typing-extensions...): a function carries both layers, and each package is
    in one of them. Every locked wheel is pure Python, so the one layer serves both architectures' runtimes alike;
    it is still built per architecture, as the dependencies layer is, so the two always come from one pip run each.

    Parameters
    ----------
    lock_file:
        A ``uv pip compile --generate-hashes`` lock to install instead (your own ASGI framework, other versions).
        Default: the lock agentrail ships.
    """

    kind = "asgi"
    id_prefix = "AgentrailAsgiLayer"
    contents = "ASGI adapter (mangum, FastAPI)"

    @staticmethod
    def default_lock() -> Path:
        return asgi_lock()


class EvalsLayer(lambda_.LayerVersion):
    """A datasets folder as ``/opt/evals/<agent>/*.jsonl``, for the pre-traffic hooks of a stack."""

    def __init__(self, scope: Construct, construct_id: str, *, datasets: Path, runtime: lambda_.Runtime) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"agentrail eval datasets ({datasets.name}/) for the pre-traffic hooks",
            compatible_runtimes=[runtime],
            code=lambda_.Code.from_asset(
                str(datasets),
                asset_hash_type=AssetHashType.SOURCE,
                bundling=BundlingOptions(
                    image=DockerImage.from_registry(f"public.ecr.aws/sam/build-{runtime.name}"),
                    command=["bash", "-c", "mkdir -p /asset-output/evals && cp -r /asset-input/. /asset-output/evals/"],
                    local=_CopyFolder(datasets, "evals"),
                ),
            ),
        )
        self.datasets = datasets
        """The folder this layer ships."""
        default_resource(self).add_metadata(LAYER_KIND_METADATA, "evals")

    @classmethod
    def of(cls, scope: Construct, *, datasets: Path, runtime: lambda_.Runtime) -> EvalsLayer:
        """One evals layer per stack, shared by every pre-traffic hook of the stack.

        Raises
        ------
        ValueError
            When a hook of the same stack asks for another datasets folder.
        """
        construct_id = "AgentrailEvalsLayer"
        found = _singleton(scope, construct_id, cls)
        if found is None:
            return cls(Stack.of(scope), construct_id, datasets=datasets, runtime=runtime)
        if found.datasets != datasets:
            raise ValueError(
                f"{Stack.of(scope).node.path} already ships the datasets of {found.datasets} to its pre-traffic "
                f"hooks, not {datasets}: give every function of one stack the same DeploymentOptions(evals_dir=...)"
            )
        return found
