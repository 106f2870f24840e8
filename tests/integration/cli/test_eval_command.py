"""``agentrail eval`` end to end in one process: agents on the local model, datasets on disk, reports written,
exit codes; and against an HTTP API (``--url``, ``--local``) served on 127.0.0.1."""

from __future__ import annotations

import io
import json
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from agentrail_cli.main import _parser
from agentrail_local.apigateway.auth import DEFAULT_PRINCIPALS, verify_sigv4

#: The shop agent, as released: its order tool answers with the real carrier and date.
AGENT = '''
from agentrail_runtime.agent.definition import AgentDefinition
from agentrail_runtime.agent.tools import tool

ORDERS = {ORDERS}


@tool(local_patterns=[r"\\border\\s+(?P<order_id>[A-Z]-\\d{{4}})\\b"])
def lookup_order(order_id: str) -> dict:
    """Look up an order by id."""
    return {{"order_id": order_id, **ORDERS.get(order_id, {{}})}}


definition = AgentDefinition(name="shop", system_prompt="You help with orders.", tools=(lookup_order,))
'''
RELEASED = {"A-1001": {"carrier": "UPS", "eta": "2026-12-02"}, "A-1002": {"carrier": "DHL", "eta": "2026-12-05"}}
#: The candidate: a change broke the carrier of every order.
REGRESSED = {"A-1001": {"carrier": "unknown", "eta": "2026-12-02"}, "A-1002": {"carrier": "unknown", "eta": "2026-12-05"}}
CASES = [
    {"id": "carrier", "input": "Where is order A-1001?", "expect": {"contains": "UPS", "tool_called": {"name": "lookup_order", "arguments": {"order_id": "A-1001"}}}},
    {"id": "eta", "input": "When does order A-1002 arrive?", "expect": {"regex": "2026-12-05", "max_steps": 2}},
    {"id": "judged", "input": "Status of order A-1002", "expect": {"judge": {"rubric": 'It says the carrier is "DHL".'}}},
]  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the shop agent's dataset, and both versions of the agent importable."""
    (tmp_path / "cdk.json").write_text("{}")
    (tmp_path / "evals" / "shop").mkdir(parents=True)
    (tmp_path / "evals" / "shop" / "orders.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CASES))
    (tmp_path / "released_shop.py").write_text(textwrap.dedent(AGENT.format(ORDERS=RELEASED)))
    (tmp_path / "regressed_shop.py").write_text(textwrap.dedent(AGENT.format(ORDERS=REGRESSED)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*argv: str) -> tuple[int, str, str]:
    """``agentrail ARGV`` as the console script parses it: the exit code, stdout and stderr."""
    args = _parser().parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    return args.run(args, out, err), out.getvalue(), err.getvalue()


def test_the_released_agent_passes_its_dataset_and_exits_0_with_a_json_report(project: Path):
    code, printed, _ = run("eval", "--agent", "released_shop:definition", "--json", "report.json")

    assert code == 0, printed
    assert "3 cases: 3 passed, 0 failed" in printed and "Gate: passed" in printed
    report = json.loads((project / "report.json").read_text())
    assert [c["key"] for c in report["cases"]] == ["shop/orders:carrier", "shop/orders:eta", "shop/orders:judged"]
    assert report["agent_versions"]["shop"] and report["score"] == 1.0


def test_a_dataset_whose_answers_regress_fails_eval_with_exit_1_and_names_the_failing_cases(project: Path):
    code, printed, _ = run("eval", "evals/shop", "--agent", "regressed_shop:definition", "--junit", "junit.xml")

    assert code == 1
    assert "Failing cases: shop/orders:carrier, shop/orders:judged" in printed
    assert "contains 0 < 1: missing ['UPS']" in printed and "Gate: FAILED" in printed
    root = ET.parse(project / "junit.xml").getroot()
    failing = [case.get("name") for case in root.iter("testcase") if case.find("failure") is not None]
    assert failing == ["carrier", "judged"]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "2", "0")


def test_against_a_saved_baseline_a_drop_beyond_the_maximum_fails_even_when_every_threshold_is_met(project: Path):
    assert run("eval", "--agent", "released_shop:definition", "--json", "baseline.json")[0] == 0

    # The thresholds are lowered so that every case passes them: only the baseline can catch the drop.
    lowered = ("--threshold", "contains=0", "--threshold", "judge=0")
    code, printed, _ = run(
        "eval", "--agent", "regressed_shop:definition", *lowered, "--baseline", "baseline.json", "--junit", "j.xml"
    )
    same, unchanged, _ = run("eval", "--agent", "released_shop:definition", "--baseline", "baseline.json")

    assert code == 1 and same == 0
    assert "Baseline baseline.json: mean 1.0000 against 1.0000 (max regression 0.05): passed" in unchanged
    assert "3 cases: 3 passed, 0 failed" in printed
    assert "Regressed cases: shop/orders:carrier (1 -> 0.5), shop/orders:judged (1 -> 0.5)" in printed
    regression = ET.parse(project / "j.xml").getroot().find("testsuite[@name='baseline']/testcase/failure")
    assert regression is not None and "shop/orders:carrier" in (regression.text or "")


def test_a_malformed_line_exits_2_naming_the_file_and_line_and_writes_no_report(project: Path):
    with (project / "evals" / "shop" / "orders.jsonl").open("a") as dataset:
        dataset.write('{"input": "Where is order A-1001?", "expect": {"containz": "UPS"}}\n')

    code, printed, errors = run("eval", "--agent", "released_shop:definition", "--json", "report.json")

    assert code == 2 and printed == ""
    assert f"{Path('evals/shop/orders.jsonl').resolve()}:4: expect.containz: unknown scorer" in errors
    assert not (project / "report.json").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--threshold", "judge=1.5"), "--threshold judge=1.5: a threshold is in [0, 1]"),
        (("--threshold", "vibes=0.5"), "--threshold vibes: unknown scorer"),
        (("--agent", "no_such_module:definition"), "--agent no_such_module:definition: No module named"),
        (("--agent", "released_shop:definition", "--model", "gpt"), "--model:"),
        (("--agent", "released_shop:definition", "--judge-model", "bedrock:"), "--judge-model:"),
        (("--local", "--url", "http://x"), "either --local or --url"),
        (("--url", "http://127.0.0.1:1/v1"), "name the datasets"),
    ],
)
def test_bad_arguments_exit_2_with_one_message_before_anything_runs(project: Path, argv, message):
    code, printed, errors = run("eval", *argv)

    assert code == 2 and printed == ""
    assert message in errors


# -- against an HTTP API ---------------------------------------------------------------------------------------


def run_of(message: str) -> dict[str, Any]:
    """How the released shop agent's ``POST /invoke`` answers ``message``."""
    order = "A-1001" if "A-1001" in message else "A-1002"
    return {
        "status": "completed",
        "answer": f"lookup_order returned {json.dumps({'order_id': order, **RELEASED[order]})}.",
        "model": "local",
        "steps": 2,
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
        "cost_usd": 0.0,
        "tool_calls": [{"step": 1, "tool": "lookup_order", "outcome": "success", "latency_ms": 0.1}],
    }


@pytest.fixture
def api() -> Iterator[dict[str, Any]]:
    """An agent API on 127.0.0.1: ``POST /invoke`` answers like the stateless pattern, ``POST /tasks`` and
    ``GET /tasks/{id}`` like a multi-agent one; it keeps what it got."""
    state: dict[str, Any] = {"received": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state["received"].append((self.path, dict(self.headers), body))
            request = json.loads(body)
            if self.path == "/v1/tasks":  # a task that reads as running once, then as finished
                task_id = f"t{len(state['received'])}"
                state[task_id] = {"request": request, "reads": 0}
                self._send(202, {"task_id": task_id, "status": "queued", "status_url": f"/tasks/{task_id}"})
                return
            self._send(200, run_of(request["message"]))

        def do_GET(self) -> None:
            state["received"].append((self.path, dict(self.headers), b""))
            task = state[self.path.rsplit("/", 1)[1]]
            task["reads"] += 1
            if task["reads"] == 1:
                self._send(200, {"status": "running", "steps": 0, "cost_usd": None, "result": None})
                return
            run = run_of(task["request"]["message"])
            result = {"answer": run["answer"], "agent_status": "answer", "model": "multiple", "data": {}}
            self._send(200, {"status": "succeeded", "steps": run["steps"], "cost_usd": 0.0, "result": result})

        def _send(self, status: int, document: dict[str, Any]) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


def test_against_a_url_each_case_is_one_invoke_and_tool_arguments_the_api_does_not_report_are_skipped(
    project: Path, api: dict[str, Any]
):
    code, printed, _ = run("eval", "evals/shop", "--url", api["url"], "--api-key", "k-123", "--workers", "2", "--json", "r.json")

    assert code == 0, printed
    assert sorted(json.loads(body)["message"] for _, _, body in api["received"]) == sorted(c["input"] for c in CASES)
    assert all(path == "/v1/invoke" and headers["x-api-key"] == "k-123" for path, headers, _ in api["received"])
    carrier = next(c for c in json.loads((project / "r.json").read_text())["cases"] if c["id"] == "carrier")
    assert [(s["scorer"], s["skipped"]) for s in carrier["scores"]] == [("contains", False), ("tool_called", True)]
    assert "skipped: tool_called" in printed


def test_against_local_mode_the_api_of_the_pattern_is_found_in_the_ready_file_and_signed_with_sigv4(
    project: Path, api: dict[str, Any]
):
    ready = project / ".agentrail" / "local.json"
    ready.parent.mkdir()
    ready.write_text(
        json.dumps({
            "region": "us-east-1",
            "principals": [p.as_dict() for p in DEFAULT_PRINCIPALS],
            "apis": [{"stack": "Agentrail-Stateless", "pattern": "stateless", "url": api["url"], "auth": "iam", "api_key": None}],
        })
    )  # fmt: skip

    code, printed, _ = run("eval", "evals/shop", "--local")
    wrong, _, errors = run("eval", "evals/shop", "--local", "--pattern", "async")

    assert code == 0, printed
    path, headers, body = api["received"][0]
    url = api["url"].removesuffix("/v1") + path
    signer = verify_sigv4(method="POST", url=url, headers=headers, body=body, principals=DEFAULT_PRINCIPALS, region="us-east-1")
    assert signer.name == DEFAULT_PRINCIPALS[0].name
    assert wrong == 2 and "0 local APIs of pattern 'async' (served: stateless)" in errors


def test_the_progress_bar_goes_to_stderr_and_counts_every_case_and_failure(project: Path):
    code, printed, errors = run("eval", "--agent", "regressed_shop:definition", "--progress", "--workers", "3")

    assert code == 1 and "\r" not in printed
    assert errors.startswith("\reval [") and errors.endswith("] 3/3, 2 failed\n")


def test_an_invalid_agent_setting_in_the_environment_exits_2_naming_it(project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AGENT_MAX_STEPS", "0")

    code, printed, errors = run("eval", "--agent", "released_shop:definition")

    assert code == 2 and printed == ""
    assert "AGENT_* variables" in errors and "max_steps" in errors


def test_with_the_tasks_api_each_case_is_a_task_polled_until_it_finishes_with_its_task_type(project: Path, api: dict[str, Any]):
    code, printed, _ = run(
        "eval", "evals/shop", "--url", api["url"], "--api-key", "k", "--api", "tasks", "--task-type", "research"
    )

    assert code == 0, printed
    submitted = [json.loads(body) for path, _, body in api["received"] if path == "/v1/tasks"]
    assert sorted(s["message"] for s in submitted) == sorted(c["input"] for c in CASES)
    assert {s["task_type"] for s in submitted} == {"research"}
    assert sum(path.startswith("/v1/tasks/") for path, _, _ in api["received"]) == 2 * len(CASES)
    assert "skipped: tool_called" in printed


def test_a_tag_runs_only_the_cases_that_carry_it(project: Path):
    dataset = project / "evals" / "shop" / "orders.jsonl"
    dataset.write_text("".join(json.dumps({**c, "tags": ["smoke"]} if c["id"] == "eta" else c) + "\n" for c in CASES))

    code, printed, _ = run("eval", "--agent", "regressed_shop:definition", "--tag", "smoke")

    assert code == 0, printed
    assert "1 cases: 1 passed, 0 failed" in printed and "shop/orders:eta" in printed
