"""Runs a handler in a fresh Python process set up like a Lambda execution environment.

Both sides of every handler figure get the same interpreter, the same
environment and the same ``sys.path``: the runtime layer's ``python/`` folder
first (as ``/opt/python`` is in Lambda), then the repository root for the
baseline handler. The handler's output (logs, EMF metrics) goes to
``/dev/null``; the runner scripts write their timings to a JSON file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.report import REPO_ROOT

T = TypeVar("T")

__all__ = [
    "BASELINE_HANDLER",
    "FRAMEWORK_HANDLER",
    "INVOKE_EVENT",
    "PYTHON",
    "RUNNERS_DIR",
    "RUNTIME_LAYER_PATH",
    "ChildRun",
    "RunnerError",
    "handler_environment",
    "layer_environment",
    "run_in_workdir",
    "run_runner",
]

PYTHON = sys.executable
RUNNERS_DIR = Path(__file__).resolve().parent / "runners"
RUNTIME_LAYER_PATH = REPO_ROOT / "layers" / "runtime" / "python"
HANDLERS_PATH = REPO_ROOT / "handlers"
INVOKE_EVENT = REPO_ROOT / "events" / "stateless" / "invoke.json"
FRAMEWORK_HANDLER = "agentrail_handlers.stateless.app:handler"
BASELINE_HANDLER = "benchmarks.baselines.powertools_handler:handler"

_LAMBDA_LIKE_ENV = {
    # Fake credentials and a Region, so nothing can reach a real account.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    # What the AgentFunction construct sets; X-Ray has no daemon here.
    "POWERTOOLS_SERVICE_NAME": "agentrail-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "AgentrailBench",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AGENT_MODEL": "local",
}


class RunnerError(RuntimeError):
    """A runner process failed or its handler did not answer 200."""


def handler_environment(pycache_dir: Path, *, write_bytecode: bool = True) -> dict[str, str]:
    """A minimal, explicit environment, the same for framework and baseline.

    Nothing is inherited but ``PATH``, ``HOME`` and the locale, so a developer's
    ``AWS_PROFILE`` or ``PYTHONDONTWRITEBYTECODE`` cannot skew a figure.
    Bytecode lives under ``pycache_dir`` (``PYTHONPYCACHEPREFIX``), never in
    the repository. With ``write_bytecode`` both sides load compiled modules
    after their first run, as from a package that ships ``.pyc`` files;
    without it (and an empty ``pycache_dir``) every import compiles from
    source, as from a read-only layer without ``.pyc`` files.
    """
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL") if key in os.environ}
    env.update(_LAMBDA_LIKE_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(RUNTIME_LAYER_PATH), str(REPO_ROOT)])
    env["PYTHONPYCACHEPREFIX"] = str(pycache_dir)
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def alternating_sides(
    measure: Callable[[str], T], repetitions: int, progress: Callable[[str], None], label: str
) -> dict[str, list[T]]:
    """``measure(side)`` ``repetitions`` times for ``framework`` and ``baseline`` (one fresh process each), in the
    order B F, F B, B F, ..., so a drift over the run weighs on both sides alike; ``progress`` after each pair."""
    samples: dict[str, list[T]] = {"framework": [], "baseline": []}
    for index in range(repetitions):
        for side in ("baseline", "framework") if index % 2 == 0 else ("framework", "baseline"):
            samples[side].append(measure(side))
        progress(f"{label} {index + 1}/{repetitions}")
    return samples


def traced_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` as Lambda gives a function with active tracing, as far as its import and first request see it:
    ``LAMBDA_TASK_ROOT`` set and tracing not disabled, so Powertools' Tracer imports the X-Ray SDK and patches what
    it supports. No daemon listens: segments go to a local UDP port and nowhere else."""
    traced = {k: v for k, v in env.items() if k != "POWERTOOLS_TRACE_DISABLED"}
    traced.update(
        {
            "LAMBDA_TASK_ROOT": str(REPO_ROOT / "handlers" / "agentrail_handlers" / "stateless"),
            "AWS_LAMBDA_FUNCTION_NAME": "agentrail-bench",
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        }
    )
    return traced


def layer_environment(layer_python_dirs: tuple[Path, ...]) -> dict[str, str]:
    """:func:`handler_environment` for an interpreter outside the venv, importing from built layers as Lambda does.

    ``sys.path`` holds the layers' ``python/`` folders (``/opt/python`` on
    Lambda), then the handlers and the repository root (the function's own
    code, and the baseline handler). Python writes no bytecode: it uses the
    ``.pyc`` files the layers ship, or compiles every module on every start.
    """
    env = handler_environment(Path(os.devnull), write_bytecode=False)
    del env["PYTHONPYCACHEPREFIX"]  # with a prefix set, Python would ignore the layers' __pycache__ folders
    env["PYTHONPATH"] = os.pathsep.join([*map(str, layer_python_dirs), str(HANDLERS_PATH), str(REPO_ROOT)])
    return env


@dataclass(frozen=True)
class ChildRun:
    """A finished runner process: what it reported and its wall time as the parent saw it."""

    report: dict[str, Any]
    process_ns: int
    stderr: str


def run_runner(
    script: str,
    args: list[str],
    *,
    env: dict[str, str],
    report_path: Path,
    python_flags: tuple[str, ...] = (),
    timeout: float = 300,
    python: str | Path = PYTHON,
) -> ChildRun:
    """Run ``runners/<script>`` in a fresh ``python`` (default: the venv's) and read the JSON report it writes to ``report_path``.

    Raises
    ------
    RunnerError
        When the process exits non-zero (its stderr tail is in the message).
    """
    report_path.unlink(missing_ok=True)
    command = [str(python), *python_flags, str(RUNNERS_DIR / script), *args, str(report_path)]
    started = time.perf_counter_ns()
    finished = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    process_ns = time.perf_counter_ns() - started
    if finished.returncode != 0 or not report_path.is_file():
        raise RunnerError(f"{script} {' '.join(args)} exited {finished.returncode}: {finished.stderr.strip()[-2000:]}")
    return ChildRun(report=json.loads(report_path.read_text()), process_ns=process_ns, stderr=finished.stderr)


def run_in_workdir(workdir: Path, script: str, args: list[str], *, timeout: float) -> ChildRun:
    """:func:`run_runner` as the one-process figures run it.

    The environment is :func:`handler_environment` with bytecode cached under
    ``workdir/pycache`` (shared by every figure of the run); the report is
    ``workdir/<script's stem>.json``.
    """
    return run_runner(
        script,
        args,
        env=handler_environment(workdir / "pycache"),
        report_path=workdir / f"{Path(script).stem}.json",
        timeout=timeout,
    )
