"""``agentrail call``, ``smoke``, ``openapi``, ``dlq``, ``approvals``, ``budgets`` and ``erase``: operating a running app
from the shell."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agentrail_cli.errors import TargetError
from agentrail_cli.synth import default_state_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import httpx

    from agentrail_cli.client import LocalReadyFile
    from agentrail_cli.operations import Target

#: The patterns ``agentrail smoke`` has scenarios for (agentrail_cli.smoke.SCENARIOS, which loads on first use).
SMOKE_PATTERNS = ("stateless", "stateful", "async", "multiagent", "hierarchical", "asgi")

# The commands' own imports (httpx, boto3, local mode) come from the 'local' extra: they load when a
# command runs, so `agentrail --help` works on a plain install and a missing extra is one sentence (extras.py).


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the operational subcommands on the ``agentrail`` parser."""
    call = commands.add_parser("call", help="send one signed request to an API (SigV4 with your AWS credentials, or an API key)")
    call.add_argument("url", help="the stage URL, e.g. https://abc.execute-api.us-east-1.amazonaws.com/v1")
    call.add_argument("method", choices=["GET", "POST", "PUT", "DELETE"])
    call.add_argument("path", help="e.g. /invoke")
    call.add_argument("body", nargs="?", help="JSON body")
    call.add_argument("--api-key", help="send x-api-key instead of signing")
    call.add_argument("--region", help="signing Region (default: from the URL)")
    call.set_defaults(run=run_call)

    smoke = commands.add_parser(
        "smoke",
        help="run each pattern's end-to-end scenarios against local mode or a deployed stack; exit 1 naming what failed",
    )
    smoke.add_argument(
        "--url",
        help="a stage URL (local mode's or a deployed stack's); default: every API local mode serves (its ready file)",
    )
    smoke.add_argument("--pattern", choices=sorted(SMOKE_PATTERNS), help="default: read from the API's OpenAPI document")
    smoke.add_argument("--scenario", action="append", default=[], help="run only this scenario (repeatable)")
    smoke_auth = smoke.add_mutually_exclusive_group()
    smoke_auth.add_argument("--token", help="a Cognito token for Authorization (default: SigV4 with your AWS credentials)")
    smoke_auth.add_argument("--api-key", help="send x-api-key instead of signing")
    smoke.add_argument("--approver-token", help="a token of an approver, for the approval scenario (else it is skipped)")
    smoke.add_argument("--region", help="signing Region (default: from the URL)")
    smoke.add_argument(
        "--ready-file",
        type=Path,
        help="local mode's ready file: its principals sign for a URL it serves (default: .agentrail/local.json)",
    )
    smoke.set_defaults(run=run_smoke)

    openapi = commands.add_parser("openapi", help="write the OpenAPI document of an agent API")
    openapi.add_argument("--pattern", choices=["stateless", "stateful", "async"], default="stateless")
    openapi.add_argument("--output", type=Path, help="file to write (default: stdout)")
    openapi.set_defaults(run=run_openapi)

    dlq = commands.add_parser("dlq", help="dead-lettered tasks: list them with their cause, redrive them")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = dlq_commands.add_parser("list", help="tasks in the dead-letter queue, with the cause of their last failure")
    _target_arguments(listing)
    listing.set_defaults(run=run_dlq_list)
    again = dlq_commands.add_parser("redrive", help="send dead-lettered tasks back to the task queue")
    _target_arguments(again)
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", help="one task id")
    which.add_argument("--all", action="store_true", help="every message in the dead-letter queue")
    again.set_defaults(run=run_dlq_redrive)

    approvals = commands.add_parser("approvals", help="list, show and decide human approvals")
    approval_commands = approvals.add_subparsers(dest="approvals_command", required=True, metavar="ACTION")
    listing = approval_commands.add_parser("list", help="approvals you may see, by status")
    _target_arguments(listing, approver=True)
    listing.add_argument("--status", default="pending", choices=["pending", "approved", "rejected", "expired", "escalated"])
    listing.set_defaults(run=run_approvals_list)
    show = approval_commands.add_parser("show", help="one approval with its audit trail")
    _target_arguments(show, approver=True)
    show.add_argument("approval_id")
    show.set_defaults(run=run_approvals_show)
    for decision in ("approve", "reject"):
        decide = approval_commands.add_parser(decision, help=f"{decision} an approval (once; approver group only)")
        _target_arguments(decide, approver=True)
        decide.add_argument("approval_id")
        decide.add_argument("--comment", help="recorded in the audit trail and given to the agent")
        decide.set_defaults(run=run_approvals_decide, decision=decision)

    budgets = commands.add_parser("budgets", help="today's spend against the daily budgets, per tenant and per agent")
    _target_arguments(budgets)
    budgets.add_argument("--json", action="store_true", help="print JSON instead of a table")
    budgets.set_defaults(run=run_budgets)

    erase = commands.add_parser(
        "erase", help="erase everything of one principal on every API that keeps data (data-subject requests)"
    )
    _target_arguments(erase)
    erase.add_argument(
        "--principal",
        dest="erased",
        metavar="PRINCIPAL",
        help="whose data, as the API names callers (iam:<arn>, cognito:<sub>, ...); default: your own",
    )
    erase.add_argument("--json", action="store_true", help="print JSON instead of a table")
    erase.set_defaults(run=run_erase)


def _target_arguments(parser: argparse.ArgumentParser, *, approver: bool = False) -> None:
    where = parser.add_argument_group("target (local mode by default)")
    where.add_argument("--stack", help="stack name; with no ready file, a deployed stack reached with your AWS credentials")
    where.add_argument(
        "--ready-file",
        type=Path,
        help="local mode's ready file (default: .agentrail/local.json in the project, found from any subfolder)",
    )
    where.add_argument("--deployed", action="store_true", help="use the deployed stack even if local mode is running")
    where.add_argument("--region", help="AWS Region of a deployed stack")
    where.add_argument("--profile", help="AWS profile for a deployed stack")
    default = "the local approver" if approver else "the first"
    where.add_argument("--as", dest="principal", help=f"local mode: the local user to act as (default: {default})")
    parser.set_defaults(acts_as_approver=approver)


def _target(args: argparse.Namespace, *, pattern: str = "async") -> Target:
    from agentrail_cli.operations import Target
    from agentrail_local.apigateway.auth import APPROVER

    ready = args.ready_file or default_state_dir() / "local.json"
    if not args.deployed and (args.ready_file or ready.is_file()):
        principal = args.principal or (APPROVER if args.acts_as_approver else None)
        return Target.local(ready, stack=args.stack, pattern=None if args.stack else pattern, principal=principal)
    if not args.stack:
        raise TargetError("pass --stack NAME (a deployed stack), or start local mode with `agentrail local`")
    return Target.deployed(args.stack, region=args.region, profile=args.profile)


def _print_json(value: Any, out: TextIO) -> None:
    print(json.dumps(value, indent=2, sort_keys=True), file=out)


def _report(response: httpx.Response, out: TextIO) -> int:
    from agentrail_cli.client import json_or_text

    body = json_or_text(response)
    print(f"HTTP {response.status_code}", file=out)
    if body not in ("", None):
        _print_json(body, out) if not isinstance(body, str) else print(body, file=out)
    return 0 if response.status_code < 400 else 1


def run_call(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from agentrail_cli.client import AgentApiClient, NoCredentials, remote_auth

    try:
        auth = remote_auth(url=args.url, api_key=args.api_key, region=args.region)
    except NoCredentials:
        print("agentrail call: no AWS credentials found (or pass --api-key)", file=sys.stderr)
        return 2
    body = None
    if args.body:
        try:
            body = json.loads(args.body)
        except ValueError:
            print("agentrail call: the body is not valid JSON", file=sys.stderr)
            return 2
    with AgentApiClient(args.url, auth=auth) as client:
        return _report(client.request(args.method, args.path, json=body), out)


def run_smoke(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from agentrail_cli.client import AgentApiClient, LocalReadyFile, TokenAuth
    from agentrail_cli.smoke import PatternUnknown, fetch_pattern
    from agentrail_cli.smoke import run_smoke as smoke
    from agentrail_local.apigateway.auth import APPROVER

    ready_path = args.ready_file or default_state_dir() / "local.json"
    ready = LocalReadyFile.read(ready_path) if ready_path.is_file() else None
    served = ready.apis() if ready is not None else []
    if args.url:
        wanted = args.url.rstrip("/")
        served = [api for api in served if str(api["url"]).rstrip("/") == wanted]
    elif not served:
        raise TargetError("pass --url URL (a deployed stage), or start local mode with `agentrail local`")
    targets: list[tuple[str, Any, Any, str | None]] = []  # (url, auth, approver's auth, pattern)
    if ready is not None and served:
        for api in served:
            approver = ready.auth(api, APPROVER) if "iam" in api["auth"] else None
            targets.append((str(api["url"]), ready.auth(api), approver, args.pattern or api.get("pattern")))
    else:
        auth = _remote_auth(args)
        if auth is None:
            return 2
        approver = TokenAuth(args.approver_token) if args.approver_token else None
        targets.append((args.url, auth, approver, args.pattern))
    failed: list[str] = []
    for url, auth, approver, pattern in targets:
        with AgentApiClient(url, auth=auth) as client:
            try:
                pattern = pattern or fetch_pattern(client)
            except PatternUnknown as error:
                print(f"agentrail smoke: {url}: {error}", file=sys.stderr)
                return 2
            print(f"Smoke test of the {pattern} API at {url}", file=out)
            result = smoke(client, pattern, out=out, approver=approver, only=args.scenario)
        failed += [f"{pattern}: {name}" for name in result.failed]
        if not result.passed and not result.failed:
            failed.append(f"{pattern}: no scenario ran")
    if failed:
        print(f"agentrail smoke: failed: {'; '.join(failed)}", file=sys.stderr)
        print(f"Smoke failed: {'; '.join(failed)}", file=out)
        return 1
    print("Smoke passed.", file=out)
    return 0


def _remote_auth(args: argparse.Namespace) -> Any:
    """A deployed stage's caller: a token, an API key, or SigV4 with the ambient AWS credentials (None: none found)."""
    from agentrail_cli.client import remote_auth

    try:
        return remote_auth(url=args.url, token=args.token, api_key=args.api_key, region=args.region)
    except ValueError as error:
        print(f"agentrail smoke: {error}", file=sys.stderr)
        return None


def run_openapi(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    # The resolvers are built offline: placeholder names, nothing is called.
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AGENT_SESSION_TABLE": "placeholder",
        "AGENT_TASK_TABLE": "placeholder",
        "AGENT_APPROVAL_TABLE": "placeholder",
        "AGENT_APPROVAL_AUDIT_TABLE": "placeholder",
    }.items():
        os.environ.setdefault(key, value)
    if args.pattern == "stateless":
        from agentrail_runtime.api import stateless

        title, version, resolver = stateless.API_TITLE, stateless.API_VERSION, stateless.create_stateless_app()
    elif args.pattern == "stateful":
        from agentrail_runtime.api import sessions

        title, version, resolver = sessions.API_TITLE, sessions.API_VERSION, sessions.create_sessions_app()
    else:
        from agentrail_runtime.api import tasks

        title, version, resolver = tasks.API_TITLE, tasks.API_VERSION, tasks.create_tasks_app()
    document = resolver.get_openapi_json_schema(title=title, version=version)
    if args.output:
        args.output.write_text(document + "\n")
        print(f"wrote {args.output}", file=out)
    else:
        print(document, file=out)
    return 0


def run_dlq_list(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from agentrail_cli.operations import peek_dead_letters

    target = _target(args)
    letters = peek_dead_letters(target)
    if not letters:
        print(f"The dead-letter queue of {target.stack} is empty.", file=out)
        return 0
    print(f"{len(letters)} dead-lettered task(s) in {target.stack}:", file=out)
    for letter in letters:
        print(f"  {letter.task_id or '(not a task message)'}  receives={letter.receives}  cause: {letter.cause}", file=out)
    return 0


def run_dlq_redrive(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from agentrail_cli.operations import redrive

    target = _target(args)
    moved = redrive(target, task_id=None if args.all else args.task)
    print(f"Redrove {len(moved)} task(s) to the task queue: {', '.join(moved) or '-'}", file=out)
    return 0


def run_approvals_list(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    with _target(args).api() as api:
        response = api.request("GET", f"/approvals?status={args.status}")
    if response.status_code >= 400:
        return _report(response, out)
    approvals = response.json().get("approvals", [])
    if not approvals:
        print(f"No {args.status} approvals visible to you.", file=out)
    for item in approvals:
        print(f"  {item['approval_id']}  {item['status']:<9} group={item['approver_group']}  {item['summary']}", file=out)
    return 0


def run_approvals_show(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    with _target(args).api() as api:
        return _report(api.request("GET", f"/approvals/{args.approval_id}"), out)


def run_approvals_decide(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    body = {"decision": args.decision, "comment": args.comment}
    with _target(args).api() as api:
        return _report(api.request("POST", f"/approvals/{args.approval_id}/decision", json=body), out)


def _targets(args: argparse.Namespace, local_stacks: Callable[[LocalReadyFile], Iterable[str]]) -> list[Target]:
    """The stacks a command runs on: ``--stack`` (deployed with ``--deployed`` or without local mode, else local mode's
    stack of that name), or in local mode every stack ``local_stacks`` picks from the ready file, sorted.

    Raises
    ------
    TargetError
        Neither ``--stack`` nor local mode.
    """
    from agentrail_cli.operations import Target

    ready = args.ready_file or default_state_dir() / "local.json"
    if not args.deployed and (args.ready_file or ready.is_file()):
        from agentrail_cli.client import LocalReadyFile

        if args.stack:
            names = [args.stack]
        else:
            names = sorted(set(local_stacks(LocalReadyFile.read(ready)))) if ready.is_file() else []
        return [Target.local(ready, stack=name, pattern=None, principal=args.principal) for name in names]
    if args.stack:
        return [Target.deployed(args.stack, region=args.region, profile=args.profile)]
    raise TargetError("pass --stack NAME (a deployed stack), or start local mode with `agentrail local`")


def run_budgets(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from agentrail_cli.operations import budget_spend

    targets = _targets(
        args, lambda ready: [n for n, outputs in ready.document.get("stacks", {}).items() if "BudgetTableName" in outputs]
    )
    rows = [row for target in targets for row in budget_spend(target)]
    if args.json:
        _print_json(rows, out)
        return 0
    if not targets:
        print("No stack declares daily budgets (BudgetOptions, or -c budget_tenant_daily_usd=...).", file=out)
        return 0
    if not rows:
        print(f"Nothing spent today (UTC) under the budgets of {', '.join(t.stack for t in targets)}.", file=out)
        return 0
    header = ("STACK", "PER", "NAME", "UNIT", "SPENT", "LIMIT", "USED")
    table = [header] + [
        (
            r["stack"],
            r["per"],
            r["name"],
            r["unit"],
            _amount(r["spent"], r["unit"]),
            _amount(r["limit"], r["unit"]),
            f"{r['used_percent']:.1f}%",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip(), file=out)
    return 0


#: The patterns whose API serves ``POST /erase`` (every one: the stateless API erases a caller's budget counters and
#: shadow comparisons).
ERASING_PATTERNS = ("stateless", "stateful", "async", "multiagent", "hierarchical")


def run_erase(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    targets = _targets(args, lambda ready: [a["stack"] for a in ready.apis() if a.get("pattern") in ERASING_PATTERNS])
    body = {"principal": args.erased} if args.erased else {}
    reports: dict[str, Any] = {}
    for target in targets:
        with target.api() as api:
            response = api.request("POST", "/erase", json=body)
        if response.status_code >= 400:
            print(f"{target.stack}:", file=out)
            return _report(response, out)
        reports[target.stack] = response.json()
    total: dict[str, int] = {}
    for report in reports.values():
        for kind, count in report["counts"].items():
            total[kind] = total.get(kind, 0) + count
    if args.json:
        _print_json({"stacks": reports, "total": total}, out)
        return 0
    if not reports:
        print("No API that keeps data is served here (stateful, async, multiagent, hierarchical).", file=out)
        return 0
    width = max(len(kind) for kind in total)
    print(f"Erased on {', '.join(reports)}:", file=out)
    for kind, count in total.items():
        print(f"  {kind.ljust(width)}  {count}", file=out)
    pseudonyms = {r["audit_pseudonym"] for r in reports.values() if r.get("audit_pseudonym")}
    for pseudonym in sorted(pseudonyms):
        print(f"  audit trail now names the principal {pseudonym}", file=out)
    return 0


def _amount(value: float, unit: str) -> str:
    return f"{value:.6f} USD" if unit == "usd" else f"{int(value):,}"


def dispatch(args: argparse.Namespace) -> int:
    """Run the chosen command; a target that can't be reached is a usage error (exit 2), not a traceback."""
    try:
        return int(args.run(args))
    except TargetError as error:
        print(f"agentrail: {error}", file=sys.stderr)
        return 2
