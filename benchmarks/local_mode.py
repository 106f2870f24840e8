"""``agentrail local``: start-up with nothing changed since the last synth, and hot reload of an edited tool.

Baseline: a bare moto server started in a fresh process until it answers one request
(``ThreadedMotoServer``, what local mode itself starts first), measured in the same run.

- Start-up: ``agentrail local`` of the repository's app (every pattern) from the repository root, its state
  folder in the run's work folder. A first start synthesizes (reported in the notes); each measured start
  then reuses that assembly, from the process start to the first 200 (``POST /invoke`` of the stateless
  API, signed). Target: < 20 s.
- Hot reload: a scaffold project in the work folder (one ``StatefulAgent`` whose agent code is the
  project's ``agent/``) served by ``agentrail local``; the tool's answer is rewritten, then the same session
  message is sent every 50 ms until the new answer arrives; from the write to that answer. Target: < 2 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from agentrail_cli.client import AgentApiClient
from agentrail_cli.scaffold import scaffold_tool, write_scaffold
from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.lambda_process import PYTHON
from benchmarks.report import REPO_ROOT, Figure, Result, Target, median

__all__ = ["BENCHMARK"]

BASELINE = "bare moto server start in a fresh process, to its first answer (ThreadedMotoServer)"
READY_TIMEOUT_S = 300.0
_MOTO_START = """
import time, urllib.request
started = time.perf_counter()
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
urllib.request.urlopen(f"http://{host}:{port}/moto-api/data.json").read()
print(time.perf_counter() - started)
server.stop()
"""


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(REPO_ROOT / "node_modules" / ".bin"), str(Path(PYTHON).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _moto_start() -> float:
    finished = subprocess.run([PYTHON, "-c", _MOTO_START], capture_output=True, text=True, timeout=120, check=True)
    return float(finished.stdout.strip().splitlines()[-1])


class _Local:
    """One ``agentrail local`` process, started in ``project`` with its state in ``state``."""

    def __init__(self, project: Path, state: Path, *extra: str) -> None:
        self.ready = state / "ready.json"
        self.log = state / f"console-{time.monotonic_ns()}.log"
        state.mkdir(parents=True, exist_ok=True)
        command = [PYTHON, "-m", "agentrail_cli", "local", "--port", "0", "--state-dir", str(state)]
        command += ["--ready-file", str(self.ready), *extra]
        self.started = time.perf_counter()
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(command, cwd=project, stdout=sink, stderr=subprocess.STDOUT, env=_environment())
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready.is_file():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"agentrail local did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def client(self, pattern: str) -> AgentApiClient:
        return AgentApiClient.from_ready_file(self.ready, pattern=pattern, timeout=60)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log.read_text(errors="replace")


def _start_to_first_200(state: Path) -> tuple[float, str]:
    local = _Local(REPO_ROOT, state, "--no-reload")
    try:
        with local.client("stateless") as api:
            answer = api.request("POST", "/invoke", json={"message": "hello"})
        if answer.status_code != 200:
            raise RuntimeError(f"POST /invoke answered {answer.status_code}: {answer.text[:500]}")
        return time.perf_counter() - local.started, local.stop()
    except BaseException:
        local.stop()
        raise


def _reload_seconds(context: RunContext, repetitions: int) -> list[float]:
    flags = {k: v for k, v in json.loads((REPO_ROOT / "cdk.json").read_text())["context"].items() if k.startswith("@")}
    project = write_scaffold(context.workdir / "scaffold", price="0 EUR", feature_flags=flags)
    local = _Local(project, project / ".agentrail")
    samples = []
    try:
        with local.client("stateful") as api:
            session = api.request("POST", "/sessions", json={}).json()["session_id"]

            def ask() -> str:
                reply = api.request("POST", f"/sessions/{session}/messages", json={"message": "What is the price of tea?"})
                return str(reply.json().get("answer", reply.text))

            ask()
            for index in range(1, repetitions + 1):
                wanted = f"{index} EUR"
                (project / "agent" / "shop.py").write_text(scaffold_tool(wanted))
                written = time.perf_counter()
                while wanted not in ask():
                    if time.perf_counter() - written > 60:
                        raise RuntimeError(f"the edit was not live after 60 s: {local.log.read_text(errors='replace')[-2000:]}")
                    time.sleep(0.05)
                samples.append(time.perf_counter() - written)
                context.progress(f"hot reload {index}/{repetitions}: {samples[-1]:.2f} s")
                time.sleep(1.0)  # let the recycled environments settle before the next edit
    finally:
        local.stop()
    return samples


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Both figures and the moto baseline; see the module docstring."""
    repetitions = repetitions or 3
    state = context.workdir / "local-state"
    first, log = _start_to_first_200(state)
    context.progress(f"first start (synthesizes): {first:.1f} s")
    starts, motos = [], []
    for index in range(repetitions):
        motos.append(_moto_start())
        seconds, log = _start_to_first_200(state)
        if "Reusing the synthesized assembly" not in log:
            raise RuntimeError(f"start {index + 1} synthesized again:\n{log[-2000:]}")
        starts.append(seconds)
        context.progress(f"start-up {index + 1}/{repetitions}: {seconds:.1f} s (moto alone {motos[-1]:.2f} s)")
    reloads = _reload_seconds(context, max(repetitions, 3))
    moto = median(motos)
    return Figure(
        key="local_mode",
        title="agentrail local: start-up with nothing changed, and hot reload",
        results=[
            Result(
                "agentrail local start-up to the first 200, nothing changed (every pattern)",
                median(starts),
                "s",
                BASELINE,
                moto,
                target=Target(on="value", op="<", limit=20.0),
                details={"samples_s": [round(s, 2) for s in starts], "baseline_samples_s": [round(s, 3) for s in motos]},
            ),
            Result(
                "hot reload: an edited tool's new answer served",
                median(reloads),
                "s",
                BASELINE,
                moto,
                target=Target(on="value", op="<", limit=2.0),
                details={"samples_s": [round(s, 3) for s in reloads]},
            ),
        ],
        notes=[
            f"Median of {repetitions} starts (SIGTERM between them) and {len(reloads)} edits; the baseline is the median "
            "of one bare moto start before each start-up.",
            f"The first start, which synthesized the app (bundling caches warm), took {first:.1f} s to the first 200.",
            "Start-up runs with --no-reload; the hot-reload project runs with it, as `agentrail local` does by default.",
        ],
    )


BENCHMARK = Benchmark(key="local_mode", title="agentrail local", run=run, repetitions=3, quick_repetitions=1)
