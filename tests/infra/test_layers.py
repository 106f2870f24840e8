"""The runtime and dependencies layers, bundled for real without Docker, and the handler asset.

``layer_app`` runs tests/infra/layer_app.py in a child process with
``CDK_DOCKER=/bin/false``: had any asset fallen back to bundling in a
container, that synth would have failed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template

from agentrail_constructs.layers import NO_BYTECODE_WARNING_ID, DependenciesLayer, RuntimeLayer
from agentrail_constructs.sources import dependencies_lock, find_interpreter, runtime_package_dir

ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}
HANDLER_ASSET_LIMIT_BYTES = 100 * 1024
#: The functions run python3.13; the layers ship the bytecode of that CPython and of no other.
RUNTIME_BYTECODE = "cpython-313"
#: A PEP 552 pyc's flags word: hash-based (bit 0) and not checked against the source (bit 1 clear).
UNCHECKED_HASH_FLAGS = (1).to_bytes(4, "little")
PYC_TAG = re.compile(r"\.(?P<tag>[\w-]+)\.pyc$")


def stack_name(architecture: str) -> str:
    return f"Layers-{architecture.replace('_', '-')}"


def asset_of(assembly: Any, architecture: str, resource_type: str, kind: str | None = None) -> tuple[dict, Path]:
    """The one resource of ``resource_type`` (and layer ``kind``) in the stack, and its asset folder."""
    template = assembly.template(stack_name(architecture))
    found = [
        resource
        for resource in template["Resources"].values()
        if resource["Type"] == resource_type and (kind is None or resource["Metadata"].get("agentrail:layer") == kind)
    ]
    assert len(found) == 1, f"expected one {resource_type} {kind or ''} in {stack_name(architecture)}"
    return found[0], assembly.outdir / found[0]["Metadata"]["aws:asset:path"]


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_layers_are_bundled_locally(layer_app: Any, architecture: str) -> None:
    for kind in ("runtime", "dependencies"):
        resource, asset = asset_of(layer_app, architecture, "AWS::Lambda::LayerVersion", kind)

        assert resource["Metadata"]["aws:asset:is-bundled"] is True
        assert asset.is_dir()


def bytecode_tags(folder: Path) -> set[str]:
    """The interpreter tags (``cpython-313``) of every ``.pyc`` under ``folder``."""
    return {PYC_TAG.search(path.name)["tag"] for path in folder.rglob("*.pyc")}  # type: ignore[index]


def modules_without_bytecode(python_dir: Path) -> list[Path]:
    """Every module under ``python_dir`` that has no ``__pycache__/<stem>.cpython-313.pyc`` beside it."""
    return [
        module
        for module in python_dir.rglob("*.py")
        if not (module.parent / "__pycache__" / f"{module.stem}.{RUNTIME_BYTECODE}.pyc").is_file()
    ]


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of the bytes, for every file under ``folder``."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_runtime_layer_holds_the_agentrail_package_with_the_bytecode_of_the_functions_python_only(
    layer_app: Any, architecture: str
) -> None:
    _, asset = asset_of(layer_app, architecture, "AWS::Lambda::LayerVersion", "runtime")

    assert bytecode_tags(runtime_package_dir()) - {RUNTIME_BYTECODE}, "given: the source folder holds the host's bytecode"
    assert (asset / "python" / "agentrail_runtime" / "__init__.py").is_file()
    assert bytecode_tags(asset) == {RUNTIME_BYTECODE}
    assert modules_without_bytecode(asset / "python") == []


def test_layer_bytecode_is_unchecked_hash_and_names_its_source_under_opt_python(layer_app: Any) -> None:
    _, asset = asset_of(layer_app, "arm64", "AWS::Lambda::LayerVersion", "runtime")
    pyc = asset / "python" / "agentrail_runtime" / "__pycache__" / f"__init__.{RUNTIME_BYTECODE}.pyc"

    header = pyc.read_bytes()

    assert header[4:8] == UNCHECKED_HASH_FLAGS, "no timestamp, and never re-validated against the read-only layer"
    assert b"/opt/python/agentrail_runtime/__init__.py" in header, "tracebacks name the file where Lambda puts it"


@pytest.mark.parametrize(("architecture", "machine"), sorted(ARCHITECTURES.items()))
def test_dependencies_layer_holds_wheels_built_for_the_functions_architecture(
    layer_app: Any, architecture: str, machine: str
) -> None:
    resource, asset = asset_of(layer_app, architecture, "AWS::Lambda::LayerVersion", "dependencies")
    other_machine = next(m for m in ARCHITECTURES.values() if m != machine)

    native = [path.name for path in (asset / "python" / "pydantic_core").glob("*.so")]

    assert native and all(machine in name for name in native), native
    assert not [path for path in asset.rglob("*.so") if other_machine in path.name]
    assert (asset / "python" / "aws_lambda_powertools" / "__init__.py").is_file()
    assert resource["Properties"]["CompatibleArchitectures"] == [architecture]


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_dependencies_layer_holds_the_locked_versions_with_their_bytecode_and_no_scripts(
    layer_app: Any, architecture: str
) -> None:
    _, asset = asset_of(layer_app, architecture, "AWS::Lambda::LayerVersion", "dependencies")
    python_dir = asset / "python"
    locked = {
        normalized(name): version for name, version in re.findall(r"^([\w.-]+)==(\S+)", dependencies_lock().read_text(), re.M)
    }

    installed = {
        normalized(name): version
        for name, version in (
            dist_info.name.removesuffix(".dist-info").rsplit("-", 1) for dist_info in python_dir.glob("*.dist-info")
        )
    }

    assert installed == locked
    assert bytecode_tags(asset) == {RUNTIME_BYTECODE}
    assert modules_without_bytecode(python_dir) == []
    assert not (python_dir / "bin").exists()
    assert not [record for record in python_dir.glob("*.dist-info/RECORD") if "../" in record.read_text()]


@pytest.mark.slow
def test_two_builds_from_two_empty_layer_caches_are_byte_identical(layer_app: Any, layer_app_rebuilt: Any) -> None:
    for architecture in sorted(ARCHITECTURES):
        for kind in ("runtime", "dependencies"):
            _first, first_asset = asset_of(layer_app, architecture, "AWS::Lambda::LayerVersion", kind)
            _second, second_asset = asset_of(layer_app_rebuilt, architecture, "AWS::Lambda::LayerVersion", kind)

            assert first_asset.name == second_asset.name, f"{kind} on {architecture}: the asset hash differs"
            assert tree_digest(first_asset) == tree_digest(second_asset), f"{kind} on {architecture}: the bytes differ"


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_function_runs_on_the_architecture_its_dependencies_were_built_for(layer_app: Any, architecture: str) -> None:
    function, _ = asset_of(layer_app, architecture, "AWS::Lambda::Function")

    assert function["Properties"]["Architectures"] == [architecture]


def test_handler_asset_is_small_and_holds_the_handler_module(layer_app: Any) -> None:
    function, asset = asset_of(layer_app, "arm64", "AWS::Lambda::Function")
    module = function["Properties"]["Handler"].rsplit(".", 1)[0]

    size = sum(path.stat().st_size for path in asset.rglob("*") if path.is_file())

    assert (asset / f"{module}.py").is_file()
    assert size < HANDLER_ASSET_LIMIT_BYTES, f"handler asset is {size} bytes"
    assert not list(asset.rglob("__pycache__"))


def test_layer_kind_is_in_the_template_metadata(stateless_template: Template) -> None:
    layers = stateless_template.find_resources("AWS::Lambda::LayerVersion")

    kinds = sorted(resource["Metadata"]["agentrail:layer"] for resource in layers.values())

    assert kinds == ["dependencies", "evals", "runtime"]  # evals: the pre-traffic hook's datasets


# -- asset hashes: what was installed, how, and with which bytecode ------------------


def layer_asset_hash(stack: cdk.Stack, layer: lambda_.LayerVersion) -> str:
    """The asset hash of a layer's code, as its S3 key names it."""
    resource = Template.from_stack(stack).to_json()["Resources"][stack.get_logical_id(layer.node.default_child)]  # type: ignore[arg-type]
    return resource["Properties"]["Content"]["S3Key"].removesuffix(".zip")


def dependencies_layer_hash(app_factory: Any, lock_file: Path | None = None) -> str:
    stack = cdk.Stack(app_factory(), "Test")
    layer = DependenciesLayer(
        stack, "Dependencies", runtime=lambda_.Runtime.PYTHON_3_13, architecture=lambda_.Architecture.ARM_64, lock_file=lock_file
    )
    return layer_asset_hash(stack, layer)


def test_dependencies_layer_hash_is_the_hash_of_the_locks_contents_not_of_its_path(app_factory: Any, tmp_path: Path) -> None:
    copy = tmp_path / "requirements.lock"
    shutil.copy2(dependencies_lock(), copy)

    assert dependencies_layer_hash(app_factory, copy) == dependencies_layer_hash(app_factory)


def test_changing_one_locked_version_changes_the_dependencies_layer_hash(app_factory: Any, tmp_path: Path) -> None:
    lock = dependencies_lock().read_text()
    (urllib3,) = re.findall(r"^urllib3==(\S+)", lock, re.MULTILINE)
    changed = tmp_path / "requirements.lock"
    changed.write_text(lock.replace(f"urllib3=={urllib3}", "urllib3==2.0.0"))

    assert dependencies_layer_hash(app_factory, changed) != dependencies_layer_hash(app_factory)


def test_dependencies_layers_of_the_two_architectures_have_different_hashes(stack: cdk.Stack) -> None:
    layers = [
        DependenciesLayer(stack, f"Dependencies{arch.name}", runtime=lambda_.Runtime.PYTHON_3_13, architecture=arch)
        for arch in (lambda_.Architecture.ARM_64, lambda_.Architecture.X86_64)
    ]

    assert len({layer_asset_hash(stack, layer) for layer in layers}) == 2


def forget_python_3_13(monkeypatch: pytest.MonkeyPatch, empty: Path) -> None:
    """Make this machine one without python3.13: nothing on PATH, an empty pyenv."""
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PYENV_ROOT", str(empty))
    assert find_interpreter("3.13") is None


def layers_of(stack: cdk.Stack) -> tuple[RuntimeLayer, DependenciesLayer]:
    runtime = lambda_.Runtime.PYTHON_3_13
    return RuntimeLayer(stack, "Runtime", runtime=runtime), DependenciesLayer(
        stack, "Dependencies", runtime=runtime, architecture=lambda_.Architecture.ARM_64
    )


def no_bytecode_warnings(stack: cdk.Stack) -> list[Any]:
    return Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("ships without bytecode"))


def test_without_python_3_13_the_layers_warn_at_synth_and_their_hashes_say_they_hold_no_bytecode(
    app_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert find_interpreter("3.13") is not None, "given: this machine has python3.13 (on PATH or in pyenv)"
    compiled_stack = cdk.Stack(app_factory(), "Compiled")
    compiled = layers_of(compiled_stack)

    forget_python_3_13(monkeypatch, tmp_path)
    source_only_stack = cdk.Stack(app_factory(), "SourceOnly")
    source_only = layers_of(source_only_stack)

    assert no_bytecode_warnings(compiled_stack) == []
    warnings = no_bytecode_warnings(source_only_stack)
    assert len(warnings) == 2
    assert all(NO_BYTECODE_WARNING_ID in warning.entry.data for warning in warnings)
    for with_bytecode, without in zip(compiled, source_only, strict=True):
        assert layer_asset_hash(compiled_stack, with_bytecode) != layer_asset_hash(source_only_stack, without)


def test_without_python_3_13_the_runtime_layer_ships_its_sources_only(
    app_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    forget_python_3_13(monkeypatch, tmp_path)
    app = app_factory(bundling=True)
    stack = cdk.Stack(app, "SourceOnly")

    layer = RuntimeLayer(stack, "Runtime", runtime=lambda_.Runtime.PYTHON_3_13)

    asset = Path(app.outdir) / f"asset.{layer_asset_hash(stack, layer)}"
    assert (asset / "python" / "agentrail_runtime" / "__init__.py").is_file()
    assert not list(asset.rglob("*.pyc"))
