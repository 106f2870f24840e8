"""``sam local invoke`` / ``start-api`` can run the synthesized templates: every code asset is findable.

SAM reads ``aws:asset:path`` and ``aws:asset:property`` from a resource's
Metadata to find its code in the cloud assembly instead of in S3.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentrail_constructs import PATTERN_STACKS

#: Resource type -> the property SAM replaces with the local asset.
CODE_PROPERTY = {"AWS::Lambda::Function": "Code", "AWS::Lambda::LayerVersion": "Content"}


def code_resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] in CODE_PROPERTY}


@pytest.mark.parametrize("pattern", sorted(PATTERN_STACKS))
def test_every_function_and_layer_names_its_asset_folder_in_the_cloud_assembly(real_app: Any, pattern: str) -> None:
    template = real_app.template(real_app.pattern_stack_name(pattern))
    resources = code_resources(template)

    assert any(r["Type"] == "AWS::Lambda::Function" for r in resources.values())
    for logical_id, resource in resources.items():
        metadata = resource.get("Metadata", {})
        assert metadata.get("aws:asset:property") == CODE_PROPERTY[resource["Type"]], logical_id
        assert (real_app.outdir / metadata["aws:asset:path"]).is_dir(), f"{logical_id}: no {metadata['aws:asset:path']}"


@pytest.mark.parametrize("pattern", sorted(PATTERN_STACKS))
def test_every_function_asset_holds_its_handler_module(real_app: Any, pattern: str) -> None:
    template = real_app.template(real_app.pattern_stack_name(pattern))

    for logical_id, resource in code_resources(template).items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        module = resource["Properties"]["Handler"].rsplit(".", 1)[0].replace(".", "/")
        asset = real_app.outdir / resource["Metadata"]["aws:asset:path"]
        assert (asset / f"{module}.py").is_file(), f"{logical_id}: {module}.py is not in its asset"
