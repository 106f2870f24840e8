"""The operator console in a real browser: headless Chromium (Debian's, driven by Playwright) on local mode's console.

Each scenario runs axe-core once its data has loaded, in every state it reaches, and saves a screenshot of every
page it visits under ``test-artifacts/console/``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentrail_cli.client import AgentApiClient

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api")

#: Debian's chromium (make test installs it); Playwright's own browser download needs a network we do not assume.
CHROMIUM = Path(os.environ.get("AGENTRAIL_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts" / "console"
REFUND = {"message": "Please refund 150 USD for order A-1002", "task_type": "reviewed"}
REQUESTER = "agentrail-local"
APPROVER = "agentrail-approver"
OTHER = "agentrail-other"
#: How long the page may take to show what the API answered.
UI_TIMEOUT_MS = 30_000
Waiter = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test-e2e` installs Debian's chromium (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def open_console(local: Any, browser: Any) -> Iterator[Callable[..., Any]]:
    """``open_console(user)``: a fresh browser context on the async API's console (or ``pattern``'s), signed in as
    ``user``."""
    contexts: list[Any] = []

    def open_as(user: str | None, *, pattern: str = "async") -> Any:
        # bypass_csp lets the test inject axe-core; the page must then stay safe on its own (no inline HTML from data).
        context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        page.goto(local.api(pattern)["console_url"])
        if user is not None:
            page.get_by_test_id("signin-user").select_option(value=user)
            page.get_by_test_id("signin-submit").click()
            page.get_by_test_id("signout").wait_for()
        return page

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture
def tasks(local: Any) -> Iterator[AgentApiClient]:
    with local.client("async") as api:
        yield api


@pytest.fixture
def approver_api(local: Any) -> Iterator[AgentApiClient]:
    with local.client("async", principal=APPROVER) as api:
        yield api


def waiting_refund(tasks: AgentApiClient, approver_api: AgentApiClient, wait_for_task: Waiter) -> tuple[str, str]:
    """Submit the refund as the requester and wait for its approval; returns the task id and the approval id."""
    submitted = tasks.request("POST", "/tasks", json=REFUND)
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["task_id"]
    wait_for_task(tasks, task_id, until={"waiting_approval"})
    pending = approver_api.request("GET", "/approvals?status=pending").json()["approvals"]
    (approval,) = [a for a in pending if a["task_id"] == task_id]
    return task_id, approval["approval_id"]


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations of the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)"""
    )
    return list(found)


def checked(page: Any, name: str) -> None:
    """Save a screenshot of the page as ``name`` and require zero serious accessibility violations."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert serious_violations(page) == [], name


def forced_approval(page: Any, approval_id: str) -> dict[str, Any]:
    """What the API answers an approval sent from the page with the signed-in user's own token, buttons or not."""
    return dict(
        page.evaluate(
            """async (id) => {
                const token = JSON.parse(sessionStorage.getItem('agentrail.console.session')).token;
                const r = await fetch(`api/approvals/${id}/decision`, {method: 'POST',
                    headers: {'Authorization': token, 'Content-Type': 'application/json'},
                    body: JSON.stringify({decision: 'approve'})});
                return {status: r.status, body: await r.json()};
            }""",
            approval_id,
        )
    )


def open_approval(page: Any, approval_id: str) -> None:
    page.get_by_test_id("nav-approvals").click()
    row = page.locator(f"[data-testid=approval-row][data-approval-id='{approval_id}']")
    row.wait_for()
    row.get_by_role("link").first.click()
    page.get_by_test_id("approval-status").wait_for()


def test_an_approver_approves_a_pending_refund_with_a_comment_and_the_task_completes(
    open_console: Callable[..., Any], tasks: AgentApiClient, approver_api: AgentApiClient, wait_for_task: Waiter, local: Any
) -> None:
    task_id, approval_id = waiting_refund(tasks, approver_api, wait_for_task)
    page = open_console(APPROVER)

    row = page.locator(f"[data-testid=approval-row][data-approval-id='{approval_id}']")
    row.wait_for()
    assert "issue_refund" in row.inner_text()
    checked(page, "approvals")
    open_approval(page, approval_id)
    detail = page.locator("main").inner_text()
    assert "issue_refund" in detail and "A-1002" in detail and "150" in detail
    assert page.get_by_test_id("approval-status").inner_text() == "pending"
    checked(page, "approval-pending")
    page.get_by_label(re.compile("comment", re.IGNORECASE)).fill("Checked with the customer")
    page.get_by_test_id("approve").click()

    page.wait_for_function("() => document.querySelector('[data-testid=approval-status]')?.textContent === 'approved'")
    assert page.get_by_test_id("approve").count() == 0
    assert page.get_by_test_id("approval-comment").inner_text() == "Checked with the customer"
    assert page.get_by_test_id("audit-row").count() == 2
    checked(page, "approval-approved")
    finished = wait_for_task(tasks, task_id)
    assert finished["status"] == "succeeded"
    assert "refund issued" in finished["result"]["answer"]
    approval = approver_api.request("GET", f"/approvals/{approval_id}").json()
    assert (approval["status"], approval["decided_by"], approval["comment"]) == (
        "approved",
        local.principal(APPROVER),
        "Checked with the customer",
    )


def test_a_rejection_with_a_10_kb_html_comment_shows_as_text_in_the_run_timeline(
    open_console: Callable[..., Any], tasks: AgentApiClient, approver_api: AgentApiClient, wait_for_task: Waiter
) -> None:
    task_id, approval_id = waiting_refund(tasks, approver_api, wait_for_task)
    markup = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b> '
    comment = (markup * 200)[:10_240]
    page = open_console(APPROVER)

    open_approval(page, approval_id)
    page.get_by_test_id("decision-comment").fill(comment)
    page.get_by_test_id("reject").click()
    page.wait_for_function("() => document.querySelector('[data-testid=approval-status]')?.textContent === 'rejected'")
    assert page.get_by_test_id("approval-comment").inner_text() == comment
    assert wait_for_task(tasks, task_id)["status"] == "succeeded"

    page.get_by_test_id("view-run").click()
    decided = page.locator("[data-testid=timeline-event][data-kind=approval_decided]")
    decided.wait_for()
    assert "rejected" in decided.inner_text()
    page.locator("[data-testid=timeline-event][data-kind=finished]").wait_for()
    assert decided.get_by_test_id("event-comment").inner_text() == comment
    kinds = page.locator("[data-testid=timeline-event]").evaluate_all("(events) => events.map(e => e.dataset.kind)")
    assert (
        kinds.index("tool_call") < kinds.index("approval_requested") < kinds.index("approval_decided") < kinds.index("finished")
    )
    # The markup is text: no element it names exists in the page, and none of its script ran.
    assert page.locator("main img, main script, main b").count() == 0
    assert page.evaluate("() => window.__xss") is None
    checked(page, "run-timeline-rejected")


def test_a_non_approver_sees_no_decide_buttons_and_a_forced_decision_is_refused(
    open_console: Callable[..., Any], tasks: AgentApiClient, approver_api: AgentApiClient, wait_for_task: Waiter
) -> None:
    task_id, approval_id = waiting_refund(tasks, approver_api, wait_for_task)
    requester = open_console(REQUESTER)

    open_approval(requester, approval_id)  # the requester sees its own request, and may not decide it
    assert requester.get_by_test_id("approve").count() == 0
    assert requester.get_by_test_id("reject").count() == 0
    checked(requester, "approval-requester")
    forced = forced_approval(requester, approval_id)
    assert (forced["status"], forced["body"]["error"]) == (403, "not_an_approver")

    other = open_console(OTHER)
    other.get_by_test_id("approvals-empty").wait_for()  # another caller's request is not theirs to see
    forced = forced_approval(other, approval_id)
    assert (forced["status"], forced["body"]["error"]) == (403, "not_an_approver")
    assert approver_api.request("GET", f"/approvals/{approval_id}").json()["status"] == "pending"
    assert tasks.request("GET", f"/tasks/{task_id}").json()["status"] == "waiting_approval"
    assert approver_api.request("POST", f"/approvals/{approval_id}/decision", json={"decision": "reject"}).status_code == 200


def test_the_costs_chart_renders_the_runs_costs_per_agent_and_day(
    open_console: Callable[..., Any], tasks: AgentApiClient, wait_for_task: Waiter
) -> None:
    submitted = tasks.request("POST", "/tasks", json={"message": "What is the status of order A-1001?"})
    assert submitted.status_code == 202, submitted.text
    wait_for_task(tasks, submitted.json()["task_id"])
    costs = tasks.request("GET", "/costs?days=14").json()["days"]
    assert costs, "the finished task has a cost row"
    page = open_console(REQUESTER)

    page.get_by_test_id("nav-costs").click()
    page.get_by_test_id("costs-chart").wait_for()
    expected = {
        "costs-bar": {(row["day"], row["agent"]): row["cost_usd"] for row in costs},
        "tokens-bar": {(row["day"], row["agent"]): row["input_tokens"] + row["output_tokens"] for row in costs},
    }
    for bar, values in expected.items():
        drawn = page.get_by_test_id(bar).evaluate_all(
            "(bars) => bars.map(b => [b.dataset.day, b.dataset.agent, Number(b.dataset.value), b.height.baseVal.value])"
        )
        assert {(day, agent): value for day, agent, value, _ in drawn} == pytest.approx(values), bar
        # Heights are in proportion to the values: the local model's tokens draw bars (its price, and so USD, is 0).
        assert all((height > 0) == (value > 0) for _, _, value, height in drawn), bar
    assert any(value > 0 for value in expected["tokens-bar"].values())
    assert page.get_by_test_id("costs-row").count() == len(costs)
    checked(page, "costs")

    page.get_by_test_id("nav-runs").click()
    page.locator(f"[data-testid=run-row][data-task-id='{submitted.json()['task_id']}']").wait_for()
    checked(page, "runs")


def test_an_expired_session_returns_to_sign_in(open_console: Callable[..., Any]) -> None:
    page = open_console(None)
    page.get_by_test_id("signin-submit").wait_for()
    checked(page, "sign-in")
    # A token that lives for one second, from the same local issuer the page signs in with; the page is told it lives
    # an hour longer, so it is the API's 401 that sends it back to sign-in.
    page.evaluate(
        """async (user) => {
            const r = await fetch('token', {method: 'POST', headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({user, ttl_seconds: 1})});
            const body = await r.json();
            sessionStorage.setItem('agentrail.console.session',
                JSON.stringify({token: body.token, user: body.user, groups: body.groups, exp: body.expires_at + 3600}));
        }""",
        REQUESTER,
    )
    time.sleep(2.1)
    page.reload()

    page.get_by_test_id("session-expired").wait_for()
    assert page.get_by_test_id("signin-submit").is_visible()
    assert page.evaluate("() => sessionStorage.getItem('agentrail.console.session')") is None
    checked(page, "sign-in-expired")


def console_get(local: Any, pattern: str, user: str, path: str) -> Any:
    """``GET <path>`` through ``pattern``'s console as ``user``: signed in at the local issuer, called with its token."""
    console = local.api(pattern)["console_url"]
    with httpx.Client(base_url=console, timeout=30) as http:
        token = http.post("token", json={"user": user}).json()["token"]
        return http.get(f"api{path}", headers={"Authorization": token})


def test_a_routed_task_shows_each_agents_steps_in_its_timeline(local: Any, wait_for_task: Waiter) -> None:
    with local.client("multiagent") as team:
        submitted = team.request("POST", "/tasks", json={"message": "Why was I charged twice on invoice INV-1001?"})
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["task_id"]
        task = wait_for_task(team, task_id)

    timeline = console_get(local, "multiagent", REQUESTER, f"/tasks/{task_id}/timeline")

    assert timeline.status_code == 200, timeline.text
    body = timeline.json()
    assert body["task"]["spend"] == task["spend"]
    steps = [(e["kind"], e["agent"]) for e in body["events"] if e["kind"] in ("model", "tool_call")]
    agents = [agent for _, agent in steps]
    assert {"router", "billing"} <= {a.split("-")[-1] for a in agents if a}, steps
    assert agents.index(next(a for a in agents if a and a.endswith("billing"))) > agents.index("router")
    assert (body["events"][0]["kind"], body["events"][-1]["kind"]) == ("submitted", "finished")
    assert console_get(local, "multiagent", OTHER, f"/tasks/{task_id}/timeline").status_code == 404


def test_a_research_task_links_its_subtasks_in_its_timeline(local: Any, wait_for_task: Waiter) -> None:
    research = {"message": "Research Lambda; compare DynamoDB and SQS", "task_type": "research"}
    with local.client("hierarchical") as api:
        submitted = api.request("POST", "/tasks", json=research)
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["task_id"]
        task = wait_for_task(api, task_id, seconds=60)

    body = console_get(local, "hierarchical", REQUESTER, f"/tasks/{task_id}/timeline").json()

    stored = task["result"]["data"]["subtasks"]
    assert [(s["index"], s["status"]) for s in body["subtasks"]] == [(i, s["status"]) for i, s in enumerate(stored)]
    assert [e["subtask_id"] for e in body["events"] if e["kind"] == "subtask"] == [s["subtask_id"] for s in body["subtasks"]]
    agents = {e["agent"] for e in body["events"] if e["kind"] == "model"}
    assert "plan" in agents and "synthesize" in agents, agents
    # Each subtask names the runs of its attempts, and those runs' steps are in the same timeline.
    for subtask in body["subtasks"]:
        assert subtask["runs"] and all(run.startswith(f"work{subtask['index']}-") for run in subtask["runs"])
        assert set(subtask["runs"]) <= agents


def test_a_session_turn_shows_as_a_timeline_on_the_stateful_apis_console(open_console: Callable[..., Any], local: Any) -> None:
    with local.client("stateful") as sessions:
        created = sessions.request("POST", "/sessions", json={})
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        answered = sessions.request(
            "POST", f"/sessions/{session_id}/messages", json={"message": "What is the status of order A-1001?"}
        )
        assert answered.status_code == 200, answered.text
    page = open_console(REQUESTER, pattern="stateful")

    # The stateful API has sessions, and none of the task views.
    assert page.get_by_test_id("nav-sessions").is_visible()
    assert not page.get_by_test_id("nav-approvals").is_visible() and not page.get_by_test_id("nav-runs").is_visible()
    row = page.locator(f"[data-testid=session-row][data-session-id='{session_id}']")
    row.wait_for()
    checked(page, "sessions")
    row.get_by_role("link").first.click()
    page.locator("[data-testid=turn-row][data-turn='1']").wait_for()
    checked(page, "session")
    page.locator("[data-testid=turn-row][data-turn='1']").get_by_role("link", name=re.compile("timeline", re.IGNORECASE)).click()

    call = page.locator("[data-testid=timeline-event][data-kind=tool_call]").first
    call.wait_for()
    assert "lookup_order" in call.inner_text() and "A-1001" in call.inner_text()
    assert [c["tool"] for c in answered.json()["tool_calls"]] == ["lookup_order"]
    page.locator("[data-testid=timeline-event][data-kind=finished]").wait_for()
    checked(page, "session-turn-timeline")
