"""The runtime and dependencies layers as the constructs build them, to start handlers on the functions' own Python.

:func:`build` synthesizes a one-stack CDK app (this module, run as a script)
with a ``RuntimeLayer`` and a ``DependenciesLayer`` for this machine's
architecture, with real bundling: the same lock, wheels and bytecode a
deploy ships, taken from the layer cache when it holds them. Handlers then
import from the layers' ``python/`` folders with python3.13, as Lambda does
from ``/opt/python``; a copy without ``__pycache__`` folders is what a layer
without bytecode would be.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BuiltLayers", "build"]

_REPO_ROOT = Path(__file__).resolve().parents[1]
_SHARED_KEY = "built_layers"


@dataclass(frozen=True)
class BuiltLayers:
    """The layers' ``python/`` folders, with their bytecode and without, and the interpreter that compiled it."""

    python: Path
    python_version: str
    compiled: tuple[Path, ...]
    source_only: tuple[Path, ...]
    sizes: dict[str, int]
    """Layer kind -> bytes on disk with the bytecode; ``<kind> without bytecode`` -> bytes without."""


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def build(workdir: Path, shared: dict[str, object]) -> BuiltLayers | None:
    """Build (or reuse, once per run) the layers for this machine; None when python3.13 is missing.

    Raises
    ------
    RuntimeError
        When the synth fails (the tail of its output says why).
    """
    if _SHARED_KEY in shared:
        return shared[_SHARED_KEY]  # type: ignore[return-value]
    # A child process: CDK (and its Node process) stays out of the harness that times the handlers.
    outdir = workdir / "layers.out"
    environment = dict(os.environ)
    environment["PATH"] = os.pathsep.join([str(_REPO_ROOT / "node_modules" / ".bin"), environment.get("PATH", "")])
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.built_layers", str(outdir)],
        cwd=_REPO_ROOT, env=environment, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if finished.returncode != 0:
        raise RuntimeError(f"building the layers failed: {finished.stderr[-2000:]}")
    synthesized = json.loads(finished.stdout.strip().splitlines()[-1])
    built = None
    if synthesized["python"]:
        compiled, source_only, sizes = [], [], {}
        for kind, asset in synthesized["layers"].items():
            python_dir = Path(asset) / "python"
            stripped = workdir / "layers-source-only" / kind
            shutil.copytree(python_dir, stripped, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            compiled.append(python_dir)
            source_only.append(stripped)
            sizes[kind] = _folder_bytes(python_dir)
            sizes[f"{kind} without bytecode"] = _folder_bytes(stripped)
        built = BuiltLayers(Path(synthesized["python"]), synthesized["version"], tuple(compiled), tuple(source_only), sizes)
    shared[_SHARED_KEY] = built
    return built


def _synthesize(outdir: Path) -> dict[str, object]:
    """The app: both layers for this machine, bundled, if the runtime's interpreter is here.

    Returns the interpreter (path and version, or None) and layer kind -> asset folder.
    """
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from agentrail_constructs.function import DEFAULT_RUNTIME
    from agentrail_constructs.layers import LAYER_KIND_METADATA, DependenciesLayer, RuntimeLayer
    from agentrail_constructs.sources import find_interpreter

    interpreter = find_interpreter(DEFAULT_RUNTIME.name.removeprefix("python"))
    if interpreter is None:
        return {"python": None, "version": None, "layers": {}}
    architecture = lambda_.Architecture.ARM_64 if platform.machine() in ("aarch64", "arm64") else lambda_.Architecture.X86_64
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True})
    stack = cdk.Stack(app, "Layers")
    RuntimeLayer(stack, "Runtime", runtime=DEFAULT_RUNTIME)
    DependenciesLayer(stack, "Dependencies", runtime=DEFAULT_RUNTIME, architecture=architecture)
    template = app.synth().get_stack_by_name("Layers").template
    layers = {
        resource["Metadata"][LAYER_KIND_METADATA]: str(outdir / resource["Metadata"]["aws:asset:path"])
        for resource in template["Resources"].values()
        if LAYER_KIND_METADATA in resource.get("Metadata", {})
    }
    return {"python": str(interpreter.executable), "version": interpreter.version, "layers": layers}


if __name__ == "__main__":
    print(json.dumps(_synthesize(Path(sys.argv[1]))))
