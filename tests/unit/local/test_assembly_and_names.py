"""Reading a cloud assembly, and naming resources the way CloudFormation does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agentrail_local.cloudformation.assembly import AssemblyError, CloudAssembly, StackArtifact
from agentrail_local.cloudformation.resources.base import ResourceContext


def _write_assembly(root: Path) -> None:
    (root / "asset.abc").mkdir(parents=True)
    (root / "asset.abc" / "app.py").write_text("def handler(e, c): return e\n")
    (root / "Data.template.json").write_text(json.dumps({"Resources": {}}))
    (root / "Api.template.json").write_text(json.dumps({"Resources": {}}))
    (root / "Api.assets.json").write_text(
        json.dumps(
            {
                "files": {
                    "abc": {
                        "source": {"path": "asset.abc", "packaging": "zip"},
                        "destinations": {"current": {"bucketName": "b", "objectKey": "abc.zip"}},
                    }
                }
            }
        )
    )
    manifest = {
        "artifacts": {
            "Api.assets": {"type": "cdk:asset-manifest", "properties": {"file": "Api.assets.json"}},
            "Api": {
                "type": "aws:cloudformation:stack",
                "environment": "aws://unknown-account/unknown-region",
                "properties": {"templateFile": "Api.template.json"},
                "dependencies": ["Api.assets", "Data"],
            },
            "Data": {
                "type": "aws:cloudformation:stack",
                "environment": "aws://unknown-account/us-east-1",
                "properties": {"templateFile": "Data.template.json", "stackName": "Data-Renamed"},
            },
            "Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}},
        }
    }
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_stacks_load_in_dependency_order_with_their_assets(tmp_path: Path) -> None:
    _write_assembly(tmp_path)

    assembly = CloudAssembly.load(tmp_path)

    assert [s.stack_name for s in assembly.stacks] == ["Data-Renamed", "Api"]
    api = assembly.stack("Api")
    assert api.asset_path("abc.zip") == tmp_path / "asset.abc"
    assert api.dependencies == ("Data",)
    assert assembly.stack("Data-Renamed").region == "us-east-1"


def test_a_folder_without_manifest_is_not_an_assembly(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError, match="cdk synth"):
        CloudAssembly.load(tmp_path)


def test_an_asset_the_manifest_does_not_list_is_named_in_the_error(tmp_path: Path) -> None:
    _write_assembly(tmp_path)

    with pytest.raises(AssemblyError, match=r"missing\.zip"):
        CloudAssembly.load(tmp_path).stack("Api").asset_path("missing.zip")


def _context(stack_name: str, logical_id: str, properties: dict | None = None) -> ResourceContext:
    stack = StackArtifact(artifact_id=stack_name, stack_name=stack_name, template_path=Path("t.json"), template={})
    return ResourceContext(
        stack=stack,
        logical_id=logical_id,
        type="AWS::SQS::Queue",
        properties=properties or {},
        metadata={},
        clients=lambda service: None,
        work_dir=Path("."),
        resources={},
        warn=lambda message: None,
    )


def test_generated_names_are_stack_logical_id_and_twelve_random_characters() -> None:
    name = _context("Agentrail-Stateless", "StatelessAgentFunction959F3A34").physical_name(64)

    assert re.fullmatch(r"Agentrail-Stateless-StatelessAgentFunction959F3A34-[A-Z0-9]{12}", name)


def test_long_names_are_cut_to_the_service_limit_keeping_the_random_suffix() -> None:
    context = _context("A-Very-Long-Stack-Name-For-Testing", "AnEvenLongerLogicalIdentifierOfTheResource1234ABCD")

    name = context.physical_name(64)
    bucket = context.physical_name(63, lowercase=True)

    assert len(name) == 64 and re.search(r"-[A-Z0-9]{12}$", name)
    assert len(bucket) == 63 and bucket == bucket.lower()


def test_an_explicit_name_property_wins_and_fifo_names_get_their_suffix() -> None:
    assert _context("S", "Q", {"QueueName": "orders"}).name("QueueName", 80) == "orders"
    assert _context("S", "Q").name("QueueName", 80, suffix=".fifo").endswith(".fifo")
