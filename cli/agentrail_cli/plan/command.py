"""``agentrail plan``: requirements (questions, flags or a YAML file) to a pattern, its settings and its cost.

Exit status: 0 with a plan; 2 with one sentence on stderr when an input is bad (a rate of zero, a duration over a
year, an unknown region or model, a malformed file); with ``--measure``, 1 when the estimate is not within 10%
of what local mode counted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from agentrail_cli.plan.errors import PlanInputError
from agentrail_cli.plan.workloads import VARIANTS

__all__ = ["QUESTIONS", "add_plan_command", "run_plan"]

#: The interactive questions: (requirement, question). Each shows its default; Enter keeps it.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("name", "What is this agent called?"),
    ("requests_per_hour", "Requests per hour, on average (a session's turns each count)?"),
    ("peak_concurrency", "Peak requests in flight (Enter: 3x the average, by Little's law)?"),
    ("latency", "Does a person wait for the answer? (interactive / background)"),
    ("state", "What must it remember? (none / session / multi_step)"),
    ("turns_per_session", "Turns in a session (state: session)?"),
    ("task_duration", "How long does one request or task take (30s, 15m, 2h)?"),
    ("complexity", "How many agents? (single / specialists / supervisor)"),
    ("approvals", "Does an action need a person's approval? (yes / no)"),
    ("approval_wait", "How long may an approval wait (3d)?"),
    ("streaming", "Stream answers token by token? (yes / no)"),
    ("budget_usd_per_month", "Monthly budget in USD (Enter: none)?"),
    ("ops_experience", "The team's experience running servers and containers? (none / some / experienced)"),
    ("model", "Model (bedrock:<model-id>, openai:<model>)?"),
    ("model_calls_per_task", "Model calls per request (per turn in a session)?"),
    ("input_tokens_per_call", "Input tokens per model call (prompt, tools and history)?"),
    ("output_tokens_per_call", "Output tokens per model call?"),
    ("region", "AWS Region?"),
)
_BOOLEANS = {"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}


def add_plan_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``agentrail plan`` on the ``agentrail`` parser."""
    try:
        from agentrail_cli.plan.requirements import Requirements

        fields = Requirements.model_fields
    except ModuleNotFoundError as missing:  # a plain install: running the command names the extra (extras.py)
        fields, absent = {}, missing
    parser = commands.add_parser(
        "plan",
        help="map requirements to a pattern, its settings and a cost per 1,000 tasks and per month, "
        "with the crossover where containers win",
        description="Asks its questions when run in a terminal without a file or flags; takes a YAML file and flags for CI.",
    )
    parser.add_argument("--file", type=Path, help="a YAML file of requirements (flags override it)")
    group = parser.add_argument_group("requirements (defaults in brackets)")
    for name, field in fields.items():
        flag = "--" + name.replace("_", "-")
        default = field.default.value if hasattr(field.default, "value") else field.default
        if field.annotation is bool:
            group.add_argument(flag, dest=f"req_{name}", action=argparse.BooleanOptionalAction, default=None, help=f"[{default}]")
        else:
            group.add_argument(flag, dest=f"req_{name}", default=None, metavar="VALUE", help=f"[{default}]")
    parser.add_argument(
        "--prices", type=Path, action="append", default=[], help="a price file that overrides the shipped one (repeatable)"
    )
    parser.add_argument(
        "--chart", type=Path, default=Path("agentrail-plan.svg"), help="where to write the cost chart (default: %(default)s)"
    )
    parser.add_argument("--no-chart", action="store_true", help="do not write the chart")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--interactive", action="store_true", help="ask the questions even when not in a terminal")
    measure = parser.add_argument_group("measuring in local mode")
    measure.add_argument(
        "--measure",
        action="store_true",
        help="also run the plan's patterns in local mode, count their AWS calls and tokens, and print the estimate beside "
        "the count; exit 1 when they differ by more than 10%%",
    )
    measure.add_argument("--state-dir", type=Path, help="local mode's folder (default: .agentrail/plan in the project)")
    measure.add_argument("--assembly", type=Path, help="an existing cloud assembly (cdk.out) to run instead of synthesizing")
    measure.add_argument(
        "--variants",
        help=f"the variants to measure, comma-separated, or 'all' ({', '.join(VARIANTS)}); default: the plan's own",
    )
    if fields:
        parser.set_defaults(run=run_plan)
    else:
        parser.set_defaults(run=lambda _: _raise(absent))


def _raise(error: ModuleNotFoundError) -> int:
    raise error


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {key[4:]: value for key, value in vars(args).items() if key.startswith("req_") and value is not None}


def _ask(values: dict[str, Any], out: TextIO, read: Any) -> dict[str, Any]:
    from agentrail_cli.plan.requirements import Requirements

    answers = dict(values)
    for name, question in QUESTIONS:
        if name in answers:
            continue
        default = Requirements.model_fields[name].default
        shown = default.value if hasattr(default, "value") else ("none" if default is None else default)
        print(f"{question} [{shown}] ", end="", file=out, flush=True)
        answer = read().strip()
        if not answer:
            continue
        if Requirements.model_fields[name].annotation is bool:
            if answer.lower() not in _BOOLEANS:
                raise PlanInputError(f"{name} must be yes or no, not {answer[:40]!r}.")
            answers[name] = _BOOLEANS[answer.lower()]
        else:
            answers[name] = answer
    return answers


def run_plan(args: argparse.Namespace, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> int:
    try:
        return _run(args, out, stdin)
    except PlanInputError as error:
        print(f"agentrail plan: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from agentrail_cli.plan.calls import load_call_counts
    from agentrail_cli.plan.chart import cost_chart_svg
    from agentrail_cli.plan.plan import make_plan
    from agentrail_cli.plan.prices import load_prices
    from agentrail_cli.plan.render import render_plan
    from agentrail_cli.plan.requirements import load_requirements, requirements_from

    flags = _flags(args)
    if args.file is not None:
        requirements = load_requirements(args.file, flags)
    elif args.interactive or (not flags and stdin.isatty()):
        requirements = requirements_from(_ask(flags, sys.stderr, stdin.readline))  # stdout stays the plan
    else:
        requirements = requirements_from(flags)
    prices = load_prices(overrides=args.prices)
    counts = load_call_counts()
    plan = make_plan(requirements, prices=prices, counts=counts)
    chart = None
    if not args.no_chart:
        title = f"{requirements.name}: monthly compute cost by traffic ({requirements.region})"
        try:
            args.chart.write_text(cost_chart_svg(plan.comparison, title=title), encoding="utf-8")
        except OSError as error:
            raise PlanInputError(f"cannot write the chart to {args.chart}: {error.strerror or error}.") from None
        chart = str(args.chart)
    if not args.json:
        print(render_plan(plan, chart_path=chart), file=out, end="")
    status, checks = 0, None
    if args.measure:
        status, checks = _measure(args, plan, prices, counts, out)
    if args.json:
        document = plan.as_dict()
        document["chart"] = chart
        if checks is not None:
            document["measured"] = [check.as_dict() for check in checks]
        print(json.dumps(document, indent=2), file=out)
    return status


def _variants(text: str | None, plan: Any) -> list[str]:
    if text is None:
        return [variant for variant, _ in plan.recommendation.components]
    names = list(VARIANTS) if text == "all" else [v.strip() for v in text.split(",") if v.strip()]
    if not names or any(v not in VARIANTS for v in names):
        raise PlanInputError(f"--variants takes 'all' or some of {', '.join(VARIANTS)}, not {text[:60]!r}.")
    return names


def _measure(args: argparse.Namespace, plan: Any, prices: Any, counts: Any, out: TextIO) -> tuple[int, list[Any] | None]:
    from agentrail_cli.local_assembly import local_assembly
    from agentrail_cli.plan.accuracy import check_variant, render_checks
    from agentrail_cli.plan.measure import MeasureError, MeteredCloud, check_mix
    from agentrail_cli.synth import SynthError, default_state_dir

    rec = plan.recommendation
    variants = _variants(args.variants, plan)
    patterns = sorted({VARIANTS[v].pattern for v in variants})
    context = {key: value for key, value in rec.context.items() if key != "patterns"}
    if any(v.startswith("stream_") for v in variants):
        context["streaming"] = "true"
    pairs = [f"{key}={value}" for key, value in context.items()]
    progress = sys.stderr if args.json else out
    state_dir = (args.state_dir or default_state_dir() / "plan").resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    print(f"\nMeasuring {', '.join(variants)} in local mode (the demo agents on the local model) ...", file=progress, flush=True)
    if args.assembly is not None:
        assembly = args.assembly
    else:
        try:
            assembly = local_assembly(
                state_dir, patterns=",".join(patterns), pairs=pairs, force=False, out=progress, command="plan"
            )
        except SynthError as error:
            raise PlanInputError(f"cannot synthesize the app to measure it: {error}") from None
    try:
        with MeteredCloud(assembly, state_dir, say=lambda line: print(line, file=progress, flush=True)) as runner:
            checks = [check_variant(counts, check_mix(runner, v), plan.requirements, rec, prices) for v in variants]
    except MeasureError as error:
        print(f"agentrail plan: the measurement failed: {error}", file=sys.stderr)
        return 1, None
    if not args.json:
        print(render_checks(checks), file=out, end="")
    return (0 if all(check.within for check in checks) else 1), checks
