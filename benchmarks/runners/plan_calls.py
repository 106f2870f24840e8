"""Calibrate the planner's call counts in local mode, then check its estimates on another mix.

Usage: ``python plan_calls.py TASKS_PER_KIND STATE_DIR OUT_FILE REPORT.json`` (``OUT_FILE`` ``-``: do not write the file).

Synthesizes the repository's app with every pattern, the stateful one streaming (reusing the assembly when nothing changed), starts it in
local mode with a call meter, runs every kind of request of every variant in its own batch
(``agentrail_cli.plan.measure.calibrate``), writes the call-count file the planner reads, then runs each variant's
check mix (other proportions of the kinds) and reports the estimate from the fresh lines beside what was counted.
"""

import json
import sys
from pathlib import Path

from agentrail_cli.local_assembly import local_assembly
from agentrail_cli.plan.calls import dump_call_counts
from agentrail_cli.plan.measure import MeteredCloud, calibrate, check_mix, template_counts
from agentrail_cli.plan.workloads import NO_MODEL_CALLS, STREAMING_STATEFUL, VARIANTS

PATTERNS = "stateless,stateful,async,multiagent,hierarchical"


def main() -> int:
    tasks_per_kind, state_dir, out_file, report_path = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    state_dir.mkdir(parents=True, exist_ok=True)
    assembly = local_assembly(state_dir, patterns=PATTERNS, pairs=["streaming=true"], force=False, out=sys.stderr, command="plan")
    # The fixed-cost resources of each stack as it deploys without streaming, and the stateful one with it.
    plain = local_assembly(state_dir / "plain", patterns=PATTERNS, pairs=[], force=False, out=sys.stderr, command="plan")
    templates = template_counts(plain)
    templates[STREAMING_STATEFUL] = template_counts(assembly)["stateful"]
    with MeteredCloud(assembly, state_dir, say=lambda line: print(line, file=sys.stderr, flush=True)) as runner:
        counts = calibrate(
            runner,
            list(VARIANTS),
            tasks_per_kind=tasks_per_kind,
            generated_by="python -m benchmarks --only plan_calls",
            templates=templates,
        )
        if out_file != "-":
            dump_call_counts(counts, Path(out_file))
        checks = {}
        for variant in VARIANTS:
            batch = check_mix(runner, variant)
            measured = batch.per_task()
            calls = 0.0 if variant in NO_MODEL_CALLS else measured["model_calls"]
            checks[variant] = {"tasks": batch.tasks, "measured": measured, "estimated": counts.variant(variant).at(calls)}
    with open(report_path, "w") as report:
        json.dump({"counts": counts.model_dump(mode="json"), "checks": checks}, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
