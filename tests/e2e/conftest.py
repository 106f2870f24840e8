"""End-to-end fixtures: synthesize with the CDK CLI once per pattern set, run ``agentrail local`` as a subprocess.

For a new pattern, a test module only needs::

    @pytest.fixture(scope="module")
    def local(start_local_mode):
        return start_local_mode("stateful")

or the one local-mode run of every pattern that the whole session shares (``all_patterns``). With
``start_local_mode("stateless", api="http")`` every pattern sits behind an HTTP API (``-c api=http``) instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from agentrail_cli.client import AgentApiClient
from agentrail_cli.synth import synthesize
from agentrail_cli.tour import FINISHED_TASK_STATES
from agentrail_local.apigateway.auth import DEFAULT_PRINCIPALS

READY_TIMEOUT_SECONDS = 120
ALL_PATTERNS = "stateless,stateful,async,multiagent,hierarchical"
APPROVER = "agentrail-approver"
OTHER = "agentrail-other"


def local_context() -> dict[str, str]:
    """The CDK context ``agentrail local`` adds to every synth: the local approver identity."""
    approver = next(p for p in DEFAULT_PRINCIPALS if p.name == APPROVER)
    return {"approvers": f"iam:{approver.user_arn}"}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Callable[..., Path]:
    """``synthesized("stateless")``: the cloud assembly of those patterns, made by ``cdk synth`` once per session,
    with the context ``agentrail local`` gives the CLI's own synth; ``api="http"`` adds ``-c api=http``, ``streaming=True``
    ``-c streaming=true``."""
    cache: dict[tuple[str, str], Path] = {}

    def assembly(patterns: str, api: str = "rest", streaming: bool = False) -> Path:
        key = (patterns, api + ("-streaming" if streaming else ""))
        if key not in cache:
            # Same folder as the integration tier's fixture, so one session synthesizes once (that fixture
            # leaves out the approvers context, which only the async stack reads).
            suffix = ("" if api == "rest" else f"-{api}") + ("-streaming" if streaming else "")
            output = tmp_path_factory.getbasetemp() / f"assembly-{patterns.replace(',', '-')}{suffix}"
            if not (output / "manifest.json").is_file():
                context = local_context() if api == "rest" else {**local_context(), "api": api}
                if streaming:
                    context["streaming"] = "true"
                synthesize(repo_root, output, patterns=patterns, context=context)
            cache[key] = output
        return cache[key]

    return assembly


def agentrail_command(*args: str) -> list[str]:
    """The ``agentrail`` CLI as this interpreter runs it (no dependency on PATH)."""
    return [sys.executable, "-m", "agentrail_cli", *args]


@pytest.fixture(scope="session")
def agentrail() -> Callable[..., list[str]]:
    """``agentrail("local", "--tour")``: the command line that runs the CLI with this interpreter."""
    return agentrail_command


@dataclass
class LocalMode:
    """A running ``agentrail local`` process and what its ready file says."""

    process: subprocess.Popen[bytes]
    ready_file: Path
    state_dir: Path
    console: Path
    ready: dict[str, Any] = field(default_factory=dict)

    def api(self, pattern: str) -> dict[str, Any]:
        return next(a for a in self.ready["apis"] if a["pattern"] == pattern)

    def client(self, pattern: str, *, principal: str | None = None) -> AgentApiClient:
        return AgentApiClient.from_ready_file(self.ready_file, pattern=pattern, principal=principal, timeout=30)

    def principal(self, name: str = "agentrail-local") -> str:
        """The principal the runtime records for the local caller ``name`` (``iam:<its user ARN>``), as
        ``client(principal=name)`` signs. Default: the default caller, ``agentrail-local``."""
        return f"iam:{next(p for p in self.ready['principals'] if p['name'] == name)['user_arn']}"

    def function_log(self, logical_id_prefix: str, *, stack: str | None = None) -> Path:
        return Path(
            next(
                f["log_file"]
                for f in self.ready["functions"]
                if f["logical_id"].startswith(logical_id_prefix) and (stack is None or f["stack"] == stack)
            )
        )

    def output(self, pattern: str, key: str) -> str:
        """A stack output of the stack that serves ``pattern``'s API."""
        return self.ready["stacks"][self.api(pattern)["stack"]][key]

    def aws(self, service: str) -> Any:
        """A boto3 client for moto, the local AWS every function talks to."""
        return boto3.client(
            service,
            endpoint_url=self.ready["moto_endpoint"],
            region_name=self.ready["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def items_naming(self, principal: str) -> list[str]:
        """Every item of every table of the served stacks that names ``principal``."""
        dynamodb = self.aws("dynamodb")
        found = []
        for table in dynamodb.list_tables()["TableNames"]:
            for page in dynamodb.get_paginator("scan").paginate(TableName=table):
                found += [f"{table}: {item}" for item in page["Items"] if principal in json.dumps(item)]
        return found

    def run_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``agentrail <args> --ready-file <this local mode's>``, as a user runs it: its exit code and text output."""
        command = agentrail_command(*args, "--ready-file", str(self.ready_file))
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    def console_output(self) -> str:
        return self.console.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="session")
def start_local_mode(
    tmp_path_factory: pytest.TempPathFactory, synthesized: Callable[..., Path], repo_root: Path
) -> Iterator[Callable[..., LocalMode]]:
    """``start_local_mode("stateless")`` starts ``agentrail local --port 0`` on that assembly and waits until it is ready.

    ``api="http"`` serves every pattern behind an HTTP API (payload 2.0) instead of a REST API: ``-c api=http``
    in the synth, whether this fixture or the CLI synthesizes.

    With ``context={"approval_timeout": "3"}`` the CLI synthesizes the app itself (``--patterns`` and ``-c``),
    from the project folder, as a developer would run it. With ``project=<folder>`` it runs in that
    project (another app than this repository's), with ``state_dir`` to share one between two starts.
    """
    started: list[LocalMode] = []

    def start(
        patterns: str,
        *,
        extra_args: Sequence[str] = (),
        context: Mapping[str, str] | None = None,
        project: Path | None = None,
        state_dir: Path | None = None,
        api: str = "rest",
    ) -> LocalMode:
        state_dir = state_dir or tmp_path_factory.mktemp(f"local-{patterns.replace(',', '-')}")
        ready_file = state_dir / "ready.json"
        console = state_dir / f"console-{len(started)}.log"
        common = ("--port", "0", "--ready-file", str(ready_file), "--state-dir", str(state_dir))
        if project is not None:
            # A project of its own (cdk.json there): the CLI synthesizes it, or reuses its last assembly.
            arguments = ("local", *common, *extra_args)
            cwd = project
        elif context is None:
            arguments = ("local", "--assembly", str(synthesized(patterns, api)), *common, *extra_args)
            cwd = state_dir
        else:
            context = {**context, "api": api} if api != "rest" else context
            pairs = [argument for key, value in context.items() for argument in ("-c", f"{key}={value}")]
            arguments = ("local", "--patterns", patterns, *pairs, *common, *extra_args)
            cwd = repo_root
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PATH": os.pathsep.join([str(repo_root / "node_modules" / ".bin"), os.environ.get("PATH", "")]),
        }
        with console.open("wb") as sink:
            process = subprocess.Popen(agentrail_command(*arguments), stdout=sink, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        local = LocalMode(process, ready_file, state_dir, console)
        started.append(local)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not ready_file.is_file():
            if process.poll() is not None:
                pytest.fail(f"agentrail local exited with {process.returncode}:\n{local.console_output()[-3000:]}")
            if time.monotonic() > deadline:
                local.stop()
                pytest.fail(f"agentrail local was not ready after {READY_TIMEOUT_SECONDS} s:\n{local.console_output()[-3000:]}")
            time.sleep(0.1)
        local.ready = json.loads(ready_file.read_text())
        return local

    yield start
    for local in started:
        local.stop()


@pytest.fixture(scope="session")
def all_patterns(start_local_mode: Callable[..., LocalMode]) -> LocalMode:
    """One ``agentrail local`` run of every pattern, shared by the pattern modules of the session."""
    return start_local_mode(ALL_PATTERNS)


def _wait_for_task(
    client: AgentApiClient, task_id: str, *, until: Collection[str] = FINISHED_TASK_STATES, seconds: float = 30.0
) -> dict[str, Any]:
    """``GET /tasks/{id}`` every 0.1 s until its status is in ``until``; fails the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        response = client.request("GET", f"/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task = response.json()
        if task["status"] in until:
            return task
        if time.monotonic() > deadline:
            pytest.fail(f"task {task_id} is still {task['status']} after {seconds} s")
        time.sleep(0.1)


def _wait_for_execution(sfn: Any, execution_arn: str, *, seconds: float = 30.0) -> dict[str, Any]:
    """``DescribeExecution`` every 0.1 s until the execution has left RUNNING; fails the test after ``seconds``.

    A task's record is finished by the workflow's last Lambda step, a moment before the state machine
    itself moves to its final state.
    """
    deadline = time.monotonic() + seconds
    while True:
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        if time.monotonic() > deadline:
            pytest.fail(f"execution {execution_arn} is still RUNNING after {seconds} s")
        time.sleep(0.1)


def _log_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a function's log (Powertools records and the runtime's error reports)."""
    records = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


@pytest.fixture(scope="session")
def wait_for_task() -> Callable[..., dict[str, Any]]:
    """``wait_for_task(client, task_id, until={"waiting_approval"})``: poll a task until its status is in ``until``."""
    return _wait_for_task


@pytest.fixture(scope="session")
def wait_for_execution() -> Callable[..., dict[str, Any]]:
    """``wait_for_execution(sfn, execution_arn)``: poll a Step Functions execution until it has finished."""
    return _wait_for_execution


@pytest.fixture(scope="session")
def log_records() -> Callable[[Path], list[dict[str, Any]]]:
    """``log_records(path)``: the JSON records of a function's log file."""
    return _log_records


# -- shared by the pattern modules ---------------------------------------------------------------


@pytest.fixture(scope="session")
def every_pattern() -> str:
    """Every pattern of the app, as ``--patterns`` and :func:`start_local_mode` take them."""
    return ALL_PATTERNS


@pytest.fixture(scope="module")
def local(all_patterns: LocalMode) -> LocalMode:
    """The local-mode run a test module calls: the session's run of every pattern, unless the module overrides ``local``."""
    return all_patterns
