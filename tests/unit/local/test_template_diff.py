"""The template diff of a redeploy, and how its outcome reads in the console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentrail_cli.reload import describe_redeploy
from agentrail_local.cloudformation.assembly import StackArtifact
from agentrail_local.cloudformation.changes import ResourceChange, diff_stacks
from agentrail_local.cloudformation.redeploy import AppliedChange


def _stack(tmp_path: Path, resources: dict[str, Any], assets: dict[str, str] | None = None) -> StackArtifact:
    folders: dict[str, Path] = {}
    for key, content in (assets or {}).items():
        folder = tmp_path / f"asset.{key}"
        folder.mkdir(parents=True)
        (folder / "index.py").write_text(content)
        folders[key] = folder
    return StackArtifact("S", "S", tmp_path / "S.template.json", {"Resources": resources}, folders)


def _function(key: str, **environment: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Code": {"S3Key": key}, "Environment": {"Variables": environment}},
        "Metadata": {"aws:asset:path": f"asset.{key}"},
    }


def test_an_environment_change_is_an_update_naming_the_property(tmp_path: Path) -> None:
    old = _stack(tmp_path / "old", {"Fn": _function("a.zip", MODE="one")}, {"a.zip": "code"})
    new = _stack(tmp_path / "new", {"Fn": _function("a.zip", MODE="two")}, {"a.zip": "code"})

    assert diff_stacks(old, new) == [ResourceChange("Fn", "AWS::Lambda::Function", "updated", ("Environment",))]


def test_an_asset_key_that_names_the_same_content_and_moved_metadata_are_no_change(tmp_path: Path) -> None:
    old = _stack(tmp_path / "old", {"Fn": _function("a.zip", MODE="one")}, {"a.zip": "code"})
    new = _stack(tmp_path / "new", {"Fn": _function("b.zip", MODE="one")}, {"b.zip": "code"})

    assert diff_stacks(old, new) == []


def test_an_asset_with_other_content_is_a_code_change(tmp_path: Path) -> None:
    old = _stack(tmp_path / "old", {"Fn": _function("a.zip")}, {"a.zip": "code"})
    new = _stack(tmp_path / "new", {"Fn": _function("b.zip")}, {"b.zip": "other code"})

    assert diff_stacks(old, new) == [ResourceChange("Fn", "AWS::Lambda::Function", "updated", ("Code",))]


def test_added_removed_and_retyped_resources_are_listed_removed_first(tmp_path: Path) -> None:
    old = _stack(tmp_path / "old", {"Gone": {"Type": "AWS::SNS::Topic"}, "Same": {"Type": "AWS::SQS::Queue"}})
    new = _stack(tmp_path / "new", {"Same": {"Type": "AWS::SNS::Topic"}, "New": {"Type": "AWS::SQS::Queue"}})

    assert diff_stacks(old, new) == [
        ResourceChange("Gone", "AWS::SNS::Topic", "removed"),
        ResourceChange("Same", "AWS::SQS::Queue", "removed"),
        ResourceChange("Same", "AWS::SNS::Topic", "added"),
        ResourceChange("New", "AWS::SQS::Queue", "added"),
    ]


def test_the_console_line_names_each_change_and_counts_those_not_applied() -> None:
    changes = [
        AppliedChange("S", "Fn", "AWS::Lambda::Function", "updated", ("Environment",)),
        AppliedChange("S", "Route", "AWS::ApiGateway::Method", "added"),
        AppliedChange("S", "Topic", "AWS::SNS::Topic", "removed"),
        AppliedChange("S", "Table", "AWS::DynamoDB::Table", "not applied", ("KeySchema",), "changing KeySchema replaces it"),
    ]

    line = describe_redeploy("app.py", changes)

    assert line == (
        "re-synthesized after app.py: updated Fn (AWS::Lambda::Function) [Environment], "
        "added Route (AWS::ApiGateway::Method), removed Topic (AWS::SNS::Topic), 1 not applied (below)"
    )
    assert changes[3].describe() == "not applied Table (AWS::DynamoDB::Table): changing KeySchema replaces it"


def test_a_synth_with_the_same_templates_says_there_is_nothing_to_redeploy() -> None:
    assert describe_redeploy("app.py", []) == "re-synthesized after app.py: the templates did not change; nothing to redeploy"
