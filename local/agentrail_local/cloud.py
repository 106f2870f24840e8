"""LocalCloud: moto, the deployed stacks, the functions' execution environments and the API gateways, started and stopped together."""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from agentrail_local.account import ACCOUNT_ID, REGION
from agentrail_local.apigateway.auth import DEFAULT_PRINCIPALS
from agentrail_local.apigateway.model import RestApi, rest_apis
from agentrail_local.apigateway.server import ApiEndpoint, LocalApiGateway
from agentrail_local.apigateway.websocket import websocket_apis
from agentrail_local.apigateway.websocket_gateways import WebSocketEndpoint, WebSocketGateways
from agentrail_local.awslambda.definitions import DEFAULT_ACCOUNT_CONCURRENCY, HOST_BUILT_LAYER_KINDS
from agentrail_local.awslambda.environments import ExecutionEnvironments
from agentrail_local.awslambda.event_sources import SqsPoller, start_pollers
from agentrail_local.awslambda.live_code import LiveCode
from agentrail_local.awslambda.moto_seam import MotoClients, MotoServer, install_lambda_seam, remove_lambda_seam
from agentrail_local.awslambda.observers import POLLER_APP_ID
from agentrail_local.awslambda.schedules import ScheduleRunner, schedule_period, start_schedules
from agentrail_local.cloudformation.assembly import CloudAssembly
from agentrail_local.cloudformation.deployer import StackDeployer, StackDeployment
from agentrail_local.cloudformation.redeploy import AppliedChange, redeploy_stacks
from agentrail_local.console import Console, print_notice, print_warning
from agentrail_local.metering import CallMeter
from agentrail_local.running_changes import apply_to_functions, gateways_after


class LocalCloud:
    """A synthesized CDK app running on this machine, without an AWS account or Docker.

    Usable as a context manager. One per process: moto keeps its state in module globals.

    Parameters
    ----------
    assembly:
        A ``cdk.out`` folder or a loaded :class:`CloudAssembly`.
    port:
        Port of the first REST API; the next APIs take the following ports, WebSocket APIs ``port + 50`` on (each
        with its @connections API on the next port). 0 picks free ports. Default: 3000.
    state_dir:
        Logs go to ``<state_dir>/logs``, extracted assets to ``<state_dir>/work``. Default: ``.agentrail``.
    function_console:
        Receives every function log line prefixed with its logical id. Default: none (log files only).
    request_console:
        Receives one line per API request. Default: none.
    warn:
        Receives deployment warnings (skipped resource types, a function's Python or packages that differ
        from the cloud's) as they happen; they are also kept in :attr:`warnings`. Default: printed to stderr.
    notice:
        Receives one line per stack and resource type deployed as a placeholder on purpose (CloudWatch alarms and
        dashboards: local mode has no CloudWatch to run them), naming each resource; they are also kept in
        :attr:`notices`, and are not warnings. Default: printed to stderr.
    stacks:
        Names of the stacks to deploy. Default: all.
    prewarm:
        Start one execution environment per API function at start-up. Default: true.
    python:
        The interpreter of every function (a path or a command). Default: ``$AGENTRAIL_LOCAL_PYTHON``, else the
        template runtime's ``pythonX.Y`` from PATH or pyenv, else this interpreter (with a warning).
    cache_dir:
        Where the dependencies layer's copies for this machine are kept. Default: ``$AGENTRAIL_CACHE_DIR``,
        else ``~/.cache/agentrail``.
    concurrency:
        The account's concurrency pool: executions at once of all functions without reserved concurrency
        (each one a worker process, started when needed). Default: 32.
    routing:
        Draws the version of each call through a weighted alias; seed it for a repeatable split. Default: unseeded.
    console_site:
        The operator console's static files (``agentrail_constructs/console_site``): every REST API serves the console
        at ``/console/`` on its port, signed in as a local principal. Default: no console.
    meter:
        Counts what the workload uses, to price it (see :mod:`agentrail_local.metering`). Default: none, nothing counted.
    schedule_seconds:
        Fire every ``rate(...)`` schedule (EventBridge Scheduler schedules and scheduled rules with Lambda targets, see
        :mod:`agentrail_local.awslambda.schedules`) this many seconds apart instead of at its own rate.
        Default: ``$AGENTRAIL_LOCAL_SCHEDULE_SECONDS``, else each schedule's rate.

    Every API and moto listen on 127.0.0.1; callers sign with the keys of :attr:`principals` (the local
    principals). The SQS event source mappings always run (poll, invoke, delete what succeeded).
    """

    def __init__(
        self,
        assembly: CloudAssembly | str | Path,
        *,
        port: int = 3000,
        state_dir: str | Path = ".agentrail",
        function_console: Console | None = None,
        request_console: Console | None = None,
        warn: Console | None = None,
        notice: Console | None = None,
        stacks: Iterable[str] | None = None,
        prewarm: bool = True,
        python: str | None = None,
        cache_dir: str | Path | None = None,
        concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY,
        routing: random.Random | None = None,
        console_site: str | Path | None = None,
        meter: CallMeter | None = None,
        schedule_seconds: float | None = None,
    ) -> None:
        self.assembly = assembly if isinstance(assembly, CloudAssembly) else CloudAssembly.load(assembly)
        self.port = port
        self.state_dir = Path(state_dir).resolve()
        self.log_dir = self.state_dir / "logs"
        self.principals = DEFAULT_PRINCIPALS
        self._function_console = function_console
        self._request_console = request_console
        self.warnings: list[str] = []
        self._warn_to = warn or print_warning
        self.notices: list[str] = []
        self._notice_to = notice or print_notice
        self._stack_names = set(stacks) if stacks is not None else None
        self._prewarm = prewarm
        self._python = python
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.concurrency = concurrency
        self._routing = routing
        self._console_site = Path(console_site) if console_site is not None else None
        self.meter = meter
        self.pollers: list[SqsPoller] = []
        self.schedule_seconds = schedule_period(
            schedule_seconds
        )  # checked now: a bad $AGENTRAIL_LOCAL_SCHEDULE_SECONDS fails before moto starts
        self.schedules: ScheduleRunner | None = None
        self.moto: MotoServer | None = None
        self.clients: MotoClients | None = None
        self.environments: ExecutionEnvironments | None = None
        self.deployments: list[StackDeployment] = []
        self.gateways: list[LocalApiGateway] = []
        self.websockets: WebSocketGateways | None = None
        self._live_code: LiveCode | None = None
        self._running_copies: dict[Path, Path] = {}
        self._live_generation = 0
        # One change at a time: a code reload and a redeploy both replace what functions run.
        self._changing = threading.RLock()

    # -- lifecycle ------------------------------------------------------------------

    def _serve_api(self, api: RestApi, port: int) -> LocalApiGateway:
        """Serve ``api`` on ``port`` (0: a free one), with its operator console when local mode has the page."""
        assert self.environments is not None
        return LocalApiGateway(
            api,
            self.environments,
            port=port,
            principals=self.principals,
            access_log=self.log_dir / f"{api.logical_id}.access.log",
            console=self._request_console,
            console_site=self._console_site,
            traffic=self.meter,
        ).start()

    def start(self) -> LocalCloud:
        """Start moto, deploy the stacks, start the gateways.

        Raises
        ------
        TemplateError
            When a template uses something local mode cannot deploy (everything started is stopped again).
        LocalPythonError
            When the named interpreter does not run, or the dependencies layer cannot be installed for a function's.
        """
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.moto = MotoServer(middleware=self.meter.middleware if self.meter else None).start()
        self.clients = MotoClients(self.moto.endpoint_url)
        self.environments = ExecutionEnvironments(
            moto_endpoint=self.moto.endpoint_url,
            log_dir=self.log_dir,
            console=self._function_console,
            python=self._python,
            cache_dir=self._cache_dir,
            warn=self._warn,
            concurrency=self.concurrency,
            routing=self._routing,
            observer=self.meter,
        )
        install_lambda_seam(self.environments)
        exports: dict[str, Any] = {}
        outputs: dict[str, dict[str, Any]] = {}
        for stack in self.assembly.stacks:
            if self._stack_names is not None and stack.stack_name not in self._stack_names:
                continue
            deployment = StackDeployer(
                stack,
                clients=self.clients,
                work_dir=self.state_dir / "work",
                exports=exports,
                stack_outputs=outputs,
                warn=self._warn,
            ).deploy()
            exports.update(deployment.exports)
            outputs[deployment.stack_name] = deployment.outputs
            self._register_functions(deployment)
            self.deployments.append(deployment)
            for line in deployment.notices:
                self.notices.append(line)
                self._notice_to(line)
        for index, api in enumerate(rest_apis(self.deployments)):
            port = 0 if self.port == 0 else self.port + index
            self.gateways.append(self._serve_api(api, port))
        self.websockets = WebSocketGateways(
            self.environments, port=self.port, principals=self.principals, log_dir=self.log_dir, console=self._request_console
        )
        self.websockets.traffic = self.meter
        self.websockets.start(websocket_apis(self.deployments))
        self.websockets.route_urls(self.deployments)
        if self._prewarm:
            self.environments.prewarm(self._integration_targets())
        self._start_pollers()
        self._start_schedules()
        if self.meter is not None:
            self.meter.watch(self.moto.endpoint_url, self.deployments)

    def _start_pollers(self) -> None:
        assert self.moto is not None and self.environments is not None
        sqs = MotoClients(self.moto.endpoint_url, app_id=POLLER_APP_ID)("sqs")  # the meter counts the pollers' calls apart
        self.pollers = start_pollers(
            self.deployments, sqs=sqs, environments=self.environments, console=self._request_console, warn=self._warn
        )

    def _start_schedules(self) -> None:
        assert self.clients is not None and self.environments is not None
        self.schedules = start_schedules(
            self.deployments,
            environments=self.environments,
            sqs=self.clients("sqs"),
            period=self.schedule_seconds,
            console=self._request_console,
            warn=self._warn,
        )

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self._warn_to(message)

    def _register_functions(self, deployment: StackDeployment) -> None:
        assert self.environments is not None
        for resource in deployment.resources.values():
            if "function" in resource.local:
                self.environments.add_function(resource.local["function"])
        for resource in deployment.resources.values():
            if resource.type == "AWS::Lambda::Version":
                self.environments.add_version(resource.local["function_name"], resource.local["version"])
            elif resource.type == "AWS::Lambda::Alias":
                local = resource.local
                self.environments.add_alias(local["function_name"], local["alias"], local["version"], local.get("weights"))

    def _integration_targets(self) -> list[str]:
        targets: list[str] = []
        for gateway in self.gateways:
            for resource in gateway.api.root.walk():
                for method in resource.methods.values():
                    target = method.integration.function_target
                    if target and target not in targets and self.environments and self.environments.knows(target):
                        targets.append(target)
        websockets = self.websockets.function_targets() if self.websockets else []
        return targets + [t for t in websockets if t not in targets and self.environments and self.environments.knows(t)]

    # -- hot reload --------------------------------------------------------------------

    def watch_code(self, project: str | Path) -> LiveCode:
        """Find the source folder in ``project`` of each function's code and layers, for :meth:`reload_code`."""
        live_dir = self.state_dir / "live"
        shutil.rmtree(live_dir, ignore_errors=True)
        self._live_code = LiveCode(Path(project), self.running_paths(editable=True), live_dir)
        self._running_copies = {}
        return self._live_code

    @property
    def live_code(self) -> LiveCode | None:
        """The code sources found by :meth:`watch_code`, if it ran."""
        return self._live_code

    def reload_code(self, changed: Iterable[str | Path]) -> list[str]:
        """Run the functions whose code or layer source holds a ``changed`` file from a fresh copy of it.

        Warm execution environments of those functions are recycled (busy ones when they finish) and API
        functions are warmed again; moto's state is untouched. Returns the names of the functions reloaded
        (none when no changed file is the source of running code). Needs :meth:`watch_code` first.
        """
        assert self.environments is not None and self._live_code is not None
        with self._changing:
            affected = self._live_code.affected(Path(p).resolve() for p in changed)
            if not affected:
                return []
            copies = self._live_code.refresh(affected)
            running = {self._running_copies.get(asset, asset): copy for asset, copy in copies.items()}
            self._running_copies.update(copies)
            reloaded = self.environments.replace_code(running)
        if self._prewarm:
            names = set(reloaded)
            self.environments.prewarm(t for t in self._integration_targets() if self.environments.definition(t).name in names)
        return reloaded

    # -- redeploy ------------------------------------------------------------------------

    def redeploy(self, assembly: CloudAssembly | str | Path) -> list[AppliedChange]:
        """Bring the running deployment to a new synth of the app, keeping moto's state.

        Per stack, what is new is created, what changed is updated in place where local mode can, and
        what went is deleted (see :mod:`agentrail_local.cloudformation.redeploy`, which also says what is
        kept instead of replaced). Then the functions run with their new definitions (warm environments
        recycled), the APIs whose routes or settings changed are served anew on the same port, and the
        SQS pollers follow the event source mappings. Returns every change, ``not applied`` ones included.
        """
        assert self.clients is not None and self.environments is not None
        new_assembly = assembly if isinstance(assembly, CloudAssembly) else CloudAssembly.load(assembly)
        with self._changing:
            stacks = [s for s in new_assembly.stacks if self._stack_names is None or s.stack_name in self._stack_names]
            deployments, changes = redeploy_stacks(stacks, self.deployments, self.clients, self.state_dir / "work", self._warn)
            before = {d.stack_name: d for d in self.deployments}
            self.deployments = deployments
            self.assembly = new_assembly
            self.notices = [line for d in deployments for line in d.notices]
            touched = apply_to_functions(self.environments, changes, before, self.deployments)
            self.gateways = gateways_after(
                changes, self.gateways, rest_apis(self.deployments), self._serve_api, first_port=self.port
            )
            if self.websockets is not None:
                self.websockets.after_redeploy(changes, websocket_apis(self.deployments))
                self.websockets.route_urls(self.deployments)
            if any(
                c.type in ("AWS::Lambda::EventSourceMapping", "AWS::SQS::Queue") for c in changes if c.action != "not applied"
            ):
                for poller in self.pollers:
                    poller.stop()
                self._start_pollers()
            if self.schedules is not None and any(c.action != "not applied" for c in changes):
                self.schedules.stop()  # a schedule, its target or the function behind it may have changed
                self._start_schedules()
            if self.meter is not None and self.moto is not None:
                self.meter.watch(self.moto.endpoint_url, self.deployments)
            if self._live_code is not None and touched:
                self._watch_again()
            if self._prewarm and touched:
                self.environments.prewarm(
                    t for t in self._integration_targets() if self.environments.definition(t).name in touched
                )
        return changes

    def _watch_again(self) -> None:
        """Find the sources of what functions run now; earlier live copies stay, since functions may run from them."""
        assert self._live_code is not None
        self._live_generation += 1
        live_dir = self.state_dir / "live" / f"after-redeploy-{self._live_generation}"
        self._live_code = LiveCode(self._live_code.project, self.running_paths(editable=True), live_dir)
        self._running_copies = {}

    def running_paths(self, *, editable: bool = False) -> list[Path]:
        """Every code and layer folder that functions run from now (``editable``: without host-built dependencies)."""
        assert self.environments is not None
        functions = self.environments.functions
        paths = [d.code_dir for d in functions]
        paths += [
            layer.path
            for d in functions
            for layer in d.layers
            if layer.path is not None and not (editable and layer.kind in HOST_BUILT_LAYER_KINDS)
        ]
        return paths

    def stop(self) -> None:
        """Stop the schedules, pollers and gateways, kill every execution environment and stop moto. Safe to call twice."""
        if self.schedules is not None:
            self.schedules.stop()
            self.schedules = None
        for poller in self.pollers:
            poller.stop()
        self.pollers = []
        for gateway in self.gateways:
            gateway.stop()
        self.gateways = []
        if self.websockets is not None:
            self.websockets.stop()
        if self.environments is not None:
            remove_lambda_seam(self.environments)
            self.environments.close()
            self.environments = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        if self.meter is not None:
            self.meter.close()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- what is running ---------------------------------------------------------------

    @property
    def apis(self) -> list[RestApi]:
        return [g.api for g in self.gateways]

    def endpoints(self) -> list[ApiEndpoint]:
        """Every served REST API, in the order of the assembly's stacks."""
        found = []
        for gateway in self.gateways:
            api = gateway.api
            key = next(iter(api.api_keys.values()), None)
            found.append(
                ApiEndpoint(
                    stack=api.stack_name,
                    logical_id=api.logical_id,
                    pattern=api.pattern,
                    url=gateway.url,
                    stage=api.default_stage.name,
                    auth=api.auth_kind,
                    routes=tuple(api.routes()),
                    api_key=key.value if key else None,
                    api_key_id=key.id if key else None,
                    console_url=gateway.console_url,
                )
            )
        return found

    def websocket_endpoints(self) -> list[WebSocketEndpoint]:
        """Every served WebSocket API (``url`` for clients, ``callback_url`` for @connections), in the stacks' order."""
        return self.websockets.endpoints() if self.websockets else []

    def endpoint(self, *, pattern: str | None = None, stack: str | None = None) -> ApiEndpoint:
        """The one API of ``pattern`` (the ``agentrail:pattern`` tag) or ``stack``.

        Raises
        ------
        LookupError
            When none or several match.
        """
        matches = [
            e for e in self.endpoints() if (pattern is None or e.pattern == pattern) and (stack is None or e.stack == stack)
        ]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} APIs match pattern={pattern!r} stack={stack!r}")
        return matches[0]

    def function_log(self, logical_id: str) -> Path:
        """The log file of the function with this logical id."""
        assert self.environments is not None
        for definition in self.environments.functions:
            if definition.logical_id == logical_id:
                return self.environments.log_file(definition.name)
        raise LookupError(f"no function with logical id {logical_id}")

    def ready_document(self) -> dict[str, Any]:
        """What clients need to reach local mode: moto, credentials, each API, each function's log and each schedule fired."""
        assert self.moto is not None and self.environments is not None
        return {
            "version": 1,
            "pid": os.getpid(),
            "region": REGION,
            "account_id": ACCOUNT_ID,
            "moto_endpoint": self.moto.endpoint_url,
            "principals": [p.as_dict() for p in self.principals],
            "apis": [e.as_dict() for e in self.endpoints()],
            "websocket_apis": [e.as_dict() for e in self.websocket_endpoints()],
            "stacks": {d.stack_name: {k: str(v) for k, v in d.outputs.items()} for d in self.deployments},
            "functions": [
                {
                    "stack": d.stack_name,
                    "logical_id": d.logical_id,
                    "name": d.name,
                    "log_file": str(self.environments.log_file(d.name)),
                }
                for d in self.environments.functions
            ],
            "schedules": [t.as_dict() for t in (self.schedules.targets if self.schedules else ())],
            "log_dir": str(self.log_dir),
        }

    def write_ready_file(self, path: str | Path) -> Path:
        """Write :meth:`ready_document` atomically, so a reader never sees half a file."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        staging.write_text(json.dumps(self.ready_document(), indent=2) + "\n")
        staging.replace(target)
        return target


__all__ = ["ApiEndpoint", "LocalCloud", "MotoClients", "WebSocketEndpoint"]
