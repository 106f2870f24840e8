"""Read a CDK cloud assembly (``cdk.out``): its stacks, their templates and where each asset lives on disk."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK_ARTIFACT = "aws:cloudformation:stack"
ASSET_MANIFEST_ARTIFACT = "cdk:asset-manifest"
NESTED_ASSEMBLY_ARTIFACT = "cdk:cloud-assembly"


class AssemblyError(ValueError):
    """The folder is not a readable cloud assembly."""


@dataclass(frozen=True)
class StackArtifact:
    """One CloudFormation stack of the assembly.

    Attributes
    ----------
    artifact_id:
        The id in ``manifest.json`` (also the stack name unless ``stackName`` says otherwise).
    stack_name:
        The CloudFormation stack name.
    template:
        The parsed template.
    assets:
        S3 object key of each file asset (``<hash>.zip``) mapped to its source folder or file in the assembly.
    dependencies:
        Artifact ids this stack depends on (only other stacks are kept).
    """

    artifact_id: str
    stack_name: str
    template_path: Path
    template: Mapping[str, Any]
    assets: Mapping[str, Path] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()
    region: str | None = None

    def asset_path(self, object_key: str) -> Path:
        """The source of the asset uploaded under ``object_key``.

        Raises
        ------
        AssemblyError
            When the asset manifest names no such key.
        """
        try:
            return self.assets[object_key]
        except KeyError:
            raise AssemblyError(f"stack {self.stack_name} names asset {object_key!r}, which its asset manifest lacks") from None


@dataclass(frozen=True)
class CloudAssembly:
    """The stacks of a synthesized app, in deployment order (dependencies first)."""

    directory: Path
    stacks: tuple[StackArtifact, ...]

    @classmethod
    def load(cls, directory: str | Path) -> CloudAssembly:
        """Read ``manifest.json`` and every stack it lists, nested assemblies (CDK Stages) included.

        Raises
        ------
        AssemblyError
            When the folder has no manifest or a listed file is missing.
        """
        root = Path(directory).resolve()
        stacks = list(_read_stacks(root))
        if not stacks:
            raise AssemblyError(f"the cloud assembly in {root} has no CloudFormation stacks")
        return cls(directory=root, stacks=_in_dependency_order(stacks))

    def stack(self, name: str) -> StackArtifact:
        for stack in self.stacks:
            if name in (stack.stack_name, stack.artifact_id):
                return stack
        raise KeyError(f"no stack named {name!r}; the assembly has {', '.join(s.stack_name for s in self.stacks)}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AssemblyError(f"{path} is missing; is this a `cdk synth` output folder?") from None
    except json.JSONDecodeError as error:
        raise AssemblyError(f"{path} is not valid JSON: {error}") from None


def _read_stacks(directory: Path) -> Iterable[StackArtifact]:
    manifest = _read_json(directory / "manifest.json")
    artifacts: Mapping[str, Any] = manifest.get("artifacts", {})
    asset_manifests = {
        artifact_id: directory / artifact["properties"]["file"]
        for artifact_id, artifact in artifacts.items()
        if artifact.get("type") == ASSET_MANIFEST_ARTIFACT
    }
    stack_ids = {a for a, artifact in artifacts.items() if artifact.get("type") == STACK_ARTIFACT}
    for artifact_id, artifact in artifacts.items():
        kind = artifact.get("type")
        if kind == NESTED_ASSEMBLY_ARTIFACT:
            yield from _read_stacks(directory / artifact["properties"]["directoryName"])
        if kind != STACK_ARTIFACT:
            continue
        properties = artifact.get("properties", {})
        template_path = directory / properties["templateFile"]
        assets: dict[str, Path] = {}
        for dependency in artifact.get("dependencies", ()):
            if dependency in asset_manifests:
                assets.update(_read_asset_manifest(asset_manifests[dependency]))
        environment = str(artifact.get("environment", ""))
        region = environment.rsplit("/", 1)[-1] if environment.startswith("aws://") else None
        yield StackArtifact(
            artifact_id=artifact_id,
            stack_name=properties.get("stackName", artifact_id),
            template_path=template_path,
            template=_read_json(template_path),
            assets=assets,
            dependencies=tuple(d for d in artifact.get("dependencies", ()) if d in stack_ids),
            region=None if region in (None, "unknown-region") else region,
        )


def _read_asset_manifest(path: Path) -> dict[str, Path]:
    manifest = _read_json(path)
    assets: dict[str, Path] = {}
    for entry in manifest.get("files", {}).values():
        source = path.parent / entry["source"]["path"]
        for destination in entry.get("destinations", {}).values():
            assets[destination["objectKey"]] = source
    return assets


def _in_dependency_order(stacks: list[StackArtifact]) -> tuple[StackArtifact, ...]:
    by_id = {s.artifact_id: s for s in stacks}
    ordered: list[StackArtifact] = []
    visiting: set[str] = set()

    def visit(stack: StackArtifact) -> None:
        if stack in ordered:
            return
        if stack.artifact_id in visiting:
            raise AssemblyError(f"stacks depend on each other in a cycle through {stack.artifact_id}")
        visiting.add(stack.artifact_id)
        for dependency in stack.dependencies:
            if dependency in by_id:
                visit(by_id[dependency])
        ordered.append(stack)

    for stack in stacks:
        visit(stack)
    return tuple(ordered)


__all__ = ["AssemblyError", "CloudAssembly", "StackArtifact"]
