"""``agentrail approvals`` and ``agentrail call`` against an HTTP API on 127.0.0.1: what they send, how they sign, what they print."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from agentrail_cli.commands import dispatch
from agentrail_cli.main import _parser
from agentrail_local.apigateway.auth import APPROVER, DEFAULT_PRINCIPALS, LocalPrincipal, verify_sigv4

APPROVAL_ID = "a" * 32
#: The keys tests/conftest.py puts in the environment, as a principal the signature can be checked against.
ENVIRONMENT_KEYS = LocalPrincipal("environment", "testing", "testing")


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def signer(self, principals: tuple[LocalPrincipal, ...] = DEFAULT_PRINCIPALS, *, region: str = "us-east-1") -> str:
        """The principal whose valid SigV4 signature the request carries."""
        url = f"http://{self.headers['Host']}{self.path}"
        return verify_sigv4(
            method=self.method, url=url, headers=self.headers, body=self.body, principals=principals, region=region
        ).name


@dataclass
class RecordingApi:
    """Answers ``answers[(method, path)]`` (404 otherwise) and keeps every request it received."""

    url: str
    answers: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)


@pytest.fixture
def api() -> Iterator[RecordingApi]:
    recording = RecordingApi("")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            recording.received.append(Received(self.command, self.path, dict(self.headers), body))
            status, document = recording.answers.get((self.command, self.path), (404, {"error": "not_found"}))
            payload = document.encode() if isinstance(document, str) else json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(document, str) else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server dispatches on these names

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    recording.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield recording
    server.shutdown()
    server.server_close()


@pytest.fixture
def ready_file(api: RecordingApi, tmp_path: Path) -> Path:
    """Local mode's ready file, serving the async stack at ``api``."""
    path = tmp_path / "local.json"
    document = {
        "region": "us-east-1",
        "moto_endpoint": "http://127.0.0.1:1",
        "principals": [p.as_dict() for p in DEFAULT_PRINCIPALS],
        "apis": [{"stack": "Agentrail-Async", "pattern": "async", "url": api.url, "auth": "iam", "api_key": None}],
        "stacks": {"Agentrail-Async": {"ApiUrl": api.url}},
    }
    path.write_text(json.dumps(document))
    return path


def _run(*argv: str) -> tuple[int, str]:
    """Run ``agentrail ARGV`` as the console script parses it; the exit code and what it printed."""
    args = _parser().parse_args(list(argv))
    out = io.StringIO()
    return args.run(args, out), out.getvalue()


# -- agentrail approvals ----------------------------------------------------------------------------


def test_approvals_list_signs_as_the_approver_and_prints_one_line_per_approval(api: RecordingApi, ready_file: Path) -> None:
    api.answers[("GET", "/v1/approvals?status=pending")] = (200, {"approvals": [
        {"approval_id": APPROVAL_ID, "status": "pending", "approver_group": "approvers", "summary": "issue_refund 150 USD"},
    ]})  # fmt: skip

    code, printed = _run("approvals", "list", "--ready-file", str(ready_file))

    assert code == 0
    assert printed == f"  {APPROVAL_ID}  pending   group=approvers  issue_refund 150 USD\n"
    (request,) = api.received
    assert request.signer() == APPROVER


def test_approvals_list_as_another_principal_with_another_status_says_when_there_are_none(
    api: RecordingApi, ready_file: Path
) -> None:
    api.answers[("GET", "/v1/approvals?status=approved")] = (200, {"approvals": []})

    code, printed = _run("approvals", "list", "--status", "approved", "--as", "agentrail-other", "--ready-file", str(ready_file))

    assert (code, printed) == (0, "No approved approvals visible to you.\n")
    assert api.received[0].signer() == "agentrail-other"


def test_approvals_list_refused_by_the_api_prints_the_error_and_exits_1(api: RecordingApi, ready_file: Path) -> None:
    api.answers[("GET", "/v1/approvals?status=pending")] = (403, {"error": "forbidden"})

    code, printed = _run("approvals", "list", "--ready-file", str(ready_file))

    assert code == 1
    assert printed.splitlines()[0] == "HTTP 403" and json.loads(printed.split("\n", 1)[1]) == {"error": "forbidden"}


def test_approvals_show_prints_the_approval_as_json(api: RecordingApi, ready_file: Path) -> None:
    approval = {"approval_id": APPROVAL_ID, "status": "pending", "audit": [{"event": "requested"}]}
    api.answers[("GET", f"/v1/approvals/{APPROVAL_ID}")] = (200, approval)

    code, printed = _run("approvals", "show", APPROVAL_ID, "--ready-file", str(ready_file))

    assert code == 0
    assert printed == "HTTP 200\n" + json.dumps(approval, indent=2, sort_keys=True) + "\n"
    assert api.received[0].signer() == APPROVER


def test_approve_sends_the_decision_and_comment_once_signed_as_the_approver(api: RecordingApi, ready_file: Path) -> None:
    api.answers[("POST", f"/v1/approvals/{APPROVAL_ID}/decision")] = (200, {"status": "approved"})

    code, printed = _run(
        "approvals", "approve", APPROVAL_ID, "--comment", "Checked with the customer", "--ready-file", str(ready_file)
    )

    assert code == 0 and printed.startswith("HTTP 200\n")
    (request,) = api.received
    assert json.loads(request.body) == {"decision": "approve", "comment": "Checked with the customer"}
    assert request.signer() == APPROVER


def test_a_rejection_the_api_refuses_exits_1(api: RecordingApi, ready_file: Path) -> None:
    api.answers[("POST", f"/v1/approvals/{APPROVAL_ID}/decision")] = (409, {"error": "already_decided"})

    code, printed = _run("approvals", "reject", APPROVAL_ID, "--ready-file", str(ready_file))

    assert code == 1 and printed.startswith("HTTP 409\n") and "already_decided" in printed
    assert json.loads(api.received[0].body) == {"decision": "reject", "comment": None}


def test_approvals_without_local_mode_or_a_stack_say_what_to_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .agentrail/local.json here

    code = dispatch(_parser().parse_args(["approvals", "list"]))

    assert code == 2
    assert "pass --stack NAME (a deployed stack), or start local mode with `agentrail local`" in capsys.readouterr().err


# -- agentrail call ---------------------------------------------------------------------------------


def test_call_with_an_api_key_sends_the_key_and_the_json_body(api: RecordingApi) -> None:
    api.answers[("POST", "/v1/invoke")] = (200, {"answer": "84"})

    code, printed = _run("call", api.url, "POST", "/invoke", '{"message": "Calculate (12 + 30) * 2"}', "--api-key", "k" * 40)

    assert code == 0
    assert printed == 'HTTP 200\n{\n  "answer": "84"\n}\n'
    (request,) = api.received
    assert request.headers["x-api-key"] == "k" * 40 and "Authorization" not in request.headers
    assert json.loads(request.body) == {"message": "Calculate (12 + 30) * 2"}


def test_call_signs_with_the_aws_credentials_of_the_environment_for_the_given_region(api: RecordingApi) -> None:
    api.answers[("GET", "/v1/health")] = (200, {"status": "ok"})

    code, _ = _run("call", api.url, "GET", "/health", "--region", "eu-west-1")

    assert code == 0
    assert api.received[0].signer((ENVIRONMENT_KEYS,), region="eu-west-1") == "environment"


def test_call_prints_a_body_that_is_not_json_as_text_and_exits_1_on_an_error(api: RecordingApi) -> None:
    api.answers[("GET", "/v1/health")] = (502, "Bad Gateway")

    code, printed = _run("call", api.url, "GET", "/health", "--api-key", "k")

    assert (code, printed) == (1, "HTTP 502\nBad Gateway\n")


def test_call_with_a_body_that_is_not_json_sends_nothing(api: RecordingApi, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run("call", api.url, "POST", "/invoke", "{not json", "--api-key", "k")

    assert code == 2 and api.received == []
    assert "the body is not valid JSON" in capsys.readouterr().err


def test_call_without_aws_credentials_asks_for_an_api_key(
    api: RecordingApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    code, _ = _run("call", api.url, "GET", "/health")

    assert code == 2 and api.received == []
    assert "no AWS credentials found (or pass --api-key)" in capsys.readouterr().err
