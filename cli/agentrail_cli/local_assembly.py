"""The cloud assembly local mode runs: synthesized with local mode's context, or reused when nothing changed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from agentrail_cli.synth import PIPELINE_OFF, find_project_dir, synthesize
from agentrail_cli.synth_inputs import changes_since, forget_record, read_record, synth_inputs, write_record

__all__ = ["local_assembly", "local_context"]


def local_context(pairs: Sequence[str], *, command: str = "local") -> dict[str, str]:
    """``-c KEY=VALUE`` pairs, plus the local approver identity unless ``approvers`` is given, and ``pipeline=off``:
    local mode runs the app's stacks, never the delivery pipeline that deploys them to AWS."""
    from agentrail_local.apigateway.auth import APPROVER, DEFAULT_PRINCIPALS

    context: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"agentrail {command}: -c expects KEY=VALUE, got {pair!r}")
        context[key] = value
    approver = next(p for p in DEFAULT_PRINCIPALS if p.name == APPROVER)
    context.setdefault("approvers", f"iam:{approver.user_arn}")
    context["pipeline"] = PIPELINE_OFF
    return context


def local_assembly(
    state_dir: Path,
    *,
    patterns: str | None,
    pairs: Sequence[str],
    force: bool,
    out: TextIO,
    command: str = "local",
) -> Path:
    """``<state-dir>/cdk.out``, synthesized now unless the last synth there read exactly the same inputs.

    Raises
    ------
    SynthError
        When there is no project, or ``cdk synth`` fails.
    """
    project = find_project_dir()
    output = state_dir / "cdk.out"
    context = local_context(pairs, command=command)
    inputs = synth_inputs(project, patterns=patterns, context=context, state_dir=state_dir)
    previous = read_record(output)
    changes = ["--synth given"] if force else changes_since(previous, inputs)
    if not changes and previous is not None:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(previous.synthesized_at))
        print(f"Reusing the synthesized assembly (nothing changed since {since}): {output}", file=out, flush=True)
        return output
    print(f"Synthesizing {patterns or 'the app'} with the CDK CLI (offline): {'; '.join(changes)} ...", file=out, flush=True)
    started = time.perf_counter()
    forget_record(output)
    assembly = synthesize(project, output, patterns=patterns, context=context)
    write_record(output, inputs)
    print(f"Synthesized in {time.perf_counter() - started:.1f} s: {assembly}", file=out, flush=True)
    return assembly
