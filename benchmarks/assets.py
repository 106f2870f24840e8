"""Asset sizes of the synthesized app: every file asset's kind, unzipped bytes and zipped bytes.

Kinds come from the template: a Lambda Function's ``Code.S3Key`` names a
handler asset; a LayerVersion's ``Content.S3Key`` names a layer, whose
``agentrail:layer`` metadata says which (runtime, dependencies, agent).
Zipped the way the CDK CLI does when it publishes (yazl): regular files only,
symlinks followed, DOS time 1980-01-01, file mode kept, deflate at zlib's
default level (checked against the CLI's bundled yazl on the runtime layer:
within 0.5 %, the difference being Node's zlib build). Target: each handler asset < 100 kB, zipped and unzipped.
Baseline: the one-function app's handler asset.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.report import Figure, Result, Table, Target, format_value
from benchmarks.synth import synthesized

__all__ = ["BENCHMARK", "Asset", "file_assets", "zipped_size"]

BASELINE = "one-function app's handler asset (benchmarks/baselines/powertools_handler.py)"
HANDLER_TARGET = Target(on="value", op="<", limit=100_000)
#: Lambda's quota on a function's code plus all its layers, unzipped (250 MiB).
LAMBDA_UNZIPPED_QUOTA = Target(on="value", op="<", limit=250 * 1024 * 1024)
LAYER_METADATA = "agentrail:layer"


@dataclass(frozen=True)
class Asset:
    """A file asset of a synthesized stack, with the resource that uses it."""

    stack: str
    display_name: str
    kind: str
    logical_id: str | None
    path: Path
    files: int
    unzipped_bytes: int
    zipped_bytes: int


def _files(root: Path) -> list[Path]:
    found = []
    for directory, _, names in os.walk(root, followlinks=True):
        found.extend(Path(directory) / name for name in names)
    return sorted(found)


def zipped_size(root: Path, scratch: Path) -> int:
    """Bytes of ``root`` zipped as the CDK CLI zips a directory asset."""
    with zipfile.ZipFile(scratch, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _files(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (path.stat().st_mode & 0xFFFF) << 16
            archive.writestr(info, path.read_bytes())
    size = scratch.stat().st_size
    scratch.unlink()
    return size


def _users(template: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Resource logical id -> (kind, S3Key as JSON) for every Lambda resource taking a code asset."""
    users = {}
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function" and "S3Key" in properties.get("Code", {}):
            users[logical_id] = ("handler", json.dumps(properties["Code"]["S3Key"]))
        elif resource["Type"] == "AWS::Lambda::LayerVersion" and "S3Key" in properties.get("Content", {}):
            layer = resource.get("Metadata", {}).get(LAYER_METADATA)
            users[logical_id] = (f"{layer} layer" if layer else "layer", json.dumps(properties["Content"]["S3Key"]))
    return users


def file_assets(cloud_assembly: Path, scratch: Path) -> list[Asset]:
    """Every file asset of every stack in a ``cdk.out`` folder, except the templates themselves."""
    assets = []
    for manifest in sorted(cloud_assembly.glob("*.assets.json")):
        stack = manifest.name.removesuffix(".assets.json")
        template = json.loads((cloud_assembly / f"{stack}.template.json").read_text())
        users = _users(template)
        for asset_hash, asset in json.loads(manifest.read_text()).get("files", {}).items():
            source = cloud_assembly / asset["source"]["path"]
            if source.name.endswith(".template.json"):
                continue
            keys = [d["objectKey"] for d in asset["destinations"].values()]
            user = next((lid for lid, (_, key) in users.items() if any(k in key for k in keys)), None)
            kind = users[user][0] if user else "other"
            if source.is_dir():
                files = _files(source)
                unzipped = sum(f.stat().st_size for f in files)
                zipped = zipped_size(source, scratch / f"{asset_hash}.zip")
                count = len(files)
            else:
                with zipfile.ZipFile(source) as archive:
                    infos = [i for i in archive.infolist() if not i.is_dir()]
                unzipped, zipped, count = sum(i.file_size for i in infos), source.stat().st_size, len(infos)
            assets.append(Asset(stack, asset.get("displayName", asset_hash[:12]), kind, user, source, count, unzipped, zipped))
    return assets


def _function_totals(cloud_assembly: Path, assets: list[Asset]) -> dict[str, int]:
    """Unzipped bytes of each function's code plus its layers, by the function's asset display name."""
    by_logical_id = {(a.stack, a.logical_id): a for a in assets if a.logical_id}
    totals = {}
    for asset in assets:
        if asset.kind != "handler":
            continue
        template = json.loads((cloud_assembly / f"{asset.stack}.template.json").read_text())
        layers = template["Resources"][asset.logical_id]["Properties"].get("Layers", [])
        layer_ids = [ref["Ref"] for ref in layers if isinstance(ref, dict) and "Ref" in ref]
        totals[asset.display_name] = asset.unzipped_bytes + sum(
            by_logical_id[(asset.stack, lid)].unzipped_bytes for lid in layer_ids if (asset.stack, lid) in by_logical_id
        )
    return totals


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Size every file asset of both synthesized apps; see the module docstring."""
    outputs = synthesized(context)
    scratch = context.workdir / "zips"
    scratch.mkdir(exist_ok=True)
    context.progress("zipping the assets of both apps")
    ours = file_assets(outputs.real, scratch)
    baseline = [a for a in file_assets(outputs.baseline, scratch) if a.kind == "handler"]
    if len(baseline) != 1:
        raise RuntimeError(f"the one-function app should have one handler asset, found {len(baseline)}")
    base = baseline[0]

    results = []
    for asset in ours:
        is_handler = asset.kind == "handler"
        for packing, value, base_value in (
            ("zipped", asset.zipped_bytes, base.zipped_bytes),
            ("unzipped", asset.unzipped_bytes, base.unzipped_bytes),
        ):
            results.append(
                Result(
                    name=f"{asset.kind} asset {asset.display_name}, {packing}",
                    value=value,
                    unit="bytes",
                    baseline=BASELINE if is_handler else None,
                    baseline_value=base_value if is_handler else None,
                    target=HANDLER_TARGET if is_handler else None,
                    details={"files": asset.files, "stack": asset.stack},
                )
            )
    for function, total in _function_totals(outputs.real, ours).items():
        results.append(Result(f"function {function} + its layers, unzipped", total, "bytes", None, None, LAMBDA_UNZIPPED_QUOTA))

    rows = [
        (
            app,
            a.kind,
            a.display_name,
            str(a.files),
            format_value(a.unzipped_bytes, "bytes"),
            format_value(a.zipped_bytes, "bytes"),
        )
        for app, listed in (("agentrail", ours), ("baseline", [base]))
        for a in listed
    ]
    return Figure(
        key="assets",
        title="Asset sizes of the synthesized app",
        results=results,
        tables=[Table("File assets", ("App", "Kind", "Asset", "Files", "Unzipped", "Zipped"), rows)],
        notes=[
            "Zipped as the CDK CLI zips at publish time (files only, fixed dates, deflate at zlib's default level).",
            "Layers have no baseline: the one-function app ships no layer (it would reference Powertools' by ARN).",
            "The code + layers row checks Lambda's 250 MiB unzipped quota.",
        ],
    )


BENCHMARK = Benchmark(key="assets", title="Asset sizes", run=run)
