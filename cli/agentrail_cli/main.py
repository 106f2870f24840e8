"""The ``agentrail`` command: ``agentrail local`` runs the synthesized app against moto, optionally with the tour."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from agentrail_cli.chat import add_chat_command
from agentrail_cli.commands import add_commands, dispatch
from agentrail_cli.evals import add_eval_command
from agentrail_cli.extras import missing_extra, version
from agentrail_cli.local_assembly import local_assembly, local_context
from agentrail_cli.metrics import add_metrics_command
from agentrail_cli.plan.command import add_plan_command
from agentrail_cli.shadow import add_shadow_command
from agentrail_cli.synth import SynthError, default_state_dir, find_project_dir
from agentrail_local.awslambda.definitions import DEFAULT_ACCOUNT_CONCURRENCY

if TYPE_CHECKING:
    from agentrail_cli.reload import HotReload

DEFAULT_PORT = 3000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentrail", description="agentrail: serverless AI agents on AWS, and locally.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    local = commands.add_parser(
        "local",
        help="run the app on this machine (moto, no Docker, no AWS account)",
        description="Synthesize the CDK app, deploy its templates into moto and serve its APIs on 127.0.0.1.",
    )
    local.add_argument("--patterns", help="comma-separated patterns to synthesize (CDK context 'patterns'); default: cdk.json's")
    local.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port of the first API, the next take the following ports; 0 picks free ports (default: %(default)s)",
    )
    local.add_argument(
        "--concurrency",
        type=_positive,
        default=DEFAULT_ACCOUNT_CONCURRENCY,
        help="the account's concurrency pool: executions at once of every function without reserved concurrency, "
        "each a worker process started when needed (Lambda's default pool is 1000; default: %(default)s)",
    )
    local.add_argument(
        "--schedule-seconds",
        type=_positive_seconds,
        metavar="S",
        help="fire every rate(...) schedule (EventBridge Scheduler schedules, scheduled rules) S seconds apart instead of "
        "at its own rate (default: $AGENTRAIL_LOCAL_SCHEDULE_SECONDS, else each schedule's rate)",
    )
    local.add_argument(
        "--assembly",
        type=Path,
        help="an existing cloud assembly (cdk.out) to run instead of synthesizing (so not with --patterns or -c)",
    )
    local.add_argument(
        "--synth",
        action="store_true",
        help="synthesize even when nothing the synth reads changed since the last one (default: reuse that assembly)",
    )
    local.add_argument(
        "--no-reload",
        action="store_true",
        help="do not watch the project: by default, an edit to function, layer or agent code is live at once "
        "(not with --assembly or --tour)",
    )
    local.add_argument("--tour", action="store_true", help="take the scripted tour, then stop; exit 1 if a step failed")
    local.add_argument(
        "--ready-file", type=Path, help="where to write endpoints and credentials (default: <state-dir>/local.json)"
    )
    local.add_argument(
        "--state-dir", type=Path, help="folder for logs, the assembly and the ready file (default: .agentrail in the project)"
    )
    local.add_argument(
        "--show-logs", action="store_true", help="with --tour, also print the functions' logs (always printed when serving)"
    )
    local.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="CDK context for the synth, like cdk's -c (e.g. approval_timeout=5); repeatable",
    )
    local.set_defaults(usage_error=local.error)
    add_commands(commands)
    add_metrics_command(commands)
    add_eval_command(commands)
    add_shadow_command(commands)
    add_chat_command(commands)
    add_plan_command(commands)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _state_dir(args: argparse.Namespace) -> Path:
    return args.state_dir.resolve() if args.state_dir is not None else default_state_dir()


def _print_endpoints(cloud: object, out: TextIO, *, seconds: float, ready_file: Path) -> None:
    from agentrail_local.cloud import LocalCloud

    assert isinstance(cloud, LocalCloud)
    stacks = ", ".join(d.stack_name for d in cloud.deployments)
    print(f"\nagentrail local: deployed {stacks} into moto in {seconds:.1f} s (no Docker, no AWS account)\n", file=out)
    rows = [("API", "URL", "AUTH", "ROUTES")]
    rows.extend((e.pattern or e.stack, e.url, e.auth, ", ".join(e.routes)) for e in cloud.endpoints())
    rows.extend((ws.pattern or ws.stack, ws.url, ws.auth, ", ".join(ws.routes)) for ws in cloud.websocket_endpoints())
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3], file=out)
    principal = cloud.principals[0]
    print(
        f"\n  Sign requests with SigV4 (service execute-api, region us-east-1) as {principal.name}:"
        f"\n    AWS_ACCESS_KEY_ID={principal.access_key_id} AWS_SECRET_ACCESS_KEY={principal.secret_access_key}",
        file=out,
    )
    for endpoint in cloud.endpoints():
        if endpoint.api_key:
            print(f"  API key of {endpoint.pattern or endpoint.stack}: x-api-key: {endpoint.api_key}", file=out)
    for endpoint in cloud.endpoints():
        if endpoint.console_url:
            print(f"  Operator console of {endpoint.pattern or endpoint.stack}: {endpoint.console_url}", file=out)
    for ws in cloud.websocket_endpoints():
        print(f"  @connections API of {ws.pattern or ws.stack} ({ws.logical_id}): {ws.callback_url}", file=out)
    for fired in cloud.schedules.targets if cloud.schedules else ():
        every = f"every {fired.period:g} s" + ("" if fired.period == cloud.schedule_seconds else f", {fired.expression}")
        print(f"  Schedule {fired.logical_id} ({fired.stack}): {every} -> {fired.function}", file=out)
    print(f"  moto (every other AWS API): {cloud.moto.endpoint_url if cloud.moto else '-'}", file=out)
    print(f"  Ready file: {ready_file}    Function logs: {cloud.log_dir}/", file=out)
    if cloud.warnings:
        print("\n  Not emulated locally:", file=out)
        for warning in cloud.warnings:
            print(f"  - {warning}", file=out)
    if cloud.notices:
        print("\n  Skipped locally (deployed in the cloud):", file=out)
        for notice in cloud.notices:
            print(f"  - {notice}", file=out)


def console_site() -> Path | None:
    """The operator console's static files, shipped in the construct library (found without importing it: that
    would load aws-cdk-lib); ``None`` when the library is not installed."""
    from importlib.util import find_spec

    spec = find_spec("agentrail_constructs")
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    site = Path(locations[0]) / "console_site" if locations else None
    return site if site is not None and (site / "index.html").is_file() else None


def _run_tour(cloud: object, out: TextIO) -> bool:
    from agentrail_cli.client import AgentApiClient, ApiKeyAuth, IamAuth
    from agentrail_cli.tour import TOURS, run_tour
    from agentrail_local.cloud import LocalCloud

    assert isinstance(cloud, LocalCloud)
    principal = cloud.principals[0]
    signers = {p.name: IamAuth.from_keys(p.access_key_id, p.secret_access_key) for p in cloud.principals}
    passed = total = 0
    toured = 0
    started = time.perf_counter()
    for endpoint in cloud.endpoints():
        steps = TOURS.get(endpoint.pattern or "")
        if not steps:
            print(f"\n(no tour for {endpoint.pattern or endpoint.stack} yet)", file=out)
            continue
        toured += 1
        auth: ApiKeyAuth | IamAuth
        if endpoint.api_key:
            auth = ApiKeyAuth(endpoint.api_key)
            how = "API key"
        else:
            auth = signers[principal.name]
            how = f"SigV4, signed as {principal.name}"
        with AgentApiClient(endpoint.url, auth=auth) as client:
            outcomes = run_tour(
                client,
                steps,
                out=out,
                title=f"Tour of the {endpoint.pattern} agent at {endpoint.url} ({how})",
                principals=signers,
            )
        total += len(outcomes)
        passed += sum(o.passed for o in outcomes)
    if toured == 0:
        print("\nNo API in this app has a tour yet; nothing to check.", file=out)
        return True
    verdict = "all passed" if passed == total else f"{total - passed} failed"
    print(f"Tour finished: {passed}/{total} steps passed ({verdict}) in {time.perf_counter() - started:.1f} s.", file=out)
    print(f"Function logs (JSON, with correlation ids): {cloud.log_dir}/", file=out)
    print("Keep it running with `agentrail local`, then call it with any SigV4 client.", file=out)
    return passed == total


def _synthesized_assembly(args: argparse.Namespace, state_dir: Path, out: TextIO) -> Path:
    """``<state-dir>/cdk.out``, synthesized now unless the last synth there read exactly the same inputs.

    Raises
    ------
    SynthError
        When there is no project, or ``cdk synth`` fails.
    """
    return local_assembly(state_dir, patterns=args.patterns, pairs=args.context, force=args.synth, out=out)


def run_local(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from agentrail_cli.reload import HotReload
    from agentrail_local.awslambda.interpreters import LocalPythonError
    from agentrail_local.cloud import LocalCloud
    from agentrail_local.cloudformation.assembly import AssemblyError
    from agentrail_local.cloudformation.resources.base import TemplateError

    state_dir = _state_dir(args)
    ready_file = (args.ready_file or state_dir / "local.json").resolve()
    if args.assembly is not None:
        assembly = args.assembly
    else:
        try:
            assembly = _synthesized_assembly(args, state_dir, out)
        except SynthError as error:
            print(f"agentrail local: {error}", file=sys.stderr)
            return 2
    started = time.perf_counter()

    def console(line: str) -> None:
        print(line, file=out, flush=True)

    serving = not args.tour
    reload: HotReload | None = None
    stop = _stop_on_signal() if serving else threading.Event()
    try:
        cloud = LocalCloud(
            assembly,
            port=args.port,
            state_dir=state_dir,
            concurrency=args.concurrency,
            schedule_seconds=args.schedule_seconds,
            function_console=console if (serving or args.show_logs) else None,
            request_console=console if serving else None,
            warn=lambda _: None,  # listed with the endpoints instead, once everything runs
            notice=lambda _: None,  # likewise
            console_site=console_site(),
        )
        cloud.start()
        if stop.is_set():
            cloud.stop()
            return 0
    except (TemplateError, AssemblyError, LocalPythonError, OSError, ValueError) as error:  # ValueError: a bad schedule period
        hint = " (pass --port 0 for free ports, or another --port)" if getattr(error, "errno", None) == errno.EADDRINUSE else ""
        print(f"agentrail local: could not start: {error}{hint}", file=sys.stderr)
        return 2
    try:
        cloud.write_ready_file(ready_file)
        _print_endpoints(cloud, out, seconds=time.perf_counter() - started, ready_file=ready_file)
        if args.tour:
            return 0 if _run_tour(cloud, out) else 1
        if args.assembly is None and not args.no_reload:
            reload = HotReload(
                cloud,
                find_project_dir(),
                state_dir,
                say=console,
                patterns=args.patterns,
                context=local_context(args.context),
                ready_file=ready_file,
            ).start()
        print("\nServing; press Ctrl-C to stop.\n", file=out, flush=True)
        while not stop.wait(0.5):
            pass
        print("\nStopping.", file=out)
        return 0
    finally:
        if reload is not None:
            reload.stop()
        cloud.stop()
        ready_file.unlink(missing_ok=True)


def _stop_on_signal() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM; installed before start-up so an early signal still stops cleanly."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentrail`` console script."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ModuleNotFoundError as error:
        message = missing_extra(error, args.command)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "local":
        if args.assembly is not None and (args.context or args.patterns or args.synth):
            args.usage_error(
                "--assembly runs an existing cloud assembly as it is; "
                "-c/--context and --patterns apply only when agentrail local synthesizes the app, and so does --synth"
            )
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(errors="replace")  # the tour prints ✓, → and €
        return run_local(args)
    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
