"""Live code: the source folder each deployed code asset was copied from, and fresh copies of it after an edit.

A cloud assembly's asset is a copy of a source folder, made by ``cdk synth`` (a function's
code, the runtime layer's ``python/agentrail_runtime``, an agent code layer). Which folder is
found by content: the project folder whose files equal the asset's, path suffix and bytes.
After an edit there, :meth:`LiveCode.refresh` builds a new copy of the asset from the source
as it is now (the files the synth left out stay out; bytecode is dropped, since a layer's
``unchecked-hash`` bytecode would hide the edit), for the functions to run from. The assembly
itself is never changed: ``cdk synth`` reuses an asset folder whose hash it already has.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IGNORED_FOLDERS", "AssetSource", "LiveCode"]

#: Folders never searched for sources, nor copied.
IGNORED_FOLDERS = frozenset(
    {
        ".git",
        "node_modules",
        "cdk.out",
        ".agentrail",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
    }
)
#: An asset with more files than this is a package install (a dependencies layer), not code anyone edits.
MAX_ASSET_FILES = 2_000


def _files(root: Path) -> Iterator[Path]:
    for folder, folders, names in os.walk(root):
        folders[:] = [f for f in folders if f not in IGNORED_FOLDERS]
        for name in names:
            if not name.endswith((".pyc", ".pyo")):
                yield Path(folder) / name


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class AssetSource:
    """``asset/prefix`` is a copy of ``source``, less ``left_out`` (source-relative paths the synth excluded)."""

    asset: Path
    prefix: str
    source: Path
    left_out: frozenset[str]

    def covers(self, path: Path) -> bool:
        return path.is_relative_to(self.source)


def _common_suffix(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    count = 0
    while count < min(len(a), len(b)) and a[-1 - count] == b[-1 - count]:
        count += 1
    return count


def find_source(asset: Path, project: Path, index: dict[str, list[Path]] | None = None) -> AssetSource | None:
    """The folder of ``project`` that ``asset`` (or one of its subfolders) is a copy of, or None."""
    asset_files = {p.relative_to(asset).as_posix(): p for p in _files(asset)}
    if not asset_files or len(asset_files) > MAX_ASSET_FILES:
        return None
    index = index if index is not None else _index(project, {Path(r).name for r in asset_files})
    digests = {relative: _digest(path) for relative, path in asset_files.items()}
    votes: Counter[tuple[str, Path]] = Counter()
    for relative, digest in digests.items():
        parts = tuple(relative.split("/"))
        for candidate in index.get(digest, ()):
            same = _common_suffix(parts, candidate.parts)
            if same:
                votes[("/".join(parts[: len(parts) - same]), Path(*candidate.parts[: len(candidate.parts) - same]))] += 1
    for (prefix, source), _ in votes.most_common():
        inside = {
            r[len(prefix) + 1 :] if prefix else r: d for r, d in digests.items() if not prefix or r.startswith(prefix + "/")
        }
        here = {p.relative_to(source).as_posix(): p for p in _files(source)}
        if all(name in here and _digest(here[name]) == digest for name, digest in inside.items()):
            return AssetSource(asset, prefix, source, frozenset(set(here) - set(inside)))
    return None


def _index(project: Path, names: set[str]) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for path in _files(project):
        if path.name in names:
            index.setdefault(_digest(path), []).append(path)
    return index


class LiveCode:
    """The sources of a deployment's code assets, and live copies of them made after edits.

    Parameters
    ----------
    project:
        The folder searched for sources (the one with ``cdk.json``).
    assets:
        The asset folders functions run from (code folders and layer folders).
    live_dir:
        Where fresh copies go, one folder per refresh.
    """

    def __init__(self, project: Path, assets: Iterable[Path], live_dir: Path) -> None:
        self.project = Path(project).resolve()
        self.live_dir = Path(live_dir)
        unique = list(dict.fromkeys(Path(a) for a in assets))
        names = {p.name for a in unique if a.is_dir() for p in _files(a)}
        index = _index(self.project, names)
        found = (find_source(a, self.project, index) for a in unique if a.is_dir())
        self.sources: tuple[AssetSource, ...] = tuple(s for s in found if s is not None)
        self._copies = 0

    def affected(self, paths: Iterable[Path]) -> list[AssetSource]:
        """The assets whose source holds one of ``paths``."""
        changed = [Path(p) for p in paths]
        return [s for s in self.sources if any(s.covers(p) for p in changed)]

    def refresh(self, sources: Iterable[AssetSource]) -> dict[Path, Path]:
        """A new copy of each asset from its source as it is now: ``{asset folder: copy}``."""
        copies: dict[Path, Path] = {}
        for source in sources:
            self._copies += 1
            target = self.live_dir / f"{source.asset.name}.{self._copies}"
            shutil.copytree(source.asset, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
            inside = target / source.prefix if source.prefix else target
            if source.prefix:
                shutil.rmtree(inside)
            else:
                for child in list(target.iterdir()):
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            for path in _files(source.source):
                relative = path.relative_to(source.source).as_posix()
                if relative in source.left_out:
                    continue
                destination = inside / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
            copies[source.asset] = target
        return copies
