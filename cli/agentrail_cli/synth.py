"""Synthesize the CDK app with the project's pinned CDK CLI (offline, no Docker)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


class SynthError(RuntimeError):
    """``cdk synth`` failed or could not start; the message says why and what to run."""


def find_project_dir(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding ``cdk.json``.

    Raises
    ------
    SynthError
        When no folder up to the file system root has one.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "cdk.json").is_file():
            return folder
    raise SynthError(f"no cdk.json in {here} or above; run from the project folder or pass --assembly")


def default_state_dir(start: str | Path | None = None) -> Path:
    """Where local mode keeps its logs, assembly and ready file: ``.agentrail`` in the project (found upward
    from ``start``), or in ``start`` itself outside a project. Every command looks there by default."""
    try:
        return find_project_dir(start) / ".agentrail"
    except SynthError:
        return Path(start or Path.cwd()).resolve() / ".agentrail"


#: ``-c pipeline=off``: app.py builds the app's stacks, not the delivery pipeline, even when cdk.json configures one
#: (agentrail_constructs.app_config.PIPELINE_OFF; a seam test keeps the two equal).
PIPELINE_OFF = "off"


def cdk_command(project_dir: Path) -> list[str]:
    pinned = project_dir / "node_modules" / ".bin" / "cdk"
    if pinned.exists():
        return [str(pinned)]
    found = shutil.which("cdk")
    if found:
        return [found]
    raise SynthError(
        "the CDK CLI is not installed; install it with `npm install -g aws-cdk` (or `npm ci` in a project that pins it)"
    )


def synthesize(
    project_dir: str | Path,
    output_dir: str | Path,
    *,
    patterns: str | None = None,
    context: Mapping[str, str] | None = None,
) -> Path:
    """Run ``cdk synth --no-notices --quiet --output <output_dir>`` in ``project_dir``.

    ``node_modules/.bin`` (Node 22 and the pinned CLI) and this interpreter's
    folder (so ``python3 app.py`` finds aws-cdk-lib) go first on ``PATH``.

    Returns
    -------
    Path
        ``output_dir``, now holding the cloud assembly.

    Raises
    ------
    SynthError
        With the end of the CLI's output when synthesis fails.
    """
    project = Path(project_dir).resolve()
    output = Path(output_dir).resolve()
    command = [*cdk_command(project), "synth", "--no-notices", "--quiet", "--output", str(output)]
    if patterns:
        command += ["-c", f"patterns={patterns}"]
    for key, value in (context or {}).items():
        command += ["-c", f"{key}={value}"]
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(project / "node_modules" / ".bin"), str(Path(sys.executable).parent), env.get("PATH", "")])
    # No account lookups: synthesis must work offline, and probing the EC2 metadata service only adds a timeout.
    env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    env.setdefault("CDK_DISABLE_VERSION_CHECK", "true")
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-3000:]
        raise SynthError(f"cdk synth failed (exit {result.returncode}):\n{detail}")
    return output


__all__ = ["PIPELINE_OFF", "SynthError", "cdk_command", "default_state_dir", "find_project_dir", "synthesize"]
