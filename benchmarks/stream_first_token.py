"""The streaming API in local mode: from ``sendMessage`` to the first ``token`` event on the socket.

``agentrail local`` serves the stateful pattern with ``-c streaming=true``; one WebSocket client (a connect ticket from
the REST API) sends the demo agent a message (one model call, no tool) and times each message from its send to the
first ``token`` event of its turn, and to its ``final`` event. Between the two lie API Gateway's route (the socket
function reserving the session's turn slot and queueing the turn), the SQS event source, the worker's session read,
the model's first words, the event log's numbered write and the post to ``@connections``.

Baseline: the same message run by ``Agent.run`` of the demo agent in this process, streamed to a sink, from the call
to its first ``token`` event, measured in the same run.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from benchmarks.benchmark import Benchmark, RunContext
from benchmarks.local_mode import _Local
from benchmarks.report import REPO_ROOT, Figure, Result, median, percentiles

__all__ = ["BENCHMARK"]

BASELINE = "Agent.run of the demo agent in this process, from the call to its first token event"
MESSAGE = "Tell me about streaming"
WAIT_S = 60.0


def _direct_first_token(count: int) -> list[float]:
    from agentrail_runtime.agent.events import TokenEvent
    from agentrail_runtime.agent.loop import Agent
    from agentrail_runtime.demo import definition
    from agentrail_runtime.models.local import LocalModel

    agent = Agent(model=LocalModel(), tools=list(definition.tools), system_prompt=str(definition.system_prompt))
    samples = []
    for _ in range(count):
        first: list[float] = []
        started = time.perf_counter()

        def sink(event: Any, started: float = started, first: list[float] = first) -> None:
            if isinstance(event, TokenEvent) and not first:
                first.append(time.perf_counter() - started)

        agent.run(MESSAGE, on_event=sink)
        samples.append(first[0] * 1000)
    return samples


def _socket_samples(local: _Local, count: int) -> tuple[list[float], list[float]]:
    from websockets.sync.client import connect

    ready = json.loads(local.ready.read_text())
    (stream,) = [api for api in ready["websocket_apis"] if api["pattern"] == "stateful"]
    firsts, finals = [], []
    with local.client("stateful") as api:
        session_id = api.request("POST", "/sessions", json={}).json()["session_id"]
        ticket = api.request("POST", f"/sessions/{session_id}/stream-ticket").json()["ticket"]
        with connect(f"{stream['url']}?{urlencode({'ticket': ticket})}", open_timeout=WAIT_S) as socket:
            for _ in range(count):
                message_id = uuid.uuid4().hex
                frame = {"action": "sendMessage", "session_id": session_id, "text": MESSAGE, "message_id": message_id}
                started = time.perf_counter()
                socket.send(json.dumps(frame))
                first = None
                while True:
                    event = json.loads(socket.recv(timeout=WAIT_S))
                    if event.get("message_id") != message_id or "event_id" not in event:
                        if event.get("type") == "error":
                            raise RuntimeError(f"the turn was refused: {event}")
                        continue
                    if event["type"] == "token" and first is None:
                        first = time.perf_counter() - started
                    if event["type"] in ("final", "error"):
                        break
                if first is None:
                    raise RuntimeError(f"the turn streamed no token: {event}")
                firsts.append(first * 1000)
                finals.append((time.perf_counter() - started) * 1000)
    return firsts, finals


def run(context: RunContext, repetitions: int | None) -> Figure:
    """Start local mode with streaming, warm it up, then measure both sides; see the module docstring."""
    count = repetitions or 30
    local = _Local(REPO_ROOT, context.workdir / "stream-state", "--no-reload", "--patterns", "stateful", "-c", "streaming=true")
    try:
        _socket_samples(local, 3)  # warm-up: every function's first invocation starts its environment
        firsts, finals = _socket_samples(local, count)
    finally:
        local.stop()
    _direct_first_token(20)
    direct = _direct_first_token(count * 10)
    base = median(direct)
    return Figure(
        key="stream_first_token",
        title="Streaming API: sendMessage to the first token, in local mode",
        results=[
            Result(
                "sendMessage to the first token event on the socket, median",
                median(firsts),
                "ms",
                BASELINE,
                base,
                details={
                    "p05_p50_p95_ms": percentiles(firsts, (5, 50, 95), digits=2),
                    "baseline_p05_p50_p95_ms": percentiles(direct, (5, 50, 95), digits=4),
                },
            ),
            Result(
                "sendMessage to the final event on the socket, median",
                median(finals),
                "ms",
                BASELINE,
                base,
                details={"p05_p50_p95_ms": percentiles(finals, (5, 50, 95), digits=2)},
            ),
        ],
        notes=[
            f"{count} messages, one after the other on one socket and one session, after 3 warm-up messages.",
            "Local mode runs each function in a worker process and moto in-process; a deployed stack adds network "
            "hops instead (API Gateway, SQS polling, DynamoDB), not measured here.",
        ],
    )


BENCHMARK = Benchmark(key="stream_first_token", title="Streaming API first token", run=run, repetitions=30, quick_repetitions=5)
