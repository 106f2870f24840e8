"""Calibrate the planner's call counts in local mode, then check its estimates on another mix.

Usage: ``python plan_calls.py TASKS_PER_KIND STATE_DIR OUT_FILE REPORT.json`` (``OUT_FILE`` ``-``: do not write the file).

Synthesizes the repository's app with every pattern, the stateful one streaming (reusing the assembly when nothing changed), starts it in
local mode with a call meter, runs every kind of request of every variant in its own batch
(``agentrail_cli.plan.measure.calibrate``), writes the call-count file the planner reads, then runs each variant's
check mix (other proportions of the kinds) and reports the estimate from the fresh lines beside what was counted.
"""

import json
import os
import sys
from pathlib import Path

from agentrail_cli.local_assembly import local_assembly
from agentrail_cli.plan.accuracy import workload_x
from agentrail_cli.plan.calls import dump_call_counts
from agentrail_cli.plan.measure import MeteredCloud, calibrate, check_mix, template_counts
from agentrail_cli.plan.workloads import HARDENED, STREAMING_STATEFUL, VARIANTS

PATTERNS = "stateless,stateful,async,multiagent,hierarchical"
ACCOUNT, REGION = "123456789012", "us-east-1"
#: What a hardened stack looks up at synth (its Availability Zones, the S3 and DynamoDB prefix lists), answered as
#: the infra tests answer it (tests/infra/conftest.py, HARDENED_LOOKUPS): no AWS account is reached.
LOOKUPS = {
    f"availability-zones:account={ACCOUNT}:region={REGION}": ["us-east-1a", "us-east-1b", "us-east-1c"],
    **{
        f"cc-api-provider:account={ACCOUNT}:expectedMatchCount=exactly-one:propertiesToReturn.0=PrefixListId:"
        f"propertyMatch.PrefixListName=com.amazonaws.{REGION}.{service}:region={REGION}:"
        "typeName=AWS$:$:EC2$:$:PrefixList": [{"PrefixListId": prefix_list}]
        for service, prefix_list in (("s3", "pl-63a5400a"), ("dynamodb", "pl-02cd2c6b"))
    },
}


def hardened_assembly(outdir: Path) -> Path:
    """Every pattern's stack in the hardened profile, synthesized in this process (templates only: never deployed).

    Webhooks are off: without an egress path they fail the synth, and they add no endpoint or key.
    """
    os.environ.update({"CDK_DEFAULT_ACCOUNT": ACCOUNT, "CDK_DEFAULT_REGION": REGION})
    import aws_cdk as cdk

    from agentrail_constructs import PATTERN_STACKS
    from agentrail_constructs.app_config import AppConfig

    flags = json.loads(Path("cdk.json").read_text())["context"]  # the app's feature flags (cwd: the repository)
    context = {**flags, "patterns": PATTERNS, "security": "hardened", "webhooks": "false", "pipeline": "off", **LOOKUPS}
    app = cdk.App(context=context, outdir=str(outdir))
    AppConfig.from_context(app, tuple(PATTERN_STACKS)).add_stacks(app)
    return Path(app.synth().directory)


def main() -> int:
    tasks_per_kind, state_dir, out_file, report_path = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    state_dir.mkdir(parents=True, exist_ok=True)
    assembly = local_assembly(state_dir, patterns=PATTERNS, pairs=["streaming=true"], force=False, out=sys.stderr, command="plan")
    # The fixed-cost resources of each stack as it deploys without streaming, the stateful one with it, and each stack
    # in the hardened profile (its keys and interface endpoints).
    plain = local_assembly(state_dir / "plain", patterns=PATTERNS, pairs=[], force=False, out=sys.stderr, command="plan")
    templates = template_counts(plain)
    templates[STREAMING_STATEFUL] = template_counts(assembly)["stateful"]
    hardened = hardened_assembly(state_dir / "hardened")
    templates.update({f"{pattern}{HARDENED}": kinds for pattern, kinds in template_counts(hardened).items()})
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
            x = workload_x(counts, variant, measured)
            checks[variant] = {"tasks": batch.tasks, "measured": measured, "estimated": counts.variant(variant).at(x)}
    with open(report_path, "w") as report:
        json.dump({"counts": counts.model_dump(mode="json"), "checks": checks}, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
