"""The batch lane end to end: ``agentrail local`` serving a project whose async agent (the demo's summarizer, no tools)
has a batch lane, its schedule fired every second (``--schedule-seconds 1``). Twenty tasks submitted over HTTP with
``"lane": "batch"`` are flushed as one job (on the local model, over the lane's bucket in moto's S3), complete, and
fire their signed webhooks at a receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agentrail_runtime.signatures import SIGNATURE_HEADER, verify

pytestmark = pytest.mark.slow

TASKS = 20
#: The schedule fires every second; a job is flushed on one tick and collected on a later one.
DEADLINE_SECONDS = 90
_APP = """\
import aws_cdk as cdk
from agentrail_constructs import AgentFunctionOptions, AsyncAgentStack, AsyncOptions, BatchLaneOptions

app = cdk.App()
AsyncAgentStack(
    app,
    "BatchAgent",
    function_options=AgentFunctionOptions(agent_definition="agentrail_runtime.demo:batch_definition"),
    options=AsyncOptions(
        allow_insecure_callbacks=True,
        batch_lane=BatchLaneOptions(flush_size=%d, check_every=cdk.Duration.minutes(1), max_age=cdk.Duration.hours(1)),
    ),
    deployment_options=None,
)
app.synth()
"""


class Receiver:
    """A webhook endpoint on 127.0.0.1: keeps each request's headers and body, answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tasks"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module")
def local(start_local_mode: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Any:
    project = tmp_path_factory.mktemp("batch-project")
    flags = {k: v for k, v in json.loads((repo_root / "cdk.json").read_text())["context"].items() if k.startswith("@")}
    (project / "app.py").write_text(_APP % TASKS)
    (project / "cdk.json").write_text(json.dumps({"app": "python3 app.py", "context": flags}, indent=2))
    return start_local_mode(
        "async",
        project=project,
        state_dir=tmp_path_factory.mktemp("batch-state"),
        extra_args=("--schedule-seconds", "1"),
    )


def test_twenty_batch_tasks_are_flushed_as_one_job_complete_and_fire_their_webhooks(local: Any, receiver: Receiver) -> None:
    with local.client("async") as tasks:
        key = tasks.request("GET", "/webhooks/secret").json()["secret"].encode()
        ids = []
        for n in range(TASKS):
            response = tasks.request(
                "POST",
                "/tasks",
                json={"message": f"Summarize ticket {n}: the invoice is wrong", "lane": "batch", "callback_url": receiver.url},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["task_id"])

        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(receiver.requests) < TASKS and time.monotonic() < deadline:
            time.sleep(0.5)
        finished = [tasks.request("GET", f"/tasks/{task_id}").json() for task_id in ids]

    assert len(receiver.requests) == TASKS, local.console_output()[-3000:]
    assert {task["status"] for task in finished} == {"succeeded"}
    assert all(task["lane"] == "batch" and task["result"]["answer"] for task in finished)
    assert all(task["steps"] == 1 and task["usage"]["output_tokens"] > 0 for task in finished)
    jobs = {task["batch_job"]["job_arn"] for task in finished}
    assert len(jobs) == 1  # one job for the twenty
    [job] = jobs
    for task in finished:
        assert task["batch_job"]["answer_by"] - task["batch_job"]["submitted_at"] == 24 * 3600

    # Each webhook is signed with the caller's key, and names a task of the job once.
    delivered = []
    for headers, body in receiver.requests:
        verify(key, headers.get(SIGNATURE_HEADER), body, now=int(time.time()))
        delivered.append(json.loads(body)["task_id"])
    assert sorted(delivered) == sorted(ids)

    # The job's input and output files (the messages and answers) went from the lane's bucket once collected.
    s3 = local.aws("s3")
    [bucket] = [b["Name"] for b in s3.list_buckets()["Buckets"] if "batchlanebucket" in b["Name"].lower()]
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert job.rsplit("/", 1)[1].startswith("agentrail-")


def test_a_batch_task_of_an_unknown_lane_or_a_workflow_type_is_refused_with_one_sentence(local: Any) -> None:
    with local.client("async") as tasks:
        unknown = tasks.request("POST", "/tasks", json={"message": "Summarize: hi", "lane": "overnight"})
        workflow = tasks.request("POST", "/tasks", json={"message": "Summarize: hi", "lane": "batch", "task_type": "long"})

    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_request")
    assert (workflow.status_code, workflow.json()["error"]) == (400, "batch_lane_refused")
    assert workflow.json()["message"] == (
        "Task type long runs as a workflow; the batch lane takes task types served by the queue."
    )
