"""``cdk synth`` time: the real app against a one-function app, both through the pinned CDK CLI.

Both run from the repository root (same ``cdk.json`` feature flags) with
``node_modules/.bin`` and the venv first on ``PATH``, each into a fresh
``--output`` folder. The last output of each app stays in the run's work
folder for the asset figure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import PYTHON
from benchmarks.report import REPO_ROOT, Figure, Result, median

__all__ = ["BENCHMARK", "SynthOutputs", "synthesized"]

BASELINE = "one-function CDK app (benchmarks/baselines/one_function_app/app.py)"
BASELINE_APP = Path(__file__).resolve().parent / "baselines" / "one_function_app" / "app.py"
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"
_SHARED_KEY = "synth.outputs"


class SynthError(RuntimeError):
    """``cdk synth`` exited non-zero."""


@dataclass
class SynthOutputs:
    """The latest ``cdk.out`` folder of each app."""

    real: Path
    baseline: Path


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    bins = [str(REPO_ROOT / "node_modules" / ".bin"), str(Path(PYTHON).parent)]
    env["PATH"] = os.pathsep.join([*bins, env.get("PATH", "")])
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    return env


def synthesize(app: str, output: Path) -> float:
    """Synthesize ``real`` or ``baseline`` into ``output``; return the wall time in seconds.

    Raises
    ------
    SynthError
        With the tail of the CLI's output.
    """
    command = [str(CDK), "synth", "--no-notices", "--quiet", "--output", str(output)]
    if app == "baseline":
        command += ["--app", f"python3 {BASELINE_APP.relative_to(REPO_ROOT)}"]
    started = time.perf_counter()
    finished = subprocess.run(
        command, cwd=REPO_ROOT, env=_environment(), capture_output=True, text=True, timeout=900, check=False
    )
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise SynthError(f"cdk synth ({app}) exited {finished.returncode}: {(finished.stdout + finished.stderr)[-2000:]}")
    return seconds


def _synthesize_into(context: RunContext, app: str, index: int) -> float:
    """Synthesize ``app`` into a new folder, which replaces its previous output (the real app's is ~50 MB)."""
    output = context.workdir / f"synth-{app}-{index}"
    seconds = synthesize(app, output)
    latest: dict[str, Path] = context.shared.setdefault(_SHARED_KEY, {})
    previous = latest.get(app)
    if previous is not None and previous != output:
        shutil.rmtree(previous, ignore_errors=True)
    latest[app] = output
    return seconds


def synthesized(context: RunContext) -> SynthOutputs:
    """The synthesized apps of this run: the synth figure's last outputs, else one synth of each now."""
    latest: dict[str, Path] = context.shared.setdefault(_SHARED_KEY, {})
    for app in ("real", "baseline"):
        if app not in latest:
            context.progress(f"synthesizing the {app} app for the asset figure")
            _synthesize_into(context, app, 0)
    return SynthOutputs(real=latest["real"], baseline=latest["baseline"])


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Time ``cdk synth`` of both apps, alternating; see the module docstring."""
    repetitions = repetitions or 3
    seconds: dict[str, list[float]] = {"real": [], "baseline": []}
    for index in range(repetitions):
        order = ("baseline", "real") if index % 2 == 0 else ("real", "baseline")
        for app in order:
            seconds[app].append(_synthesize_into(context, app, index))
        context.progress(
            f"synth {index + 1}/{repetitions}: real {seconds['real'][-1]:.2f} s, baseline {seconds['baseline'][-1]:.2f} s"
        )
    return Figure(
        key="synth",
        title="cdk synth: the real app vs a one-function app",
        results=[
            Result(
                "cdk synth, real app",
                median(seconds["real"]),
                "s",
                BASELINE,
                median(seconds["baseline"]),
                details={
                    "samples_s": [round(s, 3) for s in seconds["real"]],
                    "baseline_samples_s": [round(s, 3) for s in seconds["baseline"]],
                },
            )
        ],
        notes=[
            f"Median of {repetitions} runs each, alternating; `cdk synth --no-notices --quiet --output <tmp>` "
            "from the repository root with the pinned CLI.",
            "Bundling caches are warm after the first run (the dependencies layer's pip install is cached "
            f"under ~/.cache/agentrail); first run: real {seconds['real'][0]:.2f} s, baseline {seconds['baseline'][0]:.2f} s.",
            "Includes cdk-nag's AwsSolutions checks, which the real app runs on every synth.",
        ],
    )


BENCHMARK = Benchmark(
    key="synth",
    title="cdk synth",
    run=run,
    repetitions=3,
    quick_repetitions=1,
)
