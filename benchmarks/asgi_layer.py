"""ASGI layer size: the optional ASGI layer (mangum, FastAPI and what the dependencies layer lacks) against the
dependencies layer, both built as a deploy builds them.

A one-stack CDK app (this module, run as a script in a child process, so CDK stays out of the harness) holds a
``DependenciesLayer`` and an ``AsgiLayer`` for ``arm64`` (the functions' default architecture), bundled for real:
the hashed locks, the Lambda platform's wheels and the bytecode, from the layer cache when it holds them. Sizes are
the unzipped folders (what counts against Lambda's 250 MB limit) and the zips (what is uploaded).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.assets import zipped_size
from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.report import REPO_ROOT, Figure, Result, Target

__all__ = ["BENCHMARK"]

BASELINE = "the dependencies layer (Powertools, pydantic, boto3, httpx...), built in the same run"
#: The ASGI layer adds a fraction of what every function already carries.
SIZE_TARGET = Target(on="ratio", op="<", limit=0.5)


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _synthesize(outdir: Path) -> dict[str, str]:
    """Layer kind -> asset folder of both layers, bundled."""
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from agentrail_constructs.function import DEFAULT_RUNTIME
    from agentrail_constructs.layers import LAYER_KIND_METADATA, AsgiLayer, DependenciesLayer

    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True})
    stack = cdk.Stack(app, "Layers")
    architecture = lambda_.Architecture.ARM_64
    DependenciesLayer(stack, "Dependencies", runtime=DEFAULT_RUNTIME, architecture=architecture)
    AsgiLayer(stack, "Asgi", runtime=DEFAULT_RUNTIME, architecture=architecture)
    template = app.synth().get_stack_by_name("Layers").template
    return {
        resource["Metadata"][LAYER_KIND_METADATA]: str(outdir / resource["Metadata"]["aws:asset:path"])
        for resource in template["Resources"].values()
        if LAYER_KIND_METADATA in resource.get("Metadata", {})
    }


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Build both layers and compare their sizes; see the module docstring."""
    context.progress("asgi_layer: building the dependencies and ASGI layers (arm64, bundled)")
    environment = dict(os.environ)
    environment["PATH"] = os.pathsep.join([str(REPO_ROOT / "node_modules" / ".bin"), environment.get("PATH", "")])
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.asgi_layer", str(context.workdir / "asgi-layer.out")],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if finished.returncode != 0:
        raise RuntimeError(f"building the layers failed: {finished.stderr[-2000:]}")
    layers = {kind: Path(folder) for kind, folder in json.loads(finished.stdout.strip().splitlines()[-1]).items()}
    scratch = context.workdir / "asgi-layer.zip"
    unzipped = {kind: _folder_bytes(folder) for kind, folder in layers.items()}
    zipped = {kind: zipped_size(folder, scratch) for kind, folder in layers.items()}
    packages = sorted(p.name.split("-")[0] for p in (layers["asgi"] / "python").glob("*.dist-info"))
    return Figure(
        key="asgi_layer",
        title="ASGI layer: its size against the dependencies layer",
        results=[
            Result("ASGI layer, unzipped", unzipped["asgi"] / 1e6, "MB", BASELINE, unzipped["dependencies"] / 1e6, SIZE_TARGET),
            Result("ASGI layer, zipped", zipped["asgi"] / 1e6, "MB", BASELINE, zipped["dependencies"] / 1e6),
        ],
        notes=[
            f"The ASGI layer ships {', '.join(packages)} (with bytecode); pydantic, anyio and typing-extensions come "
            "from the dependencies layer, which every function carries.",
            "arm64, python3.13; the ratio is the ASGI layer's size over the dependencies layer's.",
        ],
    )


BENCHMARK = Benchmark(key="asgi_layer", title="ASGI layer size", run=run, repetitions=None)

if __name__ == "__main__":
    print(json.dumps(_synthesize(Path(sys.argv[1]))))
