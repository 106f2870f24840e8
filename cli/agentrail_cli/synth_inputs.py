"""What feeds ``cdk synth``, fingerprinted, so ``agentrail local`` reuses its last cloud assembly when nothing changed.

The inputs are:

- the project's files: those ``cdk.json``'s ``watch.include`` names (CDK's own list of what the app reads),
  or every file of the project without one, less ``watch.exclude`` and what is never an input (``.git``,
  ``node_modules``, ``cdk.out``, virtual environments, bytecode and tool caches); ``cdk.json`` and
  ``cdk.context.json`` always;
- the files of the agentrail packages the app imports or ships (constructs, runtime, handlers, layer pins),
  wherever they are installed;
- the synth's arguments (patterns, ``-c`` context), the ``CDK_*`` and ``AGENTRAIL_*`` environment variables,
  and the toolchain (Python, aws-cdk-lib, cdk-nag, the CDK CLI).

A file is compared by its content (SHA-256), never by its time stamp.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata, util
from pathlib import Path
from typing import Any

from agentrail_local.awslambda.live_code import IGNORED_FOLDERS

__all__ = ["RECORD_SUFFIX", "SynthInputs", "changes_since", "forget_record", "read_record", "synth_inputs", "write_record"]

RECORD_SUFFIX = ".inputs.json"
#: Folders that never feed a synth, at any depth: the ones live code never copies either.
NEVER_INPUTS = IGNORED_FOLDERS
#: Packages of agentrail-aws whose files end up in templates or assets.
SHIPPED_PACKAGES = ("agentrail_constructs", "agentrail_runtime", "agentrail_handlers", "agentrail_layers")
_FORMAT = 1


@dataclass(frozen=True)
class SynthInputs:
    """Everything one synth read: file digests by project-relative path (``<package>:<path>`` outside the
    project), and the settings (arguments, environment, toolchain) as text."""

    files: Mapping[str, str]
    settings: Mapping[str, str]
    synthesized_at: float = field(default=0.0, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "synthesized_at": self.synthesized_at,
            "settings": dict(self.settings),
            "files": dict(self.files),
        }


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A ``cdk.json`` watch glob as a regular expression over ``/``-separated relative paths."""
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out))


def _matches(path: str, patterns: Iterable[re.Pattern[str]]) -> bool:
    """Whether ``path`` or one of its parent folders matches a pattern (``tests`` covers ``tests/a.py``)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(p.fullmatch(prefix) for p in patterns for prefix in prefixes)


def _files(root: Path) -> Iterator[Path]:
    for folder, folders, names in os.walk(root):
        folders[:] = sorted(f for f in folders if f not in NEVER_INPUTS)
        for name in sorted(names):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(folder) / name


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _project_files(project: Path, state_dir: Path | None) -> dict[str, str]:
    try:
        watch = json.loads((project / "cdk.json").read_text()).get("watch", {})
    except (OSError, ValueError):
        watch = {}
    include = [_glob_regex(p) for p in watch.get("include", [])]
    exclude = [_glob_regex(p) for p in watch.get("exclude", [])]
    files: dict[str, str] = {}
    for path in _files(project):
        if state_dir is not None and path.is_relative_to(state_dir):
            continue
        relative = path.relative_to(project).as_posix()
        always = relative in ("cdk.json", "cdk.context.json")
        if not always and ((include and not _matches(relative, include)) or _matches(relative, exclude)):
            continue
        files[relative] = _digest(path)
    return files


def _package_files(project: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for package in SHIPPED_PACKAGES:
        spec = util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec is not None else []:
            root = Path(location).resolve()
            for path in _files(root):
                key = (
                    path.relative_to(project).as_posix()
                    if path.is_relative_to(project)
                    else f"{package}:{path.relative_to(root).as_posix()}"
                )
                files[key] = _digest(path)
    return files


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def _cli_version(project: Path) -> str:
    manifest = project / "node_modules" / "aws-cdk" / "package.json"
    try:
        return str(json.loads(manifest.read_text()).get("version", "?"))
    except (OSError, ValueError):
        return "from PATH"


def synth_inputs(
    project_dir: str | Path,
    *,
    patterns: str | None = None,
    context: Mapping[str, str] | None = None,
    state_dir: str | Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> SynthInputs:
    """Fingerprint what a synth of ``project_dir`` with these arguments would read (see the module docstring).

    ``state_dir`` (local mode's own folder, when inside the project) is left out.
    """
    project = Path(project_dir).resolve()
    state = Path(state_dir).resolve() if state_dir is not None else None
    files = {**_package_files(project), **_project_files(project, state)}
    settings = {
        "patterns": patterns or "(cdk.json's)",
        "context": json.dumps(dict(sorted((context or {}).items()))),
        "environment": json.dumps({k: v for k, v in sorted(environ.items()) if k.startswith(("CDK_", "AGENTRAIL_"))}),
        "python": f"{sys.executable} {sys.version.split()[0]}",
        "aws-cdk-lib": _version("aws-cdk-lib"),
        "cdk-nag": _version("cdk-nag"),
        "cdk CLI": _cli_version(project),
    }
    return SynthInputs(files=files, settings=settings)


def _record_path(output_dir: Path) -> Path:
    return output_dir.with_name(output_dir.name + RECORD_SUFFIX)


def read_record(output_dir: str | Path) -> SynthInputs | None:
    """The inputs of the synth that made ``output_dir``, or None when unknown (no record, or no manifest)."""
    output = Path(output_dir)
    try:
        data = json.loads(_record_path(output).read_text())
    except (OSError, ValueError):
        return None
    if data.get("format") != _FORMAT or not (output / "manifest.json").is_file():
        return None
    return SynthInputs(files=data["files"], settings=data["settings"], synthesized_at=float(data["synthesized_at"]))


def forget_record(output_dir: str | Path) -> None:
    """Drop the record before a synth, so a synth that fails half-way is never reused."""
    _record_path(Path(output_dir)).unlink(missing_ok=True)


def write_record(output_dir: str | Path, inputs: SynthInputs) -> Path:
    """Record that ``output_dir`` was synthesized from ``inputs``, now."""
    path = _record_path(Path(output_dir))
    record = SynthInputs(files=inputs.files, settings=inputs.settings, synthesized_at=time.time())
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(record.as_dict(), indent=1, sort_keys=True) + "\n")
    staging.replace(path)
    return path


def changes_since(previous: SynthInputs | None, current: SynthInputs, *, shown: int = 3) -> list[str]:
    """What differs between two fingerprints, in words (empty when nothing does)."""
    if previous is None:
        return ["no earlier synth recorded in the state folder"]
    found = [
        f"{name} {previous.settings.get(name, '-')} -> {value}"
        for name, value in current.settings.items()
        if previous.settings.get(name) != value
    ]
    found.extend(f"{name} no longer set" for name in sorted(set(previous.settings) - set(current.settings)))
    changed = sorted(p for p in current.files if p in previous.files and previous.files[p] != current.files[p])
    added = sorted(set(current.files) - set(previous.files))
    removed = sorted(set(previous.files) - set(current.files))
    for label, paths in (("changed", changed), ("added", added), ("removed", removed)):
        if paths:
            more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
            found.append(f"{label} {', '.join(paths[:shown])}{more}")
    return found
