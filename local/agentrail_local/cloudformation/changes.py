"""What differs between two versions of a stack, resource by resource (logical id), as CloudFormation's change sets list it.

Asset keys are content hashes, and a new synth may name the same content anew (another hash of the
same folder, a staging path that only moved): two asset keys are the same value when the files they
name have the same bytes. ``Metadata`` (CDK paths, asset paths) is not compared, nor ``DependsOn``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentrail_local.cloudformation.assembly import StackArtifact

__all__ = ["AssetAwareComparison", "ResourceChange", "changed_properties", "content_digest", "diff_stacks"]

_IGNORED = frozenset({"__pycache__"})
_digests: dict[tuple[Path, int, float], str] = {}


def content_digest(path: Path) -> str:
    """SHA-256 over the relative paths and bytes of a file or folder (bytecode left out)."""
    path = Path(path)
    stat = path.stat()
    key = (path.resolve(), stat.st_size, stat.st_mtime)
    if key in _digests:
        return _digests[key]
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
    else:
        for folder, folders, names in os.walk(path):
            folders[:] = sorted(f for f in folders if f not in _IGNORED)
            for name in sorted(names):
                if name.endswith((".pyc", ".pyo")):
                    continue
                file = Path(folder) / name
                digest.update(file.relative_to(path).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(file.read_bytes()).digest())
    _digests[key] = digest.hexdigest()
    return _digests[key]


class AssetAwareComparison:
    """Equality of template values where an asset key of ``old`` equals one of ``new`` that names the same content."""

    def __init__(self, old: StackArtifact, new: StackArtifact) -> None:
        self._old = old.assets
        self._new = new.assets

    def same(self, old: Any, new: Any) -> bool:
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            return old.keys() == new.keys() and all(self.same(old[k], new[k]) for k in old)
        if isinstance(old, list) and isinstance(new, list):
            return len(old) == len(new) and all(self.same(a, b) for a, b in zip(old, new, strict=True))
        if old == new:
            return True
        if isinstance(old, str) and isinstance(new, str) and old in self._old and new in self._new:
            try:
                return content_digest(self._old[old]) == content_digest(self._new[new])
            except OSError:
                return False
        return False


def changed_properties(old: Mapping[str, Any], new: Mapping[str, Any], same: Callable[[Any, Any], bool]) -> tuple[str, ...]:
    """The top-level property names whose values differ (set, unset or changed), sorted."""
    return tuple(
        sorted(name for name in set(old) | set(new) if name not in old or name not in new or not same(old[name], new[name]))
    )


@dataclass(frozen=True)
class ResourceChange:
    """One resource added, updated (``properties`` says which top-level ones differ) or removed."""

    logical_id: str
    type: str
    action: Literal["added", "updated", "removed"]
    properties: tuple[str, ...] = ()


def diff_stacks(old: StackArtifact, new: StackArtifact) -> list[ResourceChange]:
    """The changes from ``old``'s template to ``new``'s: removed ones first, then added and updated in template order.

    A resource whose type changed is removed and added (CloudFormation replaces it). Only the template
    is compared: a resource that references a replaced one changes when deployed, not here.
    """
    before: Mapping[str, Any] = old.template.get("Resources", {})
    after: Mapping[str, Any] = new.template.get("Resources", {})
    comparison = AssetAwareComparison(old, new)
    changes = [
        ResourceChange(name, str(d.get("Type")), "removed")
        for name, d in before.items()
        if name not in after or after[name].get("Type") != d.get("Type")
    ]
    for name, definition in after.items():
        kind = str(definition.get("Type"))
        previous = before.get(name)
        if previous is None or previous.get("Type") != kind:
            changes.append(ResourceChange(name, kind, "added"))
            continue
        changed = changed_properties(previous.get("Properties", {}), definition.get("Properties", {}), comparison.same)
        if previous.get("Condition") != definition.get("Condition"):
            changed = (*changed, "Condition")
        if changed:
            changes.append(ResourceChange(name, kind, "updated", changed))
    return changes
