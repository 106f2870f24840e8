"""The runtime and dependencies layers, bundled for real without Docker, and the handler asset.

``layer_app`` runs tests/infra/layer_app.py in a child process with
``CDK_DOCKER=/bin/false``: had any asset fallen back to bundling in a
container, that synth would have failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from agentrail_constructs.sources import runtime_package_dir

ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}
HANDLER_ASSET_LIMIT_BYTES = 100 * 1024


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


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_runtime_layer_holds_the_agentrail_package_without_bytecode(layer_app: Any, architecture: str) -> None:
    _, asset = asset_of(layer_app, architecture, "AWS::Lambda::LayerVersion", "runtime")

    assert any(runtime_package_dir().rglob("__pycache__")), "given: the source folder holds bytecode"
    assert (asset / "python" / "agentrail_runtime" / "__init__.py").is_file()
    assert not list(asset.rglob("__pycache__"))
    assert not list(asset.rglob("*.pyc"))


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

    assert kinds == ["dependencies", "runtime"]
