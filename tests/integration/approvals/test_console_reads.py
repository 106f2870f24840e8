"""The operator console's reads on the task API: a run's timeline (to its owner, or to an approver naming its
approval), the caller's runs newest first, the spend per day and agent, and what approvals tell the console (who may
decide, the approver's comment as data)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from agentrail_runtime import clock as runtime_clock
from agentrail_runtime.approvals.models import MAX_COMMENT_CHARS
from agentrail_runtime.models.base import Usage
from agentrail_runtime.tasks.models import TaskRecord
from tests.integration.approvals.conftest import Caller
from tests.integration.approvals.test_approval_decisions import decision_received
from tests.integration.planted_pii import CARD, DEFINITION, EMAIL, MARKERS, MESSAGE, PlantedModel, markers_in, planted_in

DAY = 86_400
TIMELINE = "/tasks/{task_id}/timeline"
#: Markup an approver may type into a comment: the console must get it back as text, unchanged.
MARKUP = '<script>alert(1)</script><img src=x onerror="alert(2)"><b>refund &amp; "cancel"</b></textarea>'


@pytest.fixture
def console_event(load_event, aimed_event) -> Callable[..., dict[str, Any]]:
    """A GET of the console's reads by ``caller``, made from events/tasks/get-task.json: ``resource`` is ``/tasks``,
    ``/tasks/{task_id}/timeline`` (with ``task_id``) or ``/costs``; ``query`` its query string."""

    def build(resource: str, *, caller: Caller, task_id: str | None = None, query: dict[str, str] | None = None) -> dict:
        event = load_event("tasks/get-task.json")
        path = resource.replace("{task_id}", task_id) if task_id is not None else resource
        event.update(resource=resource, path=path, pathParameters={"task_id": task_id} if task_id is not None else None)
        context = event["requestContext"]
        context.update(resourcePath=resource, path=f"/{context['stage']}{path}")
        context["identity"]["userArn"] = caller.arn
        return aimed_event(event, query=query)

    return build


def decided_and_resumed(approvals, api_event, aws, paused, decision: str = "reject", **event: Any) -> Any:
    """Decide ``paused``'s approval through the API (as alice unless told), then resume the workflow with what its
    waiting execution received, as the approval workflow does."""
    reply = approvals.call(api_event(f"decide-{decision}", approval_id=paused.approval_id, **event))
    assert reply.status == 200, reply.body
    approvals.workflow.handle({"action": "resume", "task_id": paused.task_id, "decision": decision_received(aws, paused)})
    return reply


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["kind"] for event in events]


def only(events: list[dict[str, Any]], kind: str, **matching: Any) -> dict[str, Any]:
    [found] = [e for e in events if e["kind"] == kind and all(e[k] == v for k, v in matching.items())]
    return found


def create_task(approvals, task_id: str, owner: str, created_at: int, *, message: str = "Summarize order A-1002") -> None:
    approvals.tasks.store.create(
        TaskRecord(
            task_id=task_id, owner=owner, task_type="reviewed", message=message, created_at=created_at, updated_at=created_at
        )
    )


# -- the timeline --------------------------------------------------------------------------------------------------


def test_the_timeline_of_a_rejected_refund_shows_the_call_its_arguments_the_request_and_the_rejection_with_who_and_why(
    deployment, api_event, aws, callers, console_event
):
    approvals = deployment()
    paused = approvals.pause()
    decided_and_resumed(approvals, api_event, aws, paused, "reject")
    record = approvals.task(paused.task_id)

    reply = approvals.call(console_event(TIMELINE, caller=callers.requester, task_id=paused.task_id))

    assert reply.status == 200
    events = reply.body["events"]
    order = kinds(events)
    assert order[:2] == ["submitted", "started"]
    assert order[-1] == "finished"
    call = only(events, "tool_call", tool="issue_refund")
    requested, decided = only(events, "approval_requested"), only(events, "approval_decided")
    assert order.index("model") < events.index(call) < events.index(requested) < events.index(decided)
    assert events[0]["at"] == record.created_at and events[0]["title"] == record.message
    assert events[1]["at"] == record.started_at
    assert call["arguments"]["order_id"] == "A-1002" and float(call["arguments"]["amount_usd"]) == 150.0
    assert call["outcome"] == "rejected"
    assert (requested["approval_id"], requested["actor"], requested["arguments"]) == (
        paused.approval_id,
        callers.requester.principal,
        {"amount_usd": 150.0, "order_id": "A-1002"},
    )
    assert (decided["approval_id"], decided["decision"], decided["actor"], decided["comment"]) == (
        paused.approval_id,
        "rejected",
        callers.alice.principal,
        "The order has not shipped; cancel it instead of refunding.",
    )
    assert decided["at"] == approvals.api_service.approvals.get(paused.approval_id).decided_at
    assert (events[-1]["at"], events[-1]["status"]) == (record.finished_at, "succeeded")
    assert events[-1]["result"] == record.result.answer
    task = reply.body["task"]
    assert (task["task_id"], task["status"], task["steps"]) == (paused.task_id, "succeeded", record.steps)
    assert task["spend"] == {name: spend.model_dump(mode="json") for name, spend in record.spend.items()}
    assert approvals.refunds == {}


def test_the_timeline_of_an_approved_refund_shows_the_refunds_result_and_the_approval(
    deployment, api_event, aws, callers, console_event
):
    approvals = deployment()
    paused = approvals.pause()
    decided_and_resumed(approvals, api_event, aws, paused, "approve")

    reply = approvals.call(console_event(TIMELINE, caller=callers.requester, task_id=paused.task_id))

    events = reply.body["events"]
    call = only(events, "tool_call", tool="issue_refund")
    decided = only(events, "approval_decided")
    # The call carries its outcome; the approval it waited for follows it, before the next model step.
    assert call["outcome"] == "success"
    assert call["result"] == {"order_id": "A-1002", "refunded_usd": approvals.refunds["A-1002"], "status": "refund issued"}
    assert (decided["decision"], decided["actor"], decided["comment"]) == (
        "approved",
        callers.alice.principal,
        "Within the refund policy.",
    )
    after_call = kinds(events)[events.index(call) + 1 :]
    assert after_call[:3] == ["approval_requested", "approval_decided", "model"]
    assert after_call[-1] == "finished"


def test_every_successful_tool_call_of_a_finished_task_shows_its_result(deployment, api_event, aws, callers, console_event):
    approvals = deployment()
    paused = approvals.pause()
    decided_and_resumed(approvals, api_event, aws, paused, "approve")
    stored = approvals.tasks.store.get_checkpointed(paused.task_id)[1]

    reply = approvals.call(console_event(TIMELINE, caller=callers.requester, task_id=paused.task_id))

    calls = [e for e in reply.body["events"] if e["kind"] == "tool_call"]
    assert '"lookup_order"' in stored and [c["tool"] for c in calls] == ["issue_refund", "lookup_order"]
    assert [c["outcome"] for c in calls] == ["success", "success"]
    assert all(c["result"] is not None for c in calls), calls


# -- who sees a timeline -------------------------------------------------------------------------------------------


def test_a_timeline_is_404_to_a_caller_who_neither_owns_the_task_nor_names_an_approval_they_may_see(
    deployment, callers, console_event
):
    approvals = deployment()
    paused = approvals.pause()

    replies = [
        approvals.call(console_event(TIMELINE, caller=callers.other_requester, task_id=paused.task_id)),
        approvals.call(console_event(TIMELINE, caller=callers.mallory, task_id=paused.task_id)),
        # Naming the right approval does not help a caller outside its approver group.
        approvals.call(
            console_event(TIMELINE, caller=callers.mallory, task_id=paused.task_id, query={"approval_id": paused.approval_id})
        ),
        approvals.call(console_event(TIMELINE, caller=callers.requester, task_id="0" * 32)),
    ]

    for reply in replies:
        assert (reply.status, reply.body["error"]) == (404, "task_not_found")
        assert approvals.task(paused.task_id).message not in reply.raw


def test_an_approver_sees_a_timeline_only_by_naming_an_approval_of_that_task(deployment, callers, console_event):
    approvals = deployment()
    paused = approvals.pause()
    other = approvals.pause("5d3f0b8a2c4e4f6a9b7c1d2e3f4a5b6c", correlation_id="0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0")
    assert other.approval_id != paused.approval_id

    without_id = approvals.call(console_event(TIMELINE, caller=callers.alice, task_id=paused.task_id))
    named = approvals.call(
        console_event(TIMELINE, caller=callers.alice, task_id=paused.task_id, query={"approval_id": paused.approval_id})
    )
    another_tasks = approvals.call(
        console_event(TIMELINE, caller=callers.alice, task_id=paused.task_id, query={"approval_id": other.approval_id})
    )
    unknown = approvals.call(
        console_event(TIMELINE, caller=callers.alice, task_id=paused.task_id, query={"approval_id": "0" * 32})
    )
    as_owner = approvals.call(console_event(TIMELINE, caller=callers.requester, task_id=paused.task_id))

    for reply in (without_id, another_tasks, unknown):
        assert (reply.status, reply.body["error"]) == (404, "task_not_found")
    assert named.status == 200
    assert named.body == as_owner.body
    pending = only(named.body["events"], "approval_requested")
    assert (pending["approval_id"], pending["status"]) == (paused.approval_id, "pending")
    assert only(named.body["events"], "tool_call", tool="issue_refund")["outcome"] == "pending_approval"
    assert "approval_decided" not in kinds(named.body["events"])


def test_a_malformed_task_id_or_approval_id_is_a_400_that_does_not_echo_it(deployment, callers, console_event):
    approvals = deployment()
    paused = approvals.pause()
    bad_ids = ("C936F5D95235CFA5FFA25657EE0BD7E8", "c936f5d9", "c936f5d95235cfa5ffa25657ee0bd7e8-admin")

    for bad in bad_ids:
        by_task = approvals.call(console_event(TIMELINE, caller=callers.requester, task_id=bad))
        by_approval = approvals.call(
            console_event(TIMELINE, caller=callers.alice, task_id=paused.task_id, query={"approval_id": bad})
        )

        for reply, field in ((by_task, "path.task_id"), (by_approval, "query.approval_id")):
            assert (reply.status, reply.body["error"]) == (400, "invalid_request"), (bad, field)
            assert [d["field"] for d in reply.body["details"]] == [field]
            assert bad not in reply.raw and bad.lower() not in reply.raw


# -- the task list -------------------------------------------------------------------------------------------------


def test_the_task_list_shows_the_callers_tasks_newest_first_up_to_the_limit(deployment, callers, console_event, clock):
    approvals = deployment()
    now = int(runtime_clock.now())
    mine = [f"{n:032x}" for n in (0xA1, 0xA2, 0xA3)]
    for age, task_id in zip((30, 20, 10), mine, strict=True):
        create_task(approvals, task_id, callers.requester.principal, now - age)
    long_message = "Summarize " + "order A-1002 " * 40
    create_task(approvals, "b" * 32, callers.other_requester.principal, now, message=long_message)

    listed = approvals.call(console_event("/tasks", caller=callers.requester))
    limited = approvals.call(console_event("/tasks", caller=callers.requester, query={"limit": "2"}))
    theirs = approvals.call(console_event("/tasks", caller=callers.other_requester))
    nobodys = approvals.call(console_event("/tasks", caller=callers.mallory))

    assert listed.status == limited.status == theirs.status == nobodys.status == 200
    assert [t["task_id"] for t in listed.body["tasks"]] == mine[::-1]
    assert [t["task_id"] for t in limited.body["tasks"]] == mine[:0:-1]
    stored = approvals.task(mine[-1])
    newest = listed.body["tasks"][0]
    assert (newest["created_at"], newest["status"], newest["message"]) == (stored.created_at, "queued", stored.message)
    [summary] = theirs.body["tasks"]
    assert summary["message"] == long_message[:200]
    assert nobodys.body == {"tasks": []}


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten-of-5e1d"])
def test_a_task_list_limit_outside_1_to_200_is_400(deployment, callers, console_event, limit):
    approvals = deployment()

    reply = approvals.call(console_event("/tasks", caller=callers.requester, query={"limit": limit}))

    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert [d["field"] for d in reply.body["details"]] == ["query.limit"]
    assert "ten-of-5e1d" not in reply.raw


def test_the_task_list_accepts_its_bounds(deployment, callers, console_event):
    approvals = deployment()
    paused = approvals.pause()

    replies = [approvals.call(console_event("/tasks", caller=callers.requester, query={"limit": n})) for n in ("1", "200")]

    assert [[t["task_id"] for t in r.body["tasks"]] for r in replies] == [[paused.task_id], [paused.task_id]]


# -- costs ---------------------------------------------------------------------------------------------------------


def test_costs_add_up_the_spend_of_the_callers_tasks_per_utc_day_and_agent_within_the_window(
    deployment, callers, console_event, clock
):
    approvals = deployment()
    store = approvals.tasks.store
    now = int(runtime_clock.now())
    days = 3
    today = now // DAY * DAY
    window_start = today - (days - 1) * DAY
    owner = callers.requester.principal
    # (task id, created at, spend of each agent run: agent, input tokens, output tokens, USD)
    planted = [
        ("c1" * 16, now, [("demo", 1200, 80, 0.0132), ("researcher", 300, 40, 0.0021)]),
        ("c2" * 16, today, [("demo", 900, 60, 0.0099), ("demo", 100, 10, 0.0011)]),
        ("c3" * 16, today - DAY + 5, [("researcher", 700, 90, 0.0049)]),
        ("c4" * 16, window_start, [("demo", 400, 20, 0.0042)]),
    ]
    before_window = ("c5" * 16, window_start - 1, [("demo", 5000, 500, 0.5)])
    someone_elses = ("c6" * 16, now, [("demo", 7000, 700, 0.7)])
    for task_id, created_at, runs in [*planted, before_window, someone_elses]:
        create_task(approvals, task_id, callers.other_requester.principal if task_id == someone_elses[0] else owner, created_at)
        for agent, tokens_in, tokens_out, usd in runs:
            store.add_spend(task_id, agent, Usage(input_tokens=tokens_in, output_tokens=tokens_out), usd)

    reply = approvals.call(console_event("/costs", caller=callers.requester, query={"days": str(days)}))

    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for task_id, _, _ in planted:
        record = approvals.task(task_id)
        day = runtime_day(record.created_at)
        for agent, spend in record.spend.items():
            row = expected.setdefault((day, agent), {"tasks": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
            row["tasks"] += 1
            row["input_tokens"] += spend.usage.input_tokens
            row["output_tokens"] += spend.usage.output_tokens
            row["cost_usd"] += spend.cost_usd
    assert reply.status == 200
    assert (reply.body["currency"], reply.body["source"]) == ("USD", "task records")
    rows = reply.body["days"]
    assert [(r["day"], r["agent"]) for r in rows] == sorted(expected)
    for row in rows:
        want = expected[(row["day"], row["agent"])]
        assert (row["tasks"], row["input_tokens"], row["output_tokens"]) == (
            want["tasks"],
            want["input_tokens"],
            want["output_tokens"],
        ), row
        assert row["cost_usd"] == pytest.approx(want["cost_usd"], abs=1e-8)
    assert runtime_day(window_start) == rows[0]["day"]  # the window's first day counts from its first second


def runtime_day(epoch: int) -> str:
    """The UTC day of ``epoch`` as the console names it."""
    return datetime.fromtimestamp(epoch, UTC).date().isoformat()


def test_costs_by_default_show_a_finished_run_to_its_owner_and_nothing_to_others(
    deployment, api_event, aws, callers, console_event
):
    approvals = deployment()
    paused = approvals.pause()
    decided_and_resumed(approvals, api_event, aws, paused, "reject")
    record = approvals.task(paused.task_id)

    mine = approvals.call(console_event("/costs", caller=callers.requester))
    nobodys = approvals.call(console_event("/costs", caller=callers.mallory))

    assert [(r["day"], r["agent"], r["tasks"], r["input_tokens"], r["output_tokens"]) for r in mine.body["days"]] == [
        (runtime_day(record.created_at), agent, 1, spend.usage.all_input_tokens, spend.usage.output_tokens)
        for agent, spend in record.spend.items()
    ]
    assert sum(r["input_tokens"] + r["output_tokens"] for r in mine.body["days"]) == record.usage.total_tokens > 0
    assert nobodys.body["days"] == []


@pytest.mark.parametrize("days", ["0", "91", "-3", "a-week-of-9f3c"])
def test_a_costs_window_outside_1_to_90_days_is_400(deployment, callers, console_event, days):
    approvals = deployment()

    reply = approvals.call(console_event("/costs", caller=callers.requester, query={"days": days}))

    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert [d["field"] for d in reply.body["details"]] == ["query.days"]
    assert "a-week-of-9f3c" not in reply.raw


# -- what approvals tell the console -------------------------------------------------------------------------------


def test_can_decide_is_true_only_for_an_approver_other_than_the_requester_while_the_approval_is_pending(
    deployment, api_event, aws, callers
):
    approvals = deployment()
    paused = approvals.pause()

    def seen_by(caller: Caller, status: str = "pending") -> tuple[list[bool], bool]:
        listed = approvals.call(api_event("list-pending", caller=caller, query={"status": status}))
        detail = approvals.call(api_event("get-approval", approval_id=paused.approval_id, caller=caller))
        return [a["can_decide"] for a in listed.body["approvals"]], detail.body["can_decide"]

    pending = {"requester": seen_by(callers.requester), "alice": seen_by(callers.alice)}
    decided_and_resumed(approvals, api_event, aws, paused, "reject")
    decided = {"requester": seen_by(callers.requester, "rejected"), "alice": seen_by(callers.alice, "rejected")}

    assert pending == {"requester": ([False], False), "alice": ([True], True)}
    assert decided == {"requester": ([False], False), "alice": ([False], False)}


def test_a_comment_of_the_largest_size_with_markup_is_kept_and_returned_verbatim_as_data(
    deployment, api_event, aws, callers, console_event
):
    approvals = deployment()
    paused = approvals.pause()
    comment = (MARKUP + " and " + "why " * MAX_COMMENT_CHARS)[: MAX_COMMENT_CHARS - 1] + "."
    assert len(comment) == MAX_COMMENT_CHARS

    decided = decided_and_resumed(approvals, api_event, aws, paused, "reject", body={"decision": "reject", "comment": comment})
    detail = approvals.call(api_event("get-approval", approval_id=paused.approval_id))
    timelines = [
        approvals.call(console_event(TIMELINE, caller=callers.requester, task_id=paused.task_id)),
        approvals.call(
            console_event(TIMELINE, caller=callers.alice, task_id=paused.task_id, query={"approval_id": paused.approval_id})
        ),
    ]

    assert decided.body["comment"] == comment
    assert detail.body["comment"] == comment
    assert [e["comment"] for e in detail.body["audit"]] == [None, comment]
    for timeline in timelines:
        assert timeline.status == 200
        assert only(timeline.body["events"], "approval_decided")["comment"] == comment
    for reply in (decided, detail, *timelines):
        assert reply.headers["Content-Type"] == "application/json"


def test_a_comment_one_character_over_the_limit_is_400_and_decides_nothing(deployment, api_event):
    approvals = deployment()
    paused = approvals.pause()
    comment = (MARKUP + "x" * MAX_COMMENT_CHARS)[: MAX_COMMENT_CHARS + 1]

    reply = approvals.call(
        api_event("decide-reject", approval_id=paused.approval_id, body={"decision": "reject", "comment": comment})
    )

    assert (reply.status, reply.body["error"]) == (400, "invalid_request")
    assert [d["field"] for d in reply.body["details"]] == ["comment"]
    assert "<script>" not in reply.raw
    assert approvals.api_service.approvals.get(paused.approval_id).status == "pending"


# -- redaction -----------------------------------------------------------------------------------------------------


def test_personal_data_in_tool_arguments_and_the_answer_is_redacted_in_the_timeline(
    deployment, callers, console_event, agents_with, monkeypatch
):
    approvals = deployment()
    monkeypatch.setattr(approvals.tasks, "agents", agents_with(PlantedModel(), definition=DEFINITION))
    task_id = "d" * 32
    create_task(approvals, task_id, callers.requester.principal, int(runtime_clock.now()), message=MESSAGE)
    approvals.workflow.handle({"action": "start", "task_id": task_id})
    assert approvals.workflow.handle({"action": "step", "task_id": task_id})["done"] is True
    # Without store_redacted the store keeps what the agent saw: only the timeline redacts.
    assert EMAIL in approvals.tasks.store.get_checkpointed(task_id)[1]

    reply = approvals.call(console_event(TIMELINE, caller=callers.requester, task_id=task_id))

    events = reply.body["events"]
    call = only(events, "tool_call", tool="open_refund")
    assert call["arguments"] == {"email": "[REDACTED:email]", "card": "[REDACTED:card_number]"}
    assert markers_in([events[0]["title"]]) == list(MARKERS)
    assert planted_in([json.dumps(events), json.dumps(reply.body["task"]["result"])]) == []
    assert CARD not in only(events, "finished")["result"]


def test_an_approver_reading_a_timeline_sees_none_of_the_requesters_personal_data(deployment, callers, console_event):
    approvals = deployment()
    paused = approvals.pause(message=f"Please refund 150 USD for order A-1002. Write to {EMAIL} about it.")

    reply = approvals.call(
        console_event(TIMELINE, caller=callers.alice, task_id=paused.task_id, query={"approval_id": paused.approval_id})
    )

    assert reply.status == 200
    assert "[REDACTED:email]" in reply.body["events"][0]["title"]
    assert planted_in([reply.raw]) == []


def test_the_shared_console_events_reach_their_routes(deployment, load_event, aimed_event, call):
    # events/tasks/list-tasks.json, task-timeline.json and get-costs.json, as `sam local invoke -e` sends them: their
    # caller is the requester of the paused refund
    approvals = deployment()
    paused = approvals.pause()

    listed = call(approvals.app, load_event("tasks/list-tasks.json"))
    timeline = call(
        approvals.app, aimed_event(load_event("tasks/task-timeline.json"), path_parameters={"task_id": paused.task_id})
    )
    costs = call(approvals.app, load_event("tasks/get-costs.json"))

    assert [t["task_id"] for t in listed.body["tasks"]] == [paused.task_id]
    assert timeline.status == 200, timeline.body
    assert only(timeline.body["events"], "approval_requested")["approval_id"] == paused.approval_id
    assert (costs.status, costs.body["currency"], costs.body["source"]) == (200, "USD", "task records")
