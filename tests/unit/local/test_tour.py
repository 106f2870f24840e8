"""The tour's step machinery (placeholders, captures, polling, per-step principals) and the tours' own consistency."""

from __future__ import annotations

import io
import re
import string
from collections.abc import Callable

import httpx
import pytest

from agentrail_cli.client import AgentApiClient
from agentrail_cli.tour import FINISHED_TASK_STATES, TOURS, Check, PollUntil, TourStep, field_at, run_step, run_tour
from agentrail_local.apigateway.auth import APPROVER, DEFAULT_PRINCIPALS
from agentrail_runtime.tasks.models import FINISHED

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, *, auth: httpx.Auth | None = None) -> AgentApiClient:
    return AgentApiClient("http://api.test/v1", auth=auth, transport=httpx.MockTransport(handler))


def _status_is(status: str) -> Check:
    return Check(f"status is {status}", lambda reply: field_at(reply.body, "status") == status)


class _Signed(httpx.Auth):
    def __init__(self, name: str) -> None:
        self.name = name

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["X-Signed-As"] = self.name
        yield request


def test_a_polling_step_repeats_its_request_until_the_condition_holds() -> None:
    answers = iter(["queued", "running", "succeeded"])
    client = _client(lambda request: httpx.Response(200, json={"status": next(answers)}))
    step = TourStep(
        "Poll",
        "GET",
        "/tasks/t-1",
        200,
        poll=PollUntil(_status_is("succeeded"), interval_seconds=0.01),
        checks=(_status_is("succeeded"),),
    )

    outcome, response = run_step(client, step)

    assert outcome.passed and outcome.attempts == 3
    assert response is not None and response.json() == {"status": "succeeded"}


def test_a_polling_step_whose_condition_never_holds_fails_after_its_timeout() -> None:
    client = _client(lambda request: httpx.Response(200, json={"status": "running"}))
    step = TourStep(
        "Poll", "GET", "/tasks/t-1", 200, poll=PollUntil(_status_is("succeeded"), timeout_seconds=0.2, interval_seconds=0.02)
    )

    outcome, _ = run_step(client, step)

    assert outcome.failures == ["still not true after 0.2 s: status is succeeded"]
    assert outcome.attempts > 2 and outcome.elapsed_ms >= 200


def test_a_value_captured_by_one_step_fills_the_path_of_a_later_step() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return (
            httpx.Response(202, json={"task_id": "abc123"})
            if request.method == "POST"
            else httpx.Response(200, json={"status": "succeeded"})
        )

    client = _client(handler)
    values: dict[str, object] = {}
    submit = TourStep(
        "Submit",
        "POST",
        "/tasks",
        202,
        json={"message": "hi"},
        capture=(("task_id", lambda reply: field_at(reply.body, "task_id")),),
    )
    read = TourStep("Read", "GET", "/tasks/{task_id}", 200)

    first, _ = run_step(client, submit, values)
    second, _ = run_step(client, read, values)

    assert first.passed and second.passed
    assert values == {"task_id": "abc123"}
    assert seen == ["/v1/tasks", "/v1/tasks/abc123"]


def test_a_step_can_check_what_it_has_just_captured() -> None:
    client = _client(lambda request: httpx.Response(202, json={"task_id": "abc", "status_url": "/tasks/abc"}))
    step = TourStep(
        "Submit", "POST", "/tasks", 202,
        capture=(("task_id", lambda reply: field_at(reply.body, "task_id")),),
        checks=(Check("status_url names the task", lambda reply: reply.body["status_url"] == f"/tasks/{reply.values['task_id']}"),),
    )  # fmt: skip

    outcome, _ = run_step(client, step)

    assert outcome.passed


def test_a_step_that_needs_a_value_no_step_captured_fails_without_sending_a_request() -> None:
    sent: list[httpx.Request] = []
    client = _client(lambda request: sent.append(request) or httpx.Response(200))

    outcome, response = run_step(client, TourStep("Read", "GET", "/tasks/{task_id}", 200))

    assert outcome.failures == ["needs task_id from an earlier step"]
    assert response is None and sent == []


def test_a_capture_that_finds_nothing_fails_the_step() -> None:
    client = _client(lambda request: httpx.Response(200, json={"approvals": []}))
    step = TourStep("List", "GET", "/approvals", 200, capture=(("approval_id", lambda reply: None),))

    outcome, _ = run_step(client, step)

    assert outcome.failures == ["could not read approval_id from the response"]


def test_a_step_naming_a_principal_is_sent_with_that_principals_client() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"signed_as": request.headers.get("X-Signed-As")})

    tour_client = _client(handler, auth=_Signed("agentrail-local"))
    approver = _client(handler, auth=_Signed(APPROVER))
    steps = (
        TourStep("As the tour", "GET", "/approvals", 200, checks=(Check("signed as local", lambda r: r.body["signed_as"] == "agentrail-local"),)),
        TourStep(
            "As the approver", "GET", "/approvals", 200, principal=APPROVER,
            checks=(Check("signed as approver", lambda r: r.body["signed_as"] == APPROVER),),
        ),
    )  # fmt: skip

    outcomes = run_tour(tour_client, steps, out=io.StringIO(), title="t", principals={APPROVER: approver})

    assert [o.passed for o in outcomes] == [True, True]


def test_a_principal_without_credentials_fails_the_step() -> None:
    client = _client(lambda request: httpx.Response(200))

    outcomes = run_tour(
        client, (TourStep("As nobody", "GET", "/x", 200, principal="nobody"),), out=io.StringIO(), title="t", principals={}
    )

    assert outcomes[0].failures == ["no credentials for nobody"]


def test_a_step_naming_a_principal_fails_without_a_request_when_the_tour_is_given_no_principals() -> None:
    sent: list[httpx.Request] = []
    client = _client(lambda request: sent.append(request) or httpx.Response(200))

    outcome, response = run_step(client, TourStep("As the approver", "GET", "/approvals", 200, principal=APPROVER))

    assert outcome.failures == [f"no credentials for {APPROVER}"]
    assert response is None and sent == []


def test_the_printed_tour_shows_each_request_verdict_and_the_tours_timing() -> None:
    client = _client(lambda request: httpx.Response(404, json={"error": "task_not_found"}))
    out = io.StringIO()

    run_tour(
        client, (TourStep("A missing task", "GET", "/tasks/none", 200, note="Explains the step."),), out=out, title="Tour of x"
    )

    printed = out.getvalue()
    assert "[1/1] A missing task" in printed and "Explains the step." in printed
    assert "→ GET /tasks/none" in printed and "← 404 Not Found" in printed
    assert "✗ expected HTTP 200, got 404" in printed
    assert re.search(r"0/1 steps passed in \d+\.\d s", printed)


# -- the tours themselves ------------------------------------------------------------------------------


def _placeholders(path: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(path) if name}


@pytest.mark.parametrize("pattern", sorted(TOURS))
def test_every_placeholder_in_a_tour_is_captured_by_an_earlier_step(pattern: str) -> None:
    captured: set[str] = set()
    for step in TOURS[pattern]:
        assert _placeholders(step.path) <= captured, f"{pattern}: {step.title} needs {_placeholders(step.path) - captured}"
        captured |= {name for name, _ in step.capture}


@pytest.mark.parametrize("pattern", sorted(TOURS))
def test_every_principal_a_tour_names_is_a_local_principal(pattern: str) -> None:
    known = {p.name for p in DEFAULT_PRINCIPALS}

    assert {s.principal for s in TOURS[pattern] if s.principal} <= known


def test_every_step_checks_more_than_its_status_or_explains_itself() -> None:
    bare = [f"{pattern}: {s.title}" for pattern, steps in TOURS.items() for s in steps if not (s.checks or s.capture or s.note)]

    assert bare == []


def test_a_later_steps_checks_see_the_values_earlier_steps_captured() -> None:
    client = _client(lambda request: httpx.Response(200, json={"task_id": "t-1", "approvals": [{"task_id": "t-1"}]}))
    submit = TourStep("Submit", "POST", "/tasks", 200, capture=(("task_id", lambda reply: field_at(reply.body, "task_id")),))
    listed = TourStep(
        "List", "GET", "/approvals", 200,
        checks=(
            Check("sees what Submit captured", lambda reply: reply.values == {"task_id": "t-1"}),
            Check("lists the submitted task", lambda reply: field_at(reply.body, "approvals.0.task_id") == reply.values.get("task_id")),
        ),
    )  # fmt: skip

    alone = run_tour(client, (listed,), out=io.StringIO(), title="t")
    after_submit = run_tour(client, (submit, listed), out=io.StringIO(), title="t")

    assert alone[0].failures == ["expected: sees what Submit captured", "expected: lists the submitted task"]
    assert [o.passed for o in after_submit] == [True, True]


def test_field_at_follows_keys_and_list_indexes_and_gives_none_for_a_missing_part() -> None:
    body = {"a": [{"b": 1}], "c": "text"}

    assert field_at(body, "a.0.b") == 1
    assert [field_at(body, path) for path in ("a.1.b", "a.x", "c.d", "missing")] == [None, None, None, None]


def test_the_tours_finished_states_are_the_runtimes() -> None:
    assert {str(state) for state in FINISHED} == FINISHED_TASK_STATES


def test_every_task_a_tour_submits_is_read_until_it_has_finished_or_waits() -> None:
    submitted = [
        (pattern, name) for pattern, steps in TOURS.items() for s in steps if s.path == "/tasks" for name, _ in s.capture
    ]
    read = {
        (pattern, s.path.removeprefix("/tasks/{").removesuffix("}"))
        for pattern, steps in TOURS.items()
        for s in steps
        if s.method == "GET" and s.path.startswith("/tasks/{") and s.poll is not None
    }

    assert submitted and set(submitted) <= read
